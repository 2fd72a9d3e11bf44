/**
 * Test harness: the real containerd from Debian (`/usr/bin/containerd`, 1.6 on bookworm) with a
 * private config, root, state and sockets under a temp dir, so suites run side by side and never
 * touch a containerd the machine already has.
 *
 * The daemon is started and restarted by a generated shell script (`restartScript`) so the agent
 * can use the very same script as `--restart-command`. The script records the pid in a pidfile
 * and only ever signals a process whose command line carries this harness's config path.
 *
 * Usage:
 *   describeWithContainerd("x", () => {
 *     let ctrd: TestContainerd;
 *     beforeAll(async () => { ctrd = await startContainerd({ pauseImage: true }); });
 *     afterAll(async () => { await ctrd?.cleanup(); });
 *   });
 */
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { waitForCri } from "../../agent/src/cri/client";
import { CNI_HOST_DEFAULTS } from "vnode-contract";
import { PAUSE_IMAGE, importPauseImage, pauseImageUnavailable } from "./pause";
import { describeIf } from "./describeIf";

const run = promisify(execFile);

/** A running test containerd. Paths are absolute (and host paths with host root `/`). */
export interface TestContainerd {
  /** Temp dir holding config, root, state, sockets, log and pidfile. */
  readonly dir: string;
  /** The config file containerd runs with (`--config`); edit it and `restart()` to reload. */
  readonly configPath: string;
  /** The config as first written, for byte-identity checks. */
  readonly originalConfig: string;
  /** The gRPC (and CRI) socket. */
  readonly socket: string;
  /** `sh` script: `restartScript [start|stop|restart]`, default restart. Usable as `--restart-command`. */
  readonly restartScript: string;
  /** containerd's stdout/stderr. */
  readonly logPath: string;
  /** The `sandbox_image` of the config ({@link PAUSE_IMAGE}). */
  readonly sandboxImage: string;
  /** The current containerd pid (changes on every restart); throws when it is not running. */
  readonly pid: number;
  /** Starts containerd if it is not running and waits until the CRI answers. */
  start(): Promise<void>;
  /** Stops containerd (SIGTERM, SIGKILL after 10 s) and waits until it is gone. */
  stop(): Promise<void>;
  /** Runs the restart script and waits until the CRI answers. */
  restart(): Promise<void>;
  /**
   * Plays containerd's supervisor (systemd's Restart=always) once, for `--restart kill`: resolves
   * after the current containerd exited and a new one answers the CRI.
   */
  superviseNextExit(): Promise<void>;
  /** Imports the locally built pause image (needed before RunPodSandbox). */
  importPauseImage(): Promise<void>;
  /** The last lines of containerd's log, for failure messages. */
  logTail(lines?: number): string;
  /** Stops containerd, removes leftover tasks, mounts and the temp dir. Safe to call twice. */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  /** TOML appended to the generated config (e.g. another runtime table). */
  extraConfig?: string;
  /**
   * Lay containerd out as on a node under this dir standing in for the node's `/`: config
   * `/etc/containerd/config.toml`, socket `/run/containerd/containerd.sock`, root
   * `/var/lib/containerd`, state `/run/containerd`, and the CRI's CNI dirs at containerd's
   * defaults (`/etc/cni/net.d`, `/opt/cni/bin`), which the config names as node paths. containerd
   * then runs in its own mount namespace where the CNI dirs and each of `nodePaths` (node paths,
   * e.g. the agent's install dir) are the dirs under the host root, so a `runtime_path`, a CNI
   * plugin link or a per-handler `cni_conf_dir` the agent writes resolves as on the node. A node
   * path missing on this machine is created as an empty mount point (only ever mounted on in
   * containerd's namespace) and removed again by `cleanup()`.
   */
  hostRoot?: string;
  nodePaths?: string[];
  /**
   * Node dirs put first on containerd's PATH. Debian's containerd 1.6.20 does not run a CRI
   * runtime's `runtime_path` (seen here: RunPodSandbox fails with `runtime
   * "io.containerd.vnode.v2" binary not installed "containerd-shim-vnode-v2"`); it finds a
   * runtime's shim by the name `runtime_type` gives (`containerd-shim-<name>-v2`) on its PATH,
   * so a test that must run the shim the agent installed names the install dir here.
   */
  shimPath?: string[];
  /** Import the pause image after start. Defaults to false. */
  pauseImage?: boolean;
}

/** Why a real containerd cannot run here, or undefined when it can. */
export function containerdUnavailable(opts: { pauseImage?: boolean } = {}): string | undefined {
  if (process.platform !== "linux")
    return `containerd tests need Linux; this is ${process.platform}`;
  if (process.getuid?.() !== 0) return "containerd tests need root (containerd, runc and mounts)";
  for (const bin of ["containerd", "ctr", "containerd-shim-runc-v2", "runc"]) {
    if (!onPath(bin)) return `${bin} is not installed (Debian packages containerd and runc)`;
  }
  return opts.pauseImage ? pauseImageUnavailable() : undefined;
}

/**
 * `describe` that skips with a printed reason when containerd cannot run here, except on CI
 * (`CI=true`), where a missing requirement is a failing test instead of a silent skip.
 */
export function describeWithContainerd(
  name: string,
  fn: () => void,
  opts: { pauseImage?: boolean } = {},
): void {
  describeIf(containerdUnavailable(opts), name, fn);
}

function onPath(cmd: string): boolean {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  return dirs.some((dir) => dir && fs.existsSync(path.join(dir, cmd)));
}

/** Where the harness's containerd keeps its things. */
interface ContainerdPaths {
  config: string;
  socket: string;
  root: string;
  state: string;
  /** The CRI's CNI dirs, as the config names them. */
  cniConf: string;
  cniBin: string;
}

function harnessPaths(dir: string, hostRoot?: string): ContainerdPaths {
  if (hostRoot === undefined) {
    return {
      config: path.join(dir, "config.toml"),
      socket: path.join(dir, "containerd.sock"),
      root: path.join(dir, "root"),
      state: path.join(dir, "state"),
      cniConf: path.join(dir, "cni", "net.d"),
      cniBin: path.join(dir, "cni", "bin"),
    };
  }
  return {
    config: path.join(hostRoot, "etc/containerd/config.toml"),
    socket: path.join(hostRoot, "run/containerd/containerd.sock"),
    root: path.join(hostRoot, "var/lib/containerd"),
    state: path.join(hostRoot, "run/containerd"),
    cniConf: CNI_HOST_DEFAULTS.confDir,
    cniBin: CNI_HOST_DEFAULTS.binDir,
  };
}

/** The harness's containerd config: version 2, runc declared and default, private dirs. */
export function renderTestConfig(
  dir: string,
  sandboxImage = PAUSE_IMAGE,
  paths: ContainerdPaths = harnessPaths(dir),
): string {
  const q = JSON.stringify; // TOML basic strings accept JSON string escapes for these paths
  return `version = 2
root = ${q(paths.root)}
state = ${q(paths.state)}

[grpc]
  address = ${q(paths.socket)}

[ttrpc]
  address = ${q(`${paths.socket}.ttrpc`)}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(sandboxImage)}
  restrict_oom_score_adj = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = ${q(paths.cniConf)}
    bin_dir = ${q(paths.cniBin)}
`;
}

/** Single-quotes a value for sh. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The start/stop/restart script; `DIR` is baked in so the script runs from anywhere. */
export function renderRestartScript(
  dir: string,
  paths: ContainerdPaths = harnessPaths(dir),
  binds: [string, string][] = [],
  shimPath: string[] = [],
): string {
  // Each bind: the node path, and the dir under the host root it is in containerd's namespace.
  const launch =
    binds.length === 0
      ? 'containerd --config "$CONFIG"'
      : `unshare --mount --propagation private sh -c ${shq(
          `${binds.map(([node, under]) => `mount --bind ${shq(under)} ${shq(node)} && `).join("")}exec containerd --config "$0"`,
        )} "$CONFIG"`;
  return `#!/bin/sh
# Starts, stops or restarts the test containerd in ${dir}, always with the same flags.
# Usage: $0 [start|stop|restart]   (default: restart). Used as the agent's --restart-command.
set -eu
DIR=${shq(dir)}
CONFIG=${shq(paths.config)}
SOCK=${shq(paths.socket)}
PIDFILE="$DIR/containerd.pid"
LOG="$DIR/containerd.log"
PATH=${shq([...shimPath, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"].join(":"))}:"$PATH"
export PATH

# True if $1 is a live (not zombie) containerd started with this config: never signal a
# process that only reused the pid.
ours() {
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)
  [ "$state" != Z ] && [ "$state" != X ] || return 1
  tr '\\0' '\\n' < "/proc/$1/cmdline" | grep -qxF -- "$CONFIG"
}

stop() {
  [ -f "$PIDFILE" ] || return 0
  pid=$(cat "$PIDFILE")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while ours "$pid"; do
      i=$((i + 1))
      if [ "$i" -eq 100 ]; then kill -KILL "$pid" 2>/dev/null || true; fi
      if [ "$i" -ge 150 ]; then echo "containerd (pid $pid) did not exit" >&2; exit 1; fi
      sleep 0.1
    done
  fi
  rm -f "$PIDFILE"
}

start() {
  if [ -f "$PIDFILE" ] && ours "$(cat "$PIDFILE")"; then return 0; fi
  setsid ${launch} >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  i=0
  until ctr --address "$SOCK" --connect-timeout 1s version >/dev/null 2>&1; do
    i=$((i + 1))
    if ! ours "$(cat "$PIDFILE")"; then
      echo "containerd exited while starting; last log lines:" >&2
      tail -n 20 "$LOG" >&2
      exit 1
    fi
    if [ "$i" -ge 300 ]; then
      echo "containerd did not answer on $SOCK within 30 s; last log lines:" >&2
      tail -n 20 "$LOG" >&2
      exit 1
    fi
    sleep 0.1
  done
}

case "\${1:-restart}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) echo "usage: $0 [start|stop|restart]" >&2; exit 2 ;;
esac
`;
}

// Pids of harness daemons alive in this worker, killed on exit if a suite forgot cleanup().
const live = new Map<number, string>();
process.once("exit", () => {
  for (const [pid, config] of live) {
    if (cmdlineHas(pid, config)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
});

/** The process exists and is not a zombie waiting to be reaped. */
function isLive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function cmdlineHas(pid: number, arg: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(arg);
  } catch {
    return false;
  }
}

/** Starts a private containerd; see {@link TestContainerd}. */
export async function startContainerd(opts: StartOptions = {}): Promise<TestContainerd> {
  // Short base path: unix socket paths are limited to 108 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-ctrd-"));
  const paths = harnessPaths(dir, opts.hostRoot);
  for (const d of [paths.root, paths.state, path.dirname(paths.config), path.dirname(paths.socket)])
    fs.mkdirSync(d, { recursive: true });
  for (const sub of ["cni/net.d", "cni/bin"])
    fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const nodePaths =
    opts.hostRoot === undefined ? [] : [paths.cniConf, paths.cniBin, ...(opts.nodePaths ?? [])];
  // Mount points this harness created on the machine, deepest first, removed by cleanup().
  const mountPoints: string[] = [];
  const binds: [string, string][] = nodePaths.map((p) => {
    const under = path.join(opts.hostRoot as string, p);
    fs.mkdirSync(under, { recursive: true });
    const made = fs.mkdirSync(p, { recursive: true });
    if (made !== undefined) {
      for (let d = p; d.length >= made.length; d = path.dirname(d)) mountPoints.push(d);
    }
    return [p, under];
  });
  const configPath = paths.config;
  const socket = paths.socket;
  const restartScript = path.join(dir, "restart.sh");
  const logPath = path.join(dir, "containerd.log");
  const pidFile = path.join(dir, "containerd.pid");
  const originalConfig =
    renderTestConfig(dir, PAUSE_IMAGE, paths) + (opts.extraConfig ? `\n${opts.extraConfig}` : "");
  fs.writeFileSync(configPath, originalConfig);
  fs.writeFileSync(restartScript, renderRestartScript(dir, paths, binds, opts.shimPath), {
    mode: 0o755,
  });

  const logTail = (lines = 20): string => {
    try {
      return fs.readFileSync(logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  };
  const readPid = (): number | undefined => {
    try {
      const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
      return Number.isInteger(pid) && pid > 0 && cmdlineHas(pid, configPath) ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const script = async (action: "start" | "stop" | "restart"): Promise<void> => {
    const before = readPid();
    try {
      await run(restartScript, [action], { timeout: 60_000 });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(
        `Test containerd ${action} in ${dir} failed: ${e.stderr?.trim() || e.message}`,
      );
    } finally {
      if (before) live.delete(before);
      const pid = readPid();
      if (pid) live.set(pid, configPath);
    }
    if (action !== "stop") {
      // The script waits for containerd's API; the CRI plugin finishes initialising just after.
      await waitForCri(socket, { waitMs: 5000 }).catch((err: Error) => {
        throw new Error(`${err.message}\ncontainerd log:\n${logTail()}`);
      });
    }
  };

  let cleaned = false;
  const harness: TestContainerd = {
    dir,
    configPath,
    originalConfig,
    socket,
    restartScript,
    logPath,
    sandboxImage: PAUSE_IMAGE,
    get pid(): number {
      const pid = readPid();
      if (pid === undefined) throw new Error(`Test containerd in ${dir} is not running.`);
      return pid;
    },
    start: () => script("start"),
    stop: () => script("stop"),
    restart: () => script("restart"),
    async superviseNextExit() {
      const pid = harness.pid;
      while (isLive(pid)) await new Promise((resolve) => setTimeout(resolve, 20));
      await script("start");
    },
    importPauseImage: () => importPauseImage(socket),
    logTail,
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      if (readPid()) await removeTasks(socket);
      await script("stop").catch(() => undefined);
      killShims(socket);
      unmountUnder(dir);
      if (opts.hostRoot !== undefined) {
        // The host root is the caller's; what containerd mounted under it is ours.
        unmountUnder(paths.state);
        unmountUnder(paths.root);
      }
      for (const d of mountPoints.sort((a, b) => b.length - a.length)) {
        try {
          fs.rmdirSync(d);
        } catch {
          // not empty: something else uses it now; leave it
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await harness.start();
    if (opts.pauseImage) await harness.importPauseImage();
  } catch (err) {
    await harness.cleanup();
    throw err;
  }
  return harness;
}

/** Force-removes tasks a failed test left running, so their shims and mounts go away cleanly. */
async function removeTasks(socket: string): Promise<void> {
  const ctr = (...args: string[]) =>
    run("ctr", ["--address", socket, "--namespace", "k8s.io", ...args]);
  try {
    const { stdout } = await ctr("tasks", "ls", "--quiet");
    for (const id of stdout.split("\n").filter(Boolean)) {
      await ctr("tasks", "rm", "--force", id).catch(() => undefined);
    }
  } catch {
    // containerd already unusable; killShims below is the fallback
  }
}

/** Kills shims (and their children) still serving this containerd, found by their -address. */
function killShims(socket: string): void {
  const procs: { pid: number; ppid: number; argv: string[] }[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      procs.push({ pid: Number(name), ppid, argv });
    } catch {
      // exited meanwhile
    }
  }
  const shims = procs.filter((p) =>
    p.argv.some((a, i) => a === "-address" && p.argv[i + 1] === socket),
  );
  for (const shim of shims) {
    for (const child of procs.filter((p) => p.ppid === shim.pid)) signal(child.pid);
    signal(shim.pid);
  }
}

function signal(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Lazily unmounts anything still mounted under `dir`, deepest first, so the dir can be removed. */
function unmountUnder(dir: string): void {
  const mounts = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((mp): mp is string => !!mp && (mp === dir || mp.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const mp of mounts) {
    try {
      execFileSync("umount", ["-l", mp], { stdio: "ignore" });
    } catch {
      // best effort; rmSync will report what is left
    }
  }
}
