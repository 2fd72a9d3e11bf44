/**
 * Test harness for the systemd restart strategy: a private D-Bus system bus (the real
 * `dbus-daemon` from Debian, listening on a unix socket under a temp dir laid out as a host root)
 * and a FAKE systemd on it, a tiny service in the test process that owns
 * `org.freedesktop.systemd1` and serves the parts of systemd's D-Bus API the agent uses.
 *
 * The fake follows systemd's documented behaviour (org.freedesktop.systemd1(5)): `GetUnit`
 * answers only for loaded units, `LoadUnit` answers for any valid name (an unknown unit comes
 * back with LoadState `not-found`), unit objects live at the escaped path
 * `/org/freedesktop/systemd1/unit/containerd_2eservice`, `RestartUnit` is authorized for uid 0
 * only (the caller's uid is asked from the bus, as systemd does before polkit), returns a job
 * path at once and ends the job with `JobRemoved(id, job, unit, result)`, sent only while some
 * client has called `Subscribe`. Every method call it receives is recorded.
 *
 * Usage:
 *   describeWithDbus("x", () => {
 *     let bus: TestBus; let systemd: FakeSystemd;
 *     beforeAll(async () => { bus = await startDbusDaemon(); systemd = await startFakeSystemd(bus.socket, {...}); });
 *     afterAll(async () => { await systemd?.stop(); await bus?.stop(); });
 *   });
 */
import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as dbusNative from "@homebridge/dbus-native";
import { describeIf } from "./describeIf";

/** Why a private dbus-daemon and the fake systemd cannot run here, or undefined when they can. */
export function dbusUnavailable(): string | undefined {
  if (process.platform !== "linux") return `D-Bus tests need Linux; this is ${process.platform}`;
  if (process.getuid?.() !== 0) {
    return "the fake systemd, like systemd without polkit, authorizes RestartUnit for uid 0 only: run as root";
  }
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/bin", "/bin"];
  if (!dirs.some((dir) => dir && fs.existsSync(path.join(dir, "dbus-daemon")))) {
    return "dbus-daemon is not installed (Debian package dbus-daemon)";
  }
  return undefined;
}

/** describeIf on {@link dbusUnavailable}. */
export function describeWithDbus(name: string, fn: () => void): void {
  describeIf(dbusUnavailable(), name, fn);
}

/** A running private dbus-daemon. */
export interface TestBus {
  /** The dir laid out as a host root: the socket is at `<hostRoot>/run/dbus/system_bus_socket`. */
  readonly hostRoot: string;
  /** The bus's unix socket. */
  readonly socket: string;
  readonly pid: number;
  /** Stops the daemon (SIGTERM, SIGKILL after 5 s) and removes its socket and config. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The bus config: a system-bus-like policy where only root may connect, own
 * `org.freedesktop.systemd1` and call it; everyone may talk to the bus itself and get replies.
 */
export function renderBusConfig(socket: string): string {
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${esc(socket)}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <policy user="root">
    <allow own="org.freedesktop.systemd1"/>
    <allow send_destination="org.freedesktop.systemd1"/>
  </policy>
</busconfig>
`;
}

// Daemons alive in this worker, killed on exit if a suite forgot stop().
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * Starts a private dbus-daemon; resolves once it listens. Its socket goes to
 * `<hostRoot>/run/dbus/system_bus_socket`; `hostRoot` defaults to a new temp dir (removed by
 * stop()), or pass one whose other files a test also uses (only the socket is created there).
 */
export async function startDbusDaemon(opts: { hostRoot?: string } = {}): Promise<TestBus> {
  // Short base paths: unix socket paths are limited to 108 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-dbus-"));
  const hostRoot = opts.hostRoot ?? dir;
  const socket = path.join(hostRoot, "run/dbus/system_bus_socket");
  fs.mkdirSync(path.dirname(socket), { recursive: true });
  const config = path.join(dir, "bus.conf");
  fs.writeFileSync(config, renderBusConfig(socket));
  const child = spawn(
    "dbus-daemon",
    [`--config-file=${config}`, "--nofork", "--nopidfile", "--print-address=1"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  live.add(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    live.delete(child);
    fs.rmSync(socket, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    // --print-address writes the address once the daemon listens.
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(
        () => reject(new Error(`dbus-daemon did not start within 10 s; stderr: ${stderr}`)),
        10_000,
      );
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(`dbus-daemon exited (${signal ?? code}) while starting; stderr: ${stderr}`),
        );
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { hostRoot, socket, pid: child.pid as number, stop };
}

// ---- the fake systemd ---------------------------------------------------------------------

/** What the fake systemd knows about a unit. */
export interface FakeUnit {
  loadState: string;
  activeState: string;
}

/** A method call the fake received (properties calls included). */
export interface FakeSystemdCall {
  interface: string;
  member: string;
  path: string;
  args: unknown[];
}

export interface FakeSystemdOptions {
  /** Units systemd has loaded; any other valid name loads as `not-found`. */
  units: Record<string, FakeUnit>;
  /**
   * Runs the restart job; its promise settles the job: resolved is result `done` (and the unit
   * `active`), rejected is `failed`, or the result it resolves to when that is a string.
   */
  onRestart?: (unit: string) => Promise<string | void> | string | void;
}

/** The fake systemd on a test bus. Counters and records are public for assertions. */
export interface FakeSystemd {
  /** Every method call received, in order. */
  readonly calls: FakeSystemdCall[];
  /** The uid the bus reports for each RestartUnit caller. */
  readonly restartCallers: number[];
  /** Units by name; edit to change what the next call sees. */
  units: Record<string, FakeUnit>;
  onRestart: FakeSystemdOptions["onRestart"];
  /** Manager methods that get no answer at all (a stuck systemd); recorded all the same. */
  hang: Set<string>;
  /** Forgets recorded calls. */
  reset(): void;
  /** Releases the name and disconnects. Safe to call twice. */
  stop(): Promise<void>;
}

export const FAKE_SYSTEMD_OBJECT = "/org/freedesktop/systemd1";

/** systemd's `bus_label_escape`: keep [A-Za-z] (and digits after the first char), `_xx` the rest. */
export function unitObjectPath(unit: string): string {
  let label = "";
  for (let i = 0; i < unit.length; i++) {
    const c = unit[i];
    label +=
      /[A-Za-z]/.test(c) || (i > 0 && /[0-9]/.test(c))
        ? c
        : `_${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  }
  return `${FAKE_SYSTEMD_OBJECT}/unit/${label || "_"}`;
}

const UNIT_SUFFIXES = [
  "service",
  "socket",
  "target",
  "device",
  "mount",
  "automount",
  "swap",
  "timer",
  "path",
  "slice",
  "scope",
];
const JOB_MODES = ["replace", "fail", "isolate", "ignore-dependencies", "ignore-requirements"];

/** An error reply with a D-Bus error name, as dbus-native sends a returned Error. */
function dbusError(name: string, message: string): Error {
  return Object.assign(new Error(message), { dbusName: name });
}

interface RawBus {
  connection: EventEmitter & { stream: { destroy(): void } };
  exportInterface(obj: object, path: string, iface: object): void;
  requestName(name: string, flags: number, cb: (err: unknown, result: number) => void): void;
  releaseName(name: string, cb: (err: unknown) => void): void;
  getConnectionUnixUser(name: string, cb: (err: unknown, uid: number) => void): void;
  addMatch(rule: string, cb: (err: unknown) => void): void;
}

/** Starts the fake systemd on the bus at `socket`; resolves once it owns its name. */
export async function startFakeSystemd(
  socket: string,
  opts: FakeSystemdOptions,
): Promise<FakeSystemd> {
  const bus = (
    dbusNative as unknown as {
      createClient(o: { socket: string; authMethods: string[] }): RawBus;
    }
  ).createClient({ socket, authMethods: ["EXTERNAL"] });
  bus.connection.on("error", (err: Error) => console.warn(`fake systemd: ${err.message}`));

  const calls: FakeSystemdCall[] = [];
  const restartCallers: number[] = [];
  /** Unique names of connected clients that called Subscribe (systemd tracks them the same way). */
  const subscribers = new Set<string>();
  let nextJob = 1;
  const exported = new Set<string>();

  const fake: FakeSystemd = {
    calls,
    restartCallers,
    units: Object.fromEntries(Object.entries(opts.units).map(([k, v]) => [k, { ...v }])),
    onRestart: opts.onRestart,
    hang: new Set(),
    reset() {
      calls.length = 0;
      restartCallers.length = 0;
      fake.hang.clear();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await new Promise<void>((resolve) =>
        bus.releaseName("org.freedesktop.systemd1", () => resolve()),
      );
      bus.connection.stream.destroy();
    },
  };
  let stopped = false;

  bus.connection.on(
    "message",
    (msg: {
      type: number;
      interface?: string;
      member?: string;
      path?: string;
      body?: unknown[];
    }) => {
      // A subscriber that left the bus is no longer one.
      if (msg.type === 4 && msg.member === "NameOwnerChanged" && msg.body?.[2] === "") {
        subscribers.delete(String(msg.body[0]));
      }
      if (msg.type === 1 && msg.member) {
        calls.push({
          interface: msg.interface ?? "",
          member: msg.member,
          path: msg.path ?? "",
          args: msg.body ?? [],
        });
      }
    },
  );

  /** The unit's object, exported on first use: properties read live from `fake.units`. */
  const unitObject = (unit: string): string => {
    const objectPath = unitObjectPath(unit);
    if (!exported.has(objectPath)) {
      exported.add(objectPath);
      const props = {
        get Id() {
          return unit;
        },
        get LoadState() {
          return fake.units[unit]?.loadState ?? "not-found";
        },
        get ActiveState() {
          return fake.units[unit]?.activeState ?? "inactive";
        },
      };
      bus.exportInterface(props, objectPath, {
        name: "org.freedesktop.systemd1.Unit",
        properties: { Id: "s", LoadState: "s", ActiveState: "s" },
      });
    }
    return objectPath;
  };
  const validUnit = (unit: string) => {
    const dot = unit.lastIndexOf(".");
    if (dot <= 0 || !UNIT_SUFFIXES.includes(unit.slice(dot + 1))) {
      throw dbusError("org.freedesktop.DBus.Error.InvalidArgs", `Unit name ${unit} is not valid.`);
    }
  };
  const callerUid = (sender: string) =>
    new Promise<number>((resolve, reject) =>
      bus.getConnectionUnixUser(sender, (err, uid) => (err ? reject(err) : resolve(uid))),
    );

  const manager = Object.assign(new EventEmitter(), {
    GetUnit(unit: string) {
      validUnit(unit);
      if (!fake.units[unit] || fake.units[unit].loadState === "not-found") {
        throw dbusError("org.freedesktop.systemd1.NoSuchUnit", `Unit ${unit} not loaded.`);
      }
      return unitObject(unit);
    },
    LoadUnit(unit: string) {
      if (fake.hang.has("LoadUnit")) return new Promise<never>(() => undefined);
      validUnit(unit);
      return unitObject(unit);
    },
    Subscribe(msg: { sender: string }) {
      subscribers.add(msg.sender);
    },
    async RestartUnit(unit: string, mode: string, msg: { sender: string }) {
      validUnit(unit);
      if (!JOB_MODES.includes(mode)) {
        throw dbusError("org.freedesktop.DBus.Error.InvalidArgs", `Job mode ${mode} invalid.`);
      }
      const uid = await callerUid(msg.sender);
      restartCallers.push(uid);
      if (uid !== 0) {
        throw dbusError(
          "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
          "Interactive authentication required.",
        );
      }
      const state = fake.units[unit];
      if (!state || state.loadState === "not-found") {
        throw dbusError("org.freedesktop.systemd1.NoSuchUnit", `Unit ${unit} not found.`);
      }
      if (state.loadState === "masked") {
        throw dbusError("org.freedesktop.systemd1.UnitMasked", `Unit ${unit} is masked.`);
      }
      const id = nextJob++;
      const job = `${FAKE_SYSTEMD_OBJECT}/job/${id}`;
      // The job runs after the reply is sent, as systemd's jobs run after the call returns.
      setImmediate(async () => {
        let result = "done";
        try {
          const r = await fake.onRestart?.(unit);
          if (typeof r === "string") result = r;
        } catch {
          result = "failed";
        }
        state.activeState = result === "done" ? "active" : "failed";
        if (subscribers.size > 0 && !stopped) manager.emit("JobRemoved", id, job, unit, result);
      });
      return job;
    },
  });
  bus.exportInterface(manager, FAKE_SYSTEMD_OBJECT, {
    name: "org.freedesktop.systemd1.Manager",
    methods: {
      GetUnit: ["s", "o", ["name"], ["unit"]],
      LoadUnit: ["s", "o", ["name"], ["unit"]],
      Subscribe: ["", ""],
      RestartUnit: ["ss", "o", ["name", "mode"], ["job"]],
    },
    signals: { JobRemoved: ["uoss", "id", "job", "unit", "result"] },
  });

  await new Promise<void>((resolve, reject) =>
    bus.addMatch(
      "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'",
      (err) =>
        err
          ? reject(new Error(`fake systemd: AddMatch failed: ${JSON.stringify(err)}`))
          : resolve(),
    ),
  );
  await new Promise<void>((resolve, reject) =>
    // Flag 4: DBUS_NAME_FLAG_DO_NOT_QUEUE; reply 1: primary owner.
    bus.requestName("org.freedesktop.systemd1", 4, (err, result) => {
      if (err || result !== 1) {
        reject(
          new Error(
            `fake systemd could not own org.freedesktop.systemd1: ${JSON.stringify(err ?? result)}`,
          ),
        );
      } else {
        resolve();
      }
    }),
  );
  return fake;
}
