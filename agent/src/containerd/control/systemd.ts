/**
 * A small client for systemd's D-Bus API on the host's system bus, with just what restarting
 * containerd needs: `LoadUnit` and a unit's `LoadState`/`ActiveState`, `Subscribe`,
 * `RestartUnit` and the `JobRemoved` signal that ends the restart job.
 *
 * It connects to the bus's unix socket as the DaemonSet mounts it (the host's `/run/dbus` at
 * `<host-root>/run/dbus`, read-only: connecting to a socket needs no write access to its
 * filesystem) and authenticates with EXTERNAL as the agent's uid. systemd authorizes
 * `RestartUnit` for uid 0 without polkit, so the agent needs no chroot, no host systemctl and
 * no capability.
 */
import type { EventEmitter } from "node:events";
import type { Socket } from "node:net";

export const SYSTEMD_BUS_NAME = "org.freedesktop.systemd1";
export const SYSTEMD_OBJECT = "/org/freedesktop/systemd1";
export const MANAGER_INTERFACE = "org.freedesktop.systemd1.Manager";
export const UNIT_INTERFACE = "org.freedesktop.systemd1.Unit";
const PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties";

/** D-Bus's own default reply timeout. */
const DEFAULT_CALL_TIMEOUT_MS = 25_000;
const SIGNAL = 4;

/** A failure talking to systemd over D-Bus; `message` is one sentence, `dbusName` the error name. */
export class SystemdBusError extends Error {
  constructor(
    message: string,
    readonly dbusName?: string,
  ) {
    super(message);
    this.name = "SystemdBusError";
  }
}

/** A unit as systemd sees it. */
export interface UnitState {
  unit: string;
  /** The unit's object path. */
  path: string;
  /** `loaded`, `not-found`, `masked`, `bad-setting`, `error`, ... */
  loadState: string;
  /** `active`, `inactive`, `failed`, `activating`, `deactivating`, `reloading`. */
  activeState: string;
}

/** A finished job, as systemd's `JobRemoved(u id, o job, s unit, s result)` reports it. */
export interface JobResult {
  id: number;
  job: string;
  unit: string;
  /** `done` on success; `canceled`, `timeout`, `failed`, `dependency` or `skipped` otherwise. */
  result: string;
}

// The parts of @homebridge/dbus-native used here (its bundled typings lack createClient).
interface Message {
  type: number;
  path?: string;
  interface?: string;
  member?: string;
  sender?: string;
  body?: unknown[];
}
interface ReplyError {
  name?: string;
  message?: string;
}
interface Connection extends EventEmitter {
  stream: Socket;
}
interface Bus {
  connection: Connection;
  invoke(
    msg: {
      destination: string;
      path: string;
      interface: string;
      member: string;
      signature?: string;
      body?: unknown[];
    },
    callback: (this: { message: Message }, err: ReplyError | null, ...values: unknown[]) => void,
  ): void;
}
/** The D-Bus client library, loaded on first connection: only `--restart systemd` needs it. */
function createClient(opts: { socket: string; authMethods: string[] }): Bus {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const lib = require("@homebridge/dbus-native") as { createClient(o: typeof opts): Bus };
  return lib.createClient(opts);
}

/** A D-Bus variant as dbus-native decodes it: `[signature tree, [value]]`. */
function variantValue(v: unknown): unknown {
  return Array.isArray(v) && Array.isArray(v[1]) ? v[1][0] : undefined;
}

/** One connection to the host's system bus, talking to systemd. Close it when done. */
export class SystemdClient {
  private broken: SystemdBusError | undefined;
  private readonly failers = new Set<(err: SystemdBusError) => void>();
  /** JobRemoved signals seen since the match was added, by job path, with their sender. */
  private readonly removed = new Map<string, { sender?: string; job: JobResult }>();
  private readonly jobListeners = new Set<() => void>();
  private matching = false;

  private constructor(
    private readonly bus: Bus,
    /** The socket as the agent sees it, for messages. */
    readonly socket: string,
    private readonly callTimeoutMs: number,
  ) {
    bus.connection.on("error", (err: NodeJS.ErrnoException) => this.fail(this.connectError(err)));
    bus.connection.on("end", () =>
      this.fail(new SystemdBusError(`The D-Bus system bus at ${socket} closed the connection.`)),
    );
    bus.connection.on("message", (msg: Message) => this.onMessage(msg));
  }

  /**
   * Connects to the bus at `socket` (a path as the agent sees it). Fails with one sentence when
   * the socket is missing, nothing listens on it, or the bus refuses the agent.
   */
  static async connect(
    socket: string,
    opts: { callTimeoutMs?: number } = {},
  ): Promise<SystemdClient> {
    const bus = createClient({ socket, authMethods: ["EXTERNAL"] });
    const client = new SystemdClient(bus, socket, opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
    try {
      // The first call waits for the connection, the auth handshake and Hello.
      await client.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "GetId",
      );
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Closes the connection; pending calls fail. Safe to call twice. */
  close(): void {
    this.fail(new SystemdBusError(`The connection to ${this.socket} was closed.`));
    this.bus.connection.stream.destroy();
  }

  /** Marks the connection broken (the first cause wins) and fails everything pending. */
  private fail(err: SystemdBusError): void {
    this.broken ??= err;
    for (const f of [...this.failers]) f(this.broken);
  }

  /**
   * Loads `unit` (a unit systemd has not loaded yet is read from disk; an unknown one comes back
   * with LoadState `not-found`) and reads its LoadState and ActiveState.
   */
  async unitState(unit: string): Promise<UnitState> {
    const [path] = await this.manager("LoadUnit", "s", [unit]);
    const prop = async (name: string) => {
      const [value] = await this.call(
        SYSTEMD_BUS_NAME,
        String(path),
        PROPERTIES_INTERFACE,
        "Get",
        "ss",
        [UNIT_INTERFACE, name],
      );
      return String(variantValue(value));
    };
    return {
      unit,
      path: String(path),
      loadState: await prop("LoadState"),
      activeState: await prop("ActiveState"),
    };
  }

  /**
   * Restarts `unit` (mode `replace`) and waits until systemd reports its job finished, like
   * `systemctl restart` does: RestartUnit returns as soon as the job is queued, while the old
   * containerd may still answer the CRI. Returns the job's result; `done` means success.
   */
  async restartUnit(unit: string, timeoutMs: number): Promise<JobResult> {
    if (!this.matching) {
      await this.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        "s",
        [
          `type='signal',sender='${SYSTEMD_BUS_NAME}',path='${SYSTEMD_OBJECT}',interface='${MANAGER_INTERFACE}',member='JobRemoved'`,
        ],
      );
      // systemd sends its signals only while some client is subscribed (org.freedesktop.systemd1(5)).
      await this.manager("Subscribe");
      this.matching = true;
    }
    const started = Date.now();
    const { values, sender } = await this.callWithSender(
      SYSTEMD_BUS_NAME,
      SYSTEMD_OBJECT,
      MANAGER_INTERFACE,
      "RestartUnit",
      "ss",
      [unit, "replace"],
    );
    const job = String(values[0]);
    return this.waitForJob(job, sender, unit, started + timeoutMs, timeoutMs);
  }

  private waitForJob(
    job: string,
    sender: string | undefined,
    unit: string,
    deadline: number,
    timeoutMs: number,
  ): Promise<JobResult> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const seen = this.removed.get(job);
        // Only systemd's own connection (the one that answered RestartUnit) ends the job.
        if (!seen || (sender && seen.sender !== sender)) return false;
        finish();
        resolve(seen.job);
        return true;
      };
      const onFail = (err: SystemdBusError) => {
        finish();
        reject(err);
      };
      const timer = setTimeout(
        () => {
          finish();
          reject(
            new SystemdBusError(
              `systemd's restart job ${job} for ${unit} did not finish within ${timeoutMs} ms.`,
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      const finish = () => {
        clearTimeout(timer);
        this.jobListeners.delete(listener);
        this.failers.delete(onFail);
      };
      const listener = () => void check();
      if (check()) return;
      if (this.broken) return onFail(this.broken);
      this.jobListeners.add(listener);
      this.failers.add(onFail);
    });
  }

  private onMessage(msg: Message): void {
    if (
      msg.type !== SIGNAL ||
      msg.member !== "JobRemoved" ||
      msg.interface !== MANAGER_INTERFACE ||
      msg.path !== SYSTEMD_OBJECT
    ) {
      return;
    }
    const [id, job, unit, result] = msg.body ?? [];
    this.removed.set(String(job), {
      sender: msg.sender,
      job: { id: Number(id), job: String(job), unit: String(unit), result: String(result) },
    });
    for (const l of [...this.jobListeners]) l();
  }

  private manager(member: string, signature?: string, body?: unknown[]): Promise<unknown[]> {
    return this.call(SYSTEMD_BUS_NAME, SYSTEMD_OBJECT, MANAGER_INTERFACE, member, signature, body);
  }

  private async call(
    destination: string,
    path: string,
    iface: string,
    member: string,
    signature?: string,
    body?: unknown[],
  ): Promise<unknown[]> {
    return (await this.callWithSender(destination, path, iface, member, signature, body)).values;
  }

  private callWithSender(
    destination: string,
    path: string,
    iface: string,
    member: string,
    signature?: string,
    body?: unknown[],
  ): Promise<{ values: unknown[]; sender?: string }> {
    const what = `${iface.split(".").pop()}.${member}${body ? `(${body.map((b) => JSON.stringify(b)).join(", ")})` : "()"}`;
    return new Promise((resolve, reject) => {
      if (this.broken) return reject(this.broken);
      const finish = () => {
        clearTimeout(timer);
        this.failers.delete(onFail);
      };
      const onFail = (err: SystemdBusError) => {
        finish();
        reject(err);
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new SystemdBusError(
            `${what} on the D-Bus system bus at ${this.socket} got no answer within ${this.callTimeoutMs} ms.`,
          ),
        );
      }, this.callTimeoutMs);
      this.failers.add(onFail);
      const replyError = (err: ReplyError) => this.replyError(what, destination, err);
      // A function, not an arrow: dbus-native passes the reply message as `this`.
      this.bus.invoke(
        { destination, path, interface: iface, member, signature, body },
        function (err, ...values) {
          finish();
          if (err) reject(replyError(err));
          else resolve({ values, sender: this.message?.sender });
        },
      );
    });
  }

  /** An error reply as one sentence; a missing systemd gets its own. */
  private replyError(what: string, destination: string, err: ReplyError): SystemdBusError {
    const name = err.name ?? "org.freedesktop.DBus.Error.Failed";
    const detail = (err.message ?? "").replace(/\.$/, "");
    if (
      destination === SYSTEMD_BUS_NAME &&
      (name === "org.freedesktop.DBus.Error.ServiceUnknown" ||
        name === "org.freedesktop.DBus.Error.NameHasNoOwner")
    ) {
      return new SystemdBusError(
        `Nothing owns ${SYSTEMD_BUS_NAME} on the D-Bus system bus at ${this.socket} (${name}: ${detail}); the host does not run systemd, use --restart kill or command.`,
        name,
      );
    }
    return new SystemdBusError(`${what} failed: ${name}: ${detail}.`, name);
  }

  private connectError(err: NodeJS.ErrnoException): SystemdBusError {
    const dir = this.socket.slice(0, this.socket.lastIndexOf("/")) || "/";
    switch (err.code) {
      case "ENOENT":
        return new SystemdBusError(
          `The D-Bus system bus socket ${this.socket} does not exist; check that the host's /run/dbus is mounted at ${dir} (the DaemonSet mounts it for --restart systemd).`,
        );
      case "ECONNREFUSED":
        return new SystemdBusError(
          `Nothing listens on the D-Bus system bus socket ${this.socket} (connection refused); check that dbus runs on the host.`,
        );
      case "EACCES":
        return new SystemdBusError(
          `The D-Bus system bus socket ${this.socket} is not accessible (${err.message}); the agent must run as uid 0.`,
        );
      default:
        // dbus-native reports a refused auth handshake as the server's last line ("REJECTED ...").
        return new SystemdBusError(
          `The D-Bus system bus at ${this.socket} failed: ${err.message.trim()}${/REJECTED/.test(err.message) ? " (EXTERNAL authentication refused; the agent must run as uid 0)" : ""}.`,
        );
    }
  }
}
