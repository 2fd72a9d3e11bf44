import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { criVersion } from "../../agent/src/cri";
import {
  RestartError,
  containerdConfigFromArgv,
  findContainerd,
  listContainerdProcesses,
  parseRestartStrategy,
  parseStat,
  restartContainerd,
  systemctlRestart,
  systemdUnit,
  tail,
} from "../../agent/src/containerd/restart";
import {
  describeWithContainerd,
  type TestContainerd,
  startContainerd,
} from "../support/containerd";
import { BUSYBOX, isStaticElf } from "../support/pause";

const tmpDirs: string[] = [];
function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-restart-"));
  tmpDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function write(file: string, content: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode });
}

/** A fake `/proc/<pid>` with the three files the kill strategy reads. */
function fakeProc(
  root: string,
  pid: number,
  comm: string,
  argv: string[],
  state = "S",
  startTime = "4242",
): void {
  // Fields 3..22 of /proc/<pid>/stat; field 22 is the start time.
  const fields = [
    state,
    "1",
    pid,
    pid,
    "0",
    "-1",
    "4194560",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "20",
    "0",
    "1",
  ];
  write(
    path.join(root, "proc", String(pid), "stat"),
    `${pid} (${comm}) ${fields.join(" ")} 0 ${startTime} 0 0\n`,
  );
  write(path.join(root, "proc", String(pid), "comm"), `${comm}\n`);
  write(path.join(root, "proc", String(pid), "cmdline"), `${argv.join("\0")}\0`);
}

describe("restart strategy parsing and small helpers", () => {
  it("accepts the four strategies and names the flag otherwise", () => {
    expect(["systemd", "kill", "command", "none"].map(parseRestartStrategy)).toEqual([
      "systemd",
      "kill",
      "command",
      "none",
    ]);
    expect(() => parseRestartStrategy("reboot")).toThrow(
      new RestartError('--restart must be one of systemd, kill, command, none; got "reboot".'),
    );
  });

  it("parses /proc stat lines whose command name holds spaces and parentheses", () => {
    expect(parseStat("77 (a (b) c) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9876 0 0\n")).toEqual({
      comm: "a (b) c",
      state: "S",
      ppid: 1,
      startTime: "9876",
    });
  });

  it("reads the config path from every containerd flag form, else the default", () => {
    expect(containerdConfigFromArgv(["/usr/bin/containerd"])).toBe("/etc/containerd/config.toml");
    expect(containerdConfigFromArgv(["containerd", "--config", "/a/b.toml"])).toBe("/a/b.toml");
    expect(
      containerdConfigFromArgv(["containerd", "-c", "/var/lib/rancher/k3s/x.toml", "-a", "/s"]),
    ).toBe("/var/lib/rancher/k3s/x.toml");
    expect(containerdConfigFromArgv(["containerd", "--config=/etc//k0s/containerd.toml"])).toBe(
      "/etc/k0s/containerd.toml",
    );
  });

  it("keeps the last lines of a long stderr", () => {
    const text = Array.from({ length: 30 }, (_, i) => `line ${i}`).join("\n");
    expect(tail(text, 3)).toBe("line 27\nline 28\nline 29");
    expect(tail("x".repeat(50), 10, 20)).toBe(`...${"x".repeat(20)}`);
  });
});

describe("none and command strategies", () => {
  it("none restarts nothing and says a manual restart is needed", async () => {
    const result = await restartContainerd({ strategy: "none", hostRoot: "/host" });
    expect(result).toEqual({
      strategy: "none",
      restarted: false,
      durationMs: expect.any(Number),
      detail: "restart strategy is none: restart containerd yourself so it loads the new config.",
    });
  });

  it("command runs through sh -c", async () => {
    const marker = path.join(tmpDir(), "ran");
    const result = await restartContainerd({
      strategy: "command",
      hostRoot: "/",
      command: `echo "$((6 * 7))" > '${marker}'`,
    });
    expect(fs.readFileSync(marker, "utf8")).toBe("42\n");
    expect(result.restarted).toBe(true);
    expect(result.detail).toBe(`ran the restart command "echo "$((6 * 7))" > '${marker}'".`);
  });

  it("command surfaces the exit code and the tail of stderr", async () => {
    const command =
      "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo noise $i >&2; done; echo 'unit not found' >&2; exit 7";
    await expect(
      restartContainerd({ strategy: "command", hostRoot: "/", command }),
    ).rejects.toThrow(
      new RestartError(
        `restart command "${command}" failed with exit code 7; stderr: ` +
          "noise 4\nnoise 5\nnoise 6\nnoise 7\nnoise 8\nnoise 9\nnoise 10\nnoise 11\nnoise 12\nunit not found.",
      ),
    );
  });

  it("command that hangs is killed at the timeout", async () => {
    await expect(
      restartContainerd({
        strategy: "command",
        hostRoot: "/",
        command: "echo stuck >&2; sleep 30",
        timeoutMs: 300,
      }),
    ).rejects.toThrow(
      new RestartError(
        'restart command "echo stuck >&2; sleep 30" did not finish within 300 ms and was killed; stderr: stuck.',
      ),
    );
  });

  it("command requires a command", async () => {
    await expect(
      restartContainerd({ strategy: "command", hostRoot: "/", command: "  " }),
    ).rejects.toThrow(
      new RestartError("--restart-command is required with --restart command, and it is empty."),
    );
  });

  it("command waits for the CRI when given a socket, and says when it never answers", async () => {
    await expect(
      restartContainerd({
        strategy: "command",
        hostRoot: "/",
        command: "true",
        socket: "/nonexistent/containerd.sock",
        wait: { attempts: 2, delayMs: 10 },
      }),
    ).rejects.toThrow(
      new RestartError(
        'containerd did not come back after the restart command "true": containerd did not answer on ' +
          "/nonexistent/containerd.sock after 2 attempt(s) 10 ms apart; last error: CRI Version on " +
          "/nonexistent/containerd.sock failed: the socket does not exist (is containerd running?).",
      ),
    );
  });
});

describe("systemd strategy: unit choice and the systemctl call", () => {
  it("uses containerd.service for plain containerd", () => {
    expect(systemdUnit(tmpDir(), "containerd")).toBe("containerd.service");
  });

  it("picks the k3s unit whose unit file the host has", () => {
    const agent = tmpDir();
    write(path.join(agent, "etc/systemd/system/k3s-agent.service"), "[Unit]\n");
    expect(systemdUnit(agent, "k3s")).toBe("k3s-agent.service");
    const server = tmpDir();
    write(path.join(server, "usr/local/lib/systemd/system/rke2-server.service"), "[Unit]\n");
    expect(systemdUnit(server, "rke2")).toBe("rke2-server.service");
  });

  it("refuses to guess when no or both k3s units exist", () => {
    const none = tmpDir();
    expect(() => systemdUnit(none, "k3s")).toThrow(
      new RestartError(
        "Cannot tell which systemd unit runs k3s's containerd: none of k3s.service, k3s-agent.service exists under " +
          "/etc/systemd/system, /run/systemd/system, /usr/local/lib/systemd/system, /usr/lib/systemd/system, " +
          "/lib/systemd/system; name the unit explicitly.",
      ),
    );
    write(path.join(none, "etc/systemd/system/k3s.service"), "");
    write(path.join(none, "lib/systemd/system/k3s-agent.service"), "");
    expect(() => systemdUnit(none, "k3s")).toThrow(
      /both k3s\.service and k3s-agent\.service exist/,
    );
  });

  it("chroots into the host root to run the host's systemctl, or runs it directly on /", () => {
    expect(systemctlRestart("/host", "containerd.service")).toEqual({
      file: "chroot",
      args: ["/host", "systemctl", "restart", "containerd.service"],
    });
    expect(systemctlRestart("/", "k3s-agent.service")).toEqual({
      file: "systemctl",
      args: ["restart", "k3s-agent.service"],
    });
  });

  it("rejects unit names that are not unit names", () => {
    for (const unit of ["--force", "a b", "x;reboot", ""]) {
      expect(() => systemctlRestart("/host", unit)).toThrow(
        new RestartError(
          `The systemd unit must be a unit name such as containerd.service; got "${unit}".`,
        ),
      );
    }
  });

  it("refuses a host without systemd before running anything", async () => {
    const host = tmpDir();
    await expect(restartContainerd({ strategy: "systemd", hostRoot: host })).rejects.toThrow(
      new RestartError(
        `The host at ${host} does not run systemd (no /run/systemd/system); use --restart kill or command.`,
      ),
    );
  });
});

// chroot needs root, and the fake host's shell is the static busybox.
const chrootReason =
  process.getuid?.() !== 0
    ? "chroot needs root"
    : !fs.existsSync(BUSYBOX) || !isStaticElf(BUSYBOX)
      ? `${BUSYBOX} is not a static busybox (Debian package busybox-static)`
      : undefined;
const describeChroot = chrootReason && process.env.CI !== "true" ? describe.skip : describe;
if (chrootReason) console.warn(`systemd strategy against a fake host: ${chrootReason}.`);

describeChroot("systemd strategy against a fake host root with its own systemctl", () => {
  let host: string;
  beforeAll(() => {
    if (chrootReason) throw new Error(`Cannot run on CI: ${chrootReason}.`);
    host = tmpDir();
    fs.mkdirSync(path.join(host, "bin"), { recursive: true });
    fs.copyFileSync(BUSYBOX, path.join(host, "bin/busybox"));
    fs.chmodSync(path.join(host, "bin/busybox"), 0o755);
    fs.symlinkSync("busybox", path.join(host, "bin/sh"));
    fs.mkdirSync(path.join(host, "run/systemd/system"), { recursive: true });
    // Stands in for the host's systemctl: records its arguments, fails on demand.
    write(
      path.join(host, "usr/bin/systemctl"),
      '#!/bin/sh\necho "$@" >> /systemctl.calls\nif [ -f /fail ]; then echo "Job for $2 failed." >&2; exit 1; fi\n',
      0o755,
    );
    write(path.join(host, "etc/systemd/system/k3s.service"), "[Unit]\n");
  });

  it("restarts the distribution's unit through the host's systemctl", async () => {
    const result = await restartContainerd({
      strategy: "systemd",
      hostRoot: host,
      distribution: "k3s",
    });
    expect(result.restarted).toBe(true);
    expect(result.detail).toBe("restarted systemd unit k3s.service.");
    expect(fs.readFileSync(path.join(host, "systemctl.calls"), "utf8")).toBe(
      "restart k3s.service\n",
    );
  });

  it("surfaces systemctl's exit code and stderr", async () => {
    write(path.join(host, "fail"), "");
    try {
      await expect(
        restartContainerd({ strategy: "systemd", hostRoot: host, unit: "containerd.service" }),
      ).rejects.toThrow(
        new RestartError(
          "systemctl restart containerd.service failed with exit code 1; stderr: Job for containerd.service failed.",
        ),
      );
    } finally {
      fs.rmSync(path.join(host, "fail"));
    }
  });
});

describe("kill strategy: finding the right containerd in <host-root>/proc", () => {
  let host: string;
  beforeAll(() => {
    host = tmpDir();
    fakeProc(host, 100, "containerd", ["/usr/bin/containerd"]);
    fakeProc(host, 200, "containerd", [
      "containerd",
      "-c",
      "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
      "-a",
      "/run/k3s/containerd/containerd.sock",
    ]);
    fakeProc(host, 300, "containerd-shim", [
      "/usr/bin/containerd-shim-runc-v2",
      "-namespace",
      "k8s.io",
    ]);
    fakeProc(host, 400, "containerd", ["containerd", "--config", "/etc/old.toml"], "Z");
    fakeProc(host, 500, "containerd", [
      "containerd",
      "--config=/var/run/docker/containerd/containerd.toml",
    ]);
    fakeProc(host, 600, "k3s-agent", ["/usr/local/bin/k3s", "agent"]);
    write(path.join(host, "proc/self/stat"), "not a pid dir\n");
  });

  it("lists live containerd processes only (no shims, no zombies, no k3s itself)", () => {
    expect(listContainerdProcesses(host).map((p) => p.pid)).toEqual([100, 200, 500]);
  });

  it("matches on the config path, default included", () => {
    expect(findContainerd(host, "/etc/containerd/config.toml").pid).toBe(100);
    expect(findContainerd(host, "/var/lib/rancher/k3s/agent/etc/containerd/config.toml").pid).toBe(
      200,
    );
  });

  it("names what it saw when no containerd uses the config", () => {
    expect(() => findContainerd(host, "/etc/old.toml")).toThrow(
      new RestartError(
        `No containerd process with config /etc/old.toml found in ${host}/proc; containerd processes seen: ` +
          "pid 100 (config /etc/containerd/config.toml), " +
          "pid 200 (config /var/lib/rancher/k3s/agent/etc/containerd/config.toml), " +
          "pid 500 (config /var/run/docker/containerd/containerd.toml).",
      ),
    );
  });

  it("refuses to pick one of several with the same config", () => {
    const twin = tmpDir();
    fakeProc(twin, 10, "containerd", ["containerd"]);
    fakeProc(twin, 11, "containerd", ["containerd", "-c", "/etc/containerd/config.toml"]);
    expect(() => findContainerd(twin, "/etc/containerd/config.toml")).toThrow(
      new RestartError(
        "2 containerd processes use config /etc/containerd/config.toml (10, 11); refusing to guess which to kill.",
      ),
    );
  });

  it("needs the socket to know when containerd is back", async () => {
    await expect(restartContainerd({ strategy: "kill", hostRoot: host })).rejects.toThrow(
      new RestartError(
        "--restart kill needs the containerd socket to know when containerd is back.",
      ),
    );
  });

  it("says so when the host's /proc is not there", async () => {
    const empty = tmpDir();
    expect(() => listContainerdProcesses(empty)).toThrow(
      /^Cannot list processes in .*\/proc \(ENOENT: .*\); --restart kill needs the host's \/proc \(hostPID\)\.$/,
    );
  });
});

/**
 * Spawns a stand-in process whose name (comm) is `containerd`, with its own `--config`, that
 * reacts to SIGTERM as `onTerm` says (a script's comm is the script's file name).
 */
function fakeContainerd(onTerm: string): { child: ChildProcess; config: string } {
  const dir = tmpDir();
  const script = path.join(dir, "containerd");
  write(script, `#!/bin/sh\ntrap '${onTerm}' TERM\nwhile :; do sleep 0.05; done\n`, 0o755);
  const config = path.join(dir, "fake.toml");
  const child = spawn(script, ["--config", config], { stdio: "ignore" });
  return { child, config };
}

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  if (!check()) throw new Error("condition not met within 2 s");
}

describe("kill strategy: waiting for the old process to exit", () => {
  it("gives up when containerd ignores SIGTERM, naming the pid", async () => {
    const { child, config } = fakeContainerd("");
    try {
      await waitUntil(() => listContainerdProcesses("/").some((p) => p.pid === child.pid));
      await expect(
        restartContainerd({
          strategy: "kill",
          hostRoot: "/",
          socket: "/nonexistent.sock",
          configPath: config,
          timeoutMs: 300,
        }),
      ).rejects.toThrow(
        new RestartError(`containerd (pid ${child.pid}) did not exit within 300 ms of SIGTERM.`),
      );
      expect(alive(child.pid as number)).toBe(true);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]$/.test(parseStat(stat).state);
  } catch {
    return false;
  }
}

describeWithContainerd("restart strategies against a real containerd", () => {
  let ctrd: TestContainerd;
  beforeAll(async () => {
    ctrd = await startContainerd();
  }, 60_000);
  afterAll(async () => {
    await ctrd?.cleanup();
  });

  it("command: the harness restart script restarts containerd and the CRI answers", async () => {
    const before = ctrd.pid;
    const result = await restartContainerd({
      strategy: "command",
      hostRoot: "/",
      command: ctrd.restartScript,
      socket: ctrd.socket,
    });
    expect(result.restarted).toBe(true);
    expect(ctrd.pid).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect((await criVersion(ctrd.socket)).runtimeName).toBe("containerd");
  });

  it("kill: SIGTERMs only the containerd with this config and waits until its supervisor restarted it", async () => {
    const before = ctrd.pid;
    const supervisor = ctrd.superviseNextExit();
    const result = await restartContainerd({
      strategy: "kill",
      hostRoot: "/",
      socket: ctrd.socket,
      configPath: ctrd.configPath,
      wait: { attempts: 100, delayMs: 100 },
    });
    // Checked before the supervisor settles: the strategy itself must have waited for the exit
    // and for the new containerd.
    expect(alive(before)).toBe(false);
    expect(ctrd.pid).not.toBe(before);
    await supervisor;
    expect(result.restarted).toBe(true);
    expect(result.detail).toBe(
      `sent SIGTERM to containerd pid ${before} (config ${ctrd.configPath}); its supervisor restarted it.`,
    );
    expect((await criVersion(ctrd.socket)).runtimeName).toBe("containerd");
  });

  it("kill: does not return before the old process has exited, even while the socket still answers", async () => {
    // The stand-in takes 600 ms to exit after SIGTERM; the CRI socket (the harness's) answers
    // throughout, so only the wait for the exit can hold the strategy back.
    const { child, config } = fakeContainerd("sleep 0.6; exit 0");
    try {
      await waitUntil(() => listContainerdProcesses("/").some((p) => p.pid === child.pid));
      const result = await restartContainerd({
        strategy: "kill",
        hostRoot: "/",
        socket: ctrd.socket,
        configPath: config,
      });
      expect(alive(child.pid as number)).toBe(false);
      expect(result.durationMs).toBeGreaterThanOrEqual(550);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("kill: a config no process uses signals nothing", async () => {
    const before = ctrd.pid;
    await expect(
      restartContainerd({
        strategy: "kill",
        hostRoot: "/",
        socket: ctrd.socket,
        configPath: path.join(ctrd.dir, "other.toml"),
      }),
    ).rejects.toThrow(
      /^No containerd process with config .*\/other\.toml found in \/proc; containerd processes seen: /,
    );
    expect(ctrd.pid).toBe(before);
    expect(alive(before)).toBe(true);
  });

  it("kill: without a supervisor containerd does not come back, and the error says so after bounded retries", async () => {
    const before = ctrd.pid;
    try {
      await expect(
        restartContainerd({
          strategy: "kill",
          hostRoot: "/",
          socket: ctrd.socket,
          configPath: ctrd.configPath,
          wait: { attempts: 3, delayMs: 50 },
        }),
      ).rejects.toThrow(
        new RestartError(
          `containerd did not come back after SIGTERM to containerd pid ${before}: containerd did not answer on ` +
            `${ctrd.socket} after 3 attempt(s) 50 ms apart; last error: CRI Version on ${ctrd.socket} failed: ` +
            "the socket does not exist (is containerd running?).",
        ),
      );
      expect(alive(before)).toBe(false);
    } finally {
      await ctrd.start();
    }
  });
});
