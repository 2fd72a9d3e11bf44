/**
 * Restarting containerd so it loads a changed config, by one of four strategies:
 *
 * - `systemd`: `systemctl restart <unit>` chrooted into the host root. The host's own systemctl
 *   talks to the host's systemd over the host's bus (`/run/dbus/system_bus_socket`, or systemd's
 *   private socket), waits for the restart job like an operator's `systemctl restart` does, and
 *   needs no D-Bus client in the image (the NVIDIA container toolkit restarts containerd the same
 *   way). Needs CAP_SYS_CHROOT, which the privileged DaemonSet has.
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
import type { ContainerdDistribution } from "../../../components/contract";
import { type RetryOptions, waitForCri } from "../cri";
import { hostPath } from "../host";

export const RESTART_STRATEGIES = ["systemd", "kill", "command", "none"] as const;
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
  /** `systemd`: the unit to restart. Defaults to the distribution's unit, see {@link systemdUnit}. */
  unit?: string;
  /** Picks the default systemd unit. Defaults to `containerd`. */
  distribution?: ContainerdDistribution;
  /**
   * `kill`: the config file (host path) of the containerd to restart, as given by its `--config`
   * flag or containerd's default `/etc/containerd/config.toml`. Only a process with exactly this
   * config is signalled, so another containerd on the host (Docker's, a test's) is never hit.
   */
  configPath?: string;
  /** Limit for the command, for systemctl, and for the killed process to exit. Defaults to 120 s. */
  timeoutMs?: number;
  /** Retries while waiting for the CRI to answer again. */
  wait?: RetryOptions;
}

export interface RestartResult {
  strategy: RestartStrategy;
  /** Whether containerd was restarted (false only for `none`). */
  restarted: boolean;
  /** Wall time of the restart, waiting for the CRI included. */
  durationMs: number;
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
const DEFAULT_CONFIG = "/etc/containerd/config.toml";
const SIGTERM_EXIT_POLL_MS = 50;

/** Restarts containerd by `opts.strategy`. Throws {@link RestartError} when it cannot. */
export async function restartContainerd(opts: RestartOptions): Promise<RestartResult> {
  const started = Date.now();
  const done = (restarted: boolean, detail: string): RestartResult => ({
    strategy: opts.strategy,
    restarted,
    durationMs: Date.now() - started,
    detail,
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
      await waitForSocket(opts, `the restart command "${command}"`);
      return done(true, `ran the restart command "${command}".`);
    }
    case "systemd": {
      const unit = opts.unit ?? systemdUnit(opts.hostRoot, opts.distribution ?? "containerd");
      const { file, args } = systemctlRestart(opts.hostRoot, unit);
      assertSystemdHost(opts.hostRoot);
      await runCommand(file, args, `systemctl restart ${unit}`, opts.timeoutMs);
      await waitForSocket(opts, `systemctl restart ${unit}`);
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
          `Could not SIGTERM containerd (pid ${proc.pid}): ${(err as Error).message}.`,
        );
      }
      await waitForExit(opts.hostRoot, proc, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      await waitForSocket(opts, `SIGTERM to containerd pid ${proc.pid}`);
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
    throw new RestartError(
      `containerd did not come back after ${after}: ${(err as Error).message}`,
    );
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

/** Where unit files live on a host, most specific first. */
const UNIT_DIRS = [
  "/etc/systemd/system",
  "/run/systemd/system",
  "/usr/local/lib/systemd/system",
  "/usr/lib/systemd/system",
  "/lib/systemd/system",
];

/**
 * The unit that runs containerd for a distribution: its only candidate, or the one candidate
 * whose unit file exists on the host (k3s server vs agent). Throws when it cannot tell.
 */
export function systemdUnit(hostRoot: string, distribution: ContainerdDistribution): string {
  const candidates = SYSTEMD_UNITS[distribution];
  if (!candidates) {
    throw new RestartError(
      `Unknown containerd distribution "${distribution}"; expected one of ${Object.keys(SYSTEMD_UNITS).join(", ")}.`,
    );
  }
  if (candidates.length === 1) return candidates[0];
  const present = candidates.filter((unit) =>
    UNIT_DIRS.some((dir) => fs.existsSync(hostPath(hostRoot, path.posix.join(dir, unit)))),
  );
  if (present.length === 1) return present[0];
  throw new RestartError(
    `Cannot tell which systemd unit runs ${distribution}'s containerd: ${
      present.length
        ? `both ${present.join(" and ")} exist`
        : `none of ${candidates.join(", ")} exists`
    } under ${UNIT_DIRS.join(", ")}; name the unit explicitly.`,
  );
}

const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]+$/;

/** The exact command the systemd strategy runs: the host's systemctl, chrooted into the host. */
export function systemctlRestart(hostRoot: string, unit: string): { file: string; args: string[] } {
  if (!UNIT_NAME.test(unit) || unit.startsWith("-")) {
    throw new RestartError(
      `The systemd unit must be a unit name such as containerd.service; got "${unit}".`,
    );
  }
  const args = ["restart", unit];
  if (path.resolve(hostRoot) === "/") return { file: "systemctl", args };
  return { file: "chroot", args: [hostRoot, "systemctl", ...args] };
}

/** systemd's own test for "booted with systemd" (sd_booted): /run/systemd/system exists. */
function assertSystemdHost(hostRoot: string): void {
  if (!fs.existsSync(hostPath(hostRoot, "/run/systemd/system"))) {
    throw new RestartError(
      `The host at ${hostRoot} does not run systemd (no /run/systemd/system); use --restart kill or command.`,
    );
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
      `Cannot list processes in ${procDir} (${(err as Error).message}); --restart kill needs the host's /proc (hostPID).`,
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
  for (;;) {
    const now = readProc(procDir, proc.pid);
    // Gone, a zombie waiting for its parent, or the pid reused by another process.
    if (!now || now.state === "Z" || now.state === "X" || now.startTime !== proc.startTime) return;
    if (Date.now() >= deadline) {
      throw new RestartError(
        `containerd (pid ${proc.pid}) did not exit within ${timeoutMs} ms of SIGTERM.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, SIGTERM_EXIT_POLL_MS));
  }
}
