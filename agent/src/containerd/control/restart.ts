/**
 * Restarting containerd so it loads a changed config, by one of four strategies:
 *
 * - `systemd`: `RestartUnit(<unit>, "replace")` on systemd's D-Bus API, over the host's system
 *   bus socket (`<host-root>/run/dbus/system_bus_socket`, the only host path the DaemonSet mounts
 *   for it), then waiting for the restart job to finish as `systemctl restart` does. The unit is
 *   checked first (`LoadUnit`, `LoadState`), and the default unit per distribution is picked by
 *   asking systemd which candidate is active, so no host file is read. systemd authorizes uid 0
 *   without polkit: no chroot, no host binaries, no capability.
 * - `kill`: SIGTERM the containerd process found in `<host-root>/proc` (the DaemonSet runs with
 *   hostPID) and let its supervisor (systemd, k3s) start it again.
 * - `command`: run an operator-given command through `sh -c`.
 * - `none`: do nothing; the operator restarts containerd.
 *
 * Every path given here is a host path; it is resolved under `hostRoot` where it is opened.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { type ContainerdDistribution, RESTART_STRATEGIES, SYSTEM_BUS_SOCKET } from "vnode-contract";
import { FIRST_POLL_MS, type WaitOptions, waitForCri } from "../../cri/client";
import { hostPath } from "../../host/paths";
import { backoffDelay, sleep } from "../../lib/backoff";
import { messageOf } from "../../lib/errors";
import { type JobResult, SystemdBusError, SystemdClient, type UnitState } from "./systemd";

export { RESTART_STRATEGIES };
export type RestartStrategy = (typeof RESTART_STRATEGIES)[number];

export interface RestartOptions {
  strategy: RestartStrategy;
  /** The host's root as mounted in the agent (`--host-root`). */
  hostRoot: string;
  /**
   * containerd's CRI socket (host path). When set, every strategy but `none` waits until the
   * CRI answers again before returning. Required by `kill`, which has no other way to know.
   */
  socket?: string;
  /** `command`: the shell command (`--restart-command`), run with `sh -c`. */
  command?: string;
  /**
   * `systemd`: the unit to restart (`--restart-unit`). Defaults to the distribution's active
   * unit, see {@link chooseSystemdUnit}.
   */
  unit?: string;
  /** Picks the default systemd unit. Defaults to `containerd`. */
  distribution?: ContainerdDistribution;
  /**
   * `kill`: the config file (host path) of the containerd to restart, as given by its `--config`
   * flag or containerd's default `/etc/containerd/config.toml`. Only a process with exactly this
   * config is signalled, so another containerd on the host (Docker's, a test's) is never hit.
   */
  configPath?: string;
  /**
   * Limit for the command, for systemd's restart job (D-Bus calls included), and for the killed
   * process to exit. Defaults to 120 s.
   */
  timeoutMs?: number;
  /** How long, and how tightly, to wait for the CRI to answer again. */
  wait?: WaitOptions;
}

/** Where a restart's time went (ms), for the log line and `bench:agent`. */
export interface RestartPhases {
  /** The command, systemd's restart job (D-Bus calls included), or sending SIGTERM. */
  restartMs: number;
  /** `kill`: SIGTERM until the old process is gone. */
  exitMs?: number;
  /** Until the CRI answered `Version` again (0 without a socket). */
  criMs: number;
}

export interface RestartResult {
  strategy: RestartStrategy;
  /** Whether containerd was restarted (false only for `none`). */
  restarted: boolean;
  /** Wall time of the restart, waiting for the CRI included. */
  durationMs: number;
  /** Its parts; absent for `none`. */
  phases?: RestartPhases;
  /** One sentence on what was done, for logs and the CLI. */
  detail: string;
}

/** A restart that failed; `message` names the strategy, the target and the cause. */
export class RestartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RestartError";
  }
}

const DEFAULT_TIMEOUT_MS = 120_000;
const SYSTEMD_CALL_TIMEOUT_MS = 25_000;
const DEFAULT_CONFIG = "/etc/containerd/config.toml";
/** The longest pause between two looks at the SIGTERMed process (the first is FIRST_POLL_MS). */
const SIGTERM_EXIT_POLL_MS = 50;

/** Restarts containerd by `opts.strategy`. Throws {@link RestartError} when it cannot. */
export async function restartContainerd(opts: RestartOptions): Promise<RestartResult> {
  const started = Date.now();
  let mark = started;
  /** ms since the previous mark. */
  const lap = () => {
    const now = Date.now();
    const ms = now - mark;
    mark = now;
    return ms;
  };
  const phases: RestartPhases = { restartMs: 0, criMs: 0 };
  const done = (restarted: boolean, detail: string): RestartResult => ({
    strategy: opts.strategy,
    restarted,
    durationMs: Date.now() - started,
    detail,
    ...(restarted ? { phases } : {}),
  });
  switch (opts.strategy) {
    case "none":
      return done(
        false,
        "restart strategy is none: restart containerd yourself so it loads the new config.",
      );
    case "command": {
      const command = opts.command;
      if (!command || !command.trim()) {
        throw new RestartError(
          "--restart-command is required with --restart command, and it is empty.",
        );
      }
      await runCommand("sh", ["-c", command], `restart command "${command}"`, opts.timeoutMs);
      phases.restartMs = lap();
      await waitForSocket(opts, `the restart command "${command}"`);
      phases.criMs = lap();
      return done(true, `ran the restart command "${command}".`);
    }
    case "systemd": {
      const { unit } = await restartSystemdUnit(opts);
      phases.restartMs = lap();
      await waitForSocket(opts, `systemd restarted ${unit}`);
      phases.criMs = lap();
      return done(true, `restarted systemd unit ${unit}.`);
    }
    case "kill": {
      if (!opts.socket) {
        throw new RestartError(
          "--restart kill needs the containerd socket to know when containerd is back.",
        );
      }
      const configPath = opts.configPath ?? DEFAULT_CONFIG;
      const proc = findContainerd(opts.hostRoot, configPath);
      try {
        process.kill(proc.pid, "SIGTERM");
      } catch (err) {
        throw new RestartError(
          `Could not SIGTERM containerd (pid ${proc.pid}): ${messageOf(err)}.`,
        );
      }
      phases.restartMs = lap();
      await waitForExit(opts.hostRoot, proc, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      phases.exitMs = lap();
      await waitForSocket(opts, `SIGTERM to containerd pid ${proc.pid}`);
      phases.criMs = lap();
      return done(
        true,
        `sent SIGTERM to containerd pid ${proc.pid} (config ${configPath}); its supervisor restarted it.`,
      );
    }
    default: {
      const s: never = opts.strategy;
      throw new RestartError(
        `--restart must be one of ${RESTART_STRATEGIES.join(", ")}; got "${String(s)}".`,
      );
    }
  }
}

/** Parses `--restart`, with an error naming the flag and the allowed values. */
export function parseRestartStrategy(value: string): RestartStrategy {
  if ((RESTART_STRATEGIES as readonly string[]).includes(value)) return value as RestartStrategy;
  throw new RestartError(
    `--restart must be one of ${RESTART_STRATEGIES.join(", ")}; got "${value}".`,
  );
}

async function waitForSocket(opts: RestartOptions, after: string): Promise<void> {
  if (!opts.socket) return;
  try {
    await waitForCri(hostPath(opts.hostRoot, opts.socket), opts.wait);
  } catch (err) {
    throw new RestartError(`containerd did not come back after ${after}: ${messageOf(err)}`);
  }
}

// ---- command ------------------------------------------------------------------------------

/** The last lines of a command's stderr, enough to see why it failed. */
export function tail(text: string, lines = 10, maxChars = 2000): string {
  const kept = text.trimEnd().split("\n").slice(-lines).join("\n");
  return kept.length > maxChars ? `...${kept.slice(-maxChars)}` : kept;
}

function runCommand(
  file: string,
  args: string[],
  what: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 4 * 1024 * 1024 },
      (err, _stdout, stderr) => {
        if (!err) return resolve();
        const e = err as NodeJS.ErrnoException & {
          killed?: boolean;
          code?: number | string;
          signal?: string;
        };
        const errTail = tail(String(stderr));
        const out = errTail ? `; stderr: ${errTail}` : "";
        // One sentence: no second period when stderr already ends with one.
        const sentence = (text: string) => (text.endsWith(".") ? text : `${text}.`);
        if (e.killed && e.signal === "SIGKILL") {
          reject(
            new RestartError(
              sentence(`${what} did not finish within ${timeoutMs} ms and was killed${out}`),
            ),
          );
        } else if (e.code === "ENOENT") {
          reject(new RestartError(`${what} failed: ${file} is not installed.`));
        } else if (typeof e.code === "number") {
          reject(new RestartError(sentence(`${what} failed with exit code ${e.code}${out}`)));
        } else {
          reject(
            new RestartError(
              sentence(`${what} failed: ${e.signal ? `killed by ${e.signal}` : e.message}${out}`),
            ),
          );
        }
      },
    );
  });
}

// ---- systemd ------------------------------------------------------------------------------

/** Units that run containerd, per distribution; where there are two, a node has one of them. */
export const SYSTEMD_UNITS: Record<ContainerdDistribution, readonly string[]> = {
  containerd: ["containerd.service"],
  k3s: ["k3s.service", "k3s-agent.service"],
  rke2: ["rke2-server.service", "rke2-agent.service"],
  microk8s: ["snap.microk8s.daemon-containerd.service"],
  k0s: ["k0scontroller.service", "k0sworker.service"],
};

const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]+$/;

/** Checks `--restart-unit` is a unit name, before anything is sent to systemd. */
export function assertUnitName(unit: string): void {
  if (!UNIT_NAME.test(unit) || unit.startsWith("-")) {
    throw new RestartError(
      `--restart-unit must be a systemd unit name such as containerd.service; got "${unit}".`,
    );
  }
}

/** The distribution's candidate units; throws for an unknown distribution. */
export function systemdCandidates(distribution: ContainerdDistribution): readonly string[] {
  const candidates = SYSTEMD_UNITS[distribution];
  if (!candidates) {
    throw new RestartError(
      `Unknown containerd distribution "${distribution}"; expected one of ${Object.keys(SYSTEMD_UNITS).join(", ")}.`,
    );
  }
  return candidates;
}

const describeState = (s: UnitState) => `${s.unit} (${s.loadState}, ${s.activeState})`;

/**
 * The unit to restart among a distribution's candidates, given what systemd says about each (in
 * candidate order): the first active one; else the only loaded one (a stopped or failed
 * containerd is started by the restart). Throws naming every candidate's state otherwise.
 */
export function chooseSystemdUnit(
  distribution: ContainerdDistribution,
  states: readonly UnitState[],
): string {
  const active = states.find((s) => s.activeState === "active");
  if (active) return active.unit;
  const loaded = states.filter((s) => s.loadState === "loaded");
  if (loaded.length === 1) return loaded[0].unit;
  throw new RestartError(
    `Cannot tell which systemd unit runs ${distribution}'s containerd: ${
      loaded.length ? "none is active and several are loaded" : "none is loaded"
    } (${states.map(describeState).join(", ")}); set --restart-unit to the unit that runs containerd.`,
  );
}

/** Why systemd cannot restart a unit with this LoadState, or undefined when it can. */
function unitProblem(state: UnitState): string | undefined {
  switch (state.loadState) {
    case "loaded":
      return undefined;
    case "not-found":
      return "systemd has no such unit (LoadState not-found)";
    case "masked":
      return "the unit is masked (LoadState masked)";
    default:
      return `systemd could not load the unit (LoadState ${state.loadState})`;
  }
}

/**
 * The systemd strategy up to the end of the restart job: connect to the host's system bus,
 * settle the unit (`opts.unit`, checked to exist, or the distribution's active candidate), restart
 * it and wait for systemd's job. Every failure is a {@link RestartError} sentence.
 */
async function restartSystemdUnit(opts: RestartOptions): Promise<{ unit: string; job: JobResult }> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (opts.unit !== undefined) assertUnitName(opts.unit);
  const candidates = opts.unit ? [] : systemdCandidates(opts.distribution ?? "containerd");
  const socket = hostPath(opts.hostRoot, SYSTEM_BUS_SOCKET);
  let systemd: SystemdClient | undefined;
  try {
    // Each call gets D-Bus's usual 25 s at most; the restart job gets the whole timeout.
    systemd = await SystemdClient.connect(socket, {
      callTimeoutMs: Math.min(timeoutMs, SYSTEMD_CALL_TIMEOUT_MS),
    });
    let unit: string;
    if (opts.unit) {
      unit = opts.unit;
      const problem = unitProblem(await systemd.unitState(unit));
      if (problem) {
        throw new RestartError(
          `--restart-unit ${unit} cannot be restarted: ${problem}; name the unit that runs containerd, e.g. containerd.service.`,
        );
      }
    } else {
      const states: UnitState[] = [];
      for (const candidate of candidates) {
        const state = await systemd.unitState(candidate);
        states.push(state);
        if (state.activeState === "active") break; // the first active one wins
      }
      unit = chooseSystemdUnit(opts.distribution ?? "containerd", states);
    }
    const job = await systemd.restartUnit(unit, timeoutMs);
    if (job.result !== "done") {
      throw new RestartError(
        `systemd's restart job for ${unit} finished with result "${job.result}" instead of "done"; see journalctl -u ${unit} on the node.`,
      );
    }
    return { unit, job };
  } catch (err) {
    if (err instanceof SystemdBusError) throw new RestartError(err.message);
    throw err;
  } finally {
    systemd?.close();
  }
}

// ---- kill ---------------------------------------------------------------------------------

/** A process as read from `/proc/<pid>`. */
export interface ProcInfo {
  pid: number;
  comm: string;
  argv: string[];
  state: string;
  /** Start time in clock ticks since boot; tells a new process from a reused pid. */
  startTime: string;
}

/** Parses `/proc/<pid>/stat`; the command name may contain spaces and parentheses. */
export function parseStat(text: string): {
  comm: string;
  state: string;
  ppid: number;
  startTime: string;
} {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`not a /proc stat line: "${text.slice(0, 80)}"`);
  // Fields after the name start at field 3 (state); starttime is field 22.
  const rest = text
    .slice(close + 2)
    .trim()
    .split(" ");
  return {
    comm: text.slice(open + 1, close),
    state: rest[0],
    ppid: Number(rest[1]),
    startTime: rest[19],
  };
}

/** The config file a containerd command line loads: `--config X`, `--config=X`, `-c X`, or the default. */
export function containerdConfigFromArgv(argv: string[]): string {
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i];
    if ((arg === "--config" || arg === "-c" || arg === "-config") && i + 1 < argv.length) {
      return path.posix.normalize(argv[i + 1]);
    }
    const m = /^--?config=(.*)$/.exec(arg);
    if (m) return path.posix.normalize(m[1]);
  }
  return DEFAULT_CONFIG;
}

function readProc(procDir: string, pid: number): ProcInfo | undefined {
  try {
    const stat = parseStat(fs.readFileSync(path.join(procDir, String(pid), "stat"), "utf8"));
    const cmdline = fs.readFileSync(path.join(procDir, String(pid), "cmdline"), "utf8");
    const argv = cmdline.split("\0");
    if (argv[argv.length - 1] === "") argv.pop();
    return { pid, comm: stat.comm, argv, state: stat.state, startTime: stat.startTime };
  } catch {
    return undefined; // gone while we looked, or not readable
  }
}

/** Every live process named `containerd` in `<host-root>/proc`. */
export function listContainerdProcesses(hostRoot: string): ProcInfo[] {
  const procDir = hostPath(hostRoot, "/proc");
  let entries: string[];
  try {
    entries = fs.readdirSync(procDir);
  } catch (err) {
    throw new RestartError(
      `Cannot list processes in ${procDir} (${messageOf(err)}); --restart kill needs the host's /proc (hostPID).`,
    );
  }
  const found: ProcInfo[] = [];
  for (const name of entries) {
    if (!/^[0-9]+$/.test(name)) continue;
    const info = readProc(procDir, Number(name));
    if (!info || info.argv.length === 0) continue;
    if (info.state === "Z" || info.state === "X") continue;
    // comm is the executable's name; k3s runs containerd as a child whose argv[0] is "containerd".
    if (info.comm === "containerd" || path.posix.basename(info.argv[0]) === "containerd")
      found.push(info);
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/** The one containerd process whose config is `configPath`; throws when there is none or several. */
export function findContainerd(hostRoot: string, configPath: string): ProcInfo {
  const wanted = path.posix.normalize(configPath);
  const all = listContainerdProcesses(hostRoot);
  const matching = all.filter((p) => containerdConfigFromArgv(p.argv) === wanted);
  if (matching.length === 1) return matching[0];
  const seen =
    all.map((p) => `pid ${p.pid} (config ${containerdConfigFromArgv(p.argv)})`).join(", ") ||
    "none";
  if (matching.length === 0) {
    throw new RestartError(
      `No containerd process with config ${wanted} found in ${hostPath(hostRoot, "/proc")}; containerd processes seen: ${seen}.`,
    );
  }
  throw new RestartError(
    `${matching.length} containerd processes use config ${wanted} (${matching.map((p) => p.pid).join(", ")}); refusing to guess which to kill.`,
  );
}

async function waitForExit(hostRoot: string, proc: ProcInfo, timeoutMs: number): Promise<void> {
  const procDir = hostPath(hostRoot, "/proc");
  const deadline = Date.now() + timeoutMs;
  for (let look = 0; ; look++) {
    const now = readProc(procDir, proc.pid);
    // Gone, a zombie waiting for its parent, or the pid reused by another process.
    if (!now || now.state === "Z" || now.state === "X" || now.startTime !== proc.startTime) return;
    if (Date.now() >= deadline) {
      throw new RestartError(
        `containerd (pid ${proc.pid}) did not exit within ${timeoutMs} ms of SIGTERM.`,
      );
    }
    // containerd exits within ms of SIGTERM when idle, seconds when it stops many tasks.
    const pause = backoffDelay(look, {
      initialMs: FIRST_POLL_MS,
      maxMs: SIGTERM_EXIT_POLL_MS,
      factor: 1.5,
    });
    await sleep(Math.min(pause, Math.max(1, deadline - Date.now())));
  }
}
