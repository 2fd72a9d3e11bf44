import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { criVersion } from "../../agent/src/cri/client";
import { type ContainerdDistribution, VNODE_CNI_CONF_DIR } from "vnode-contract";
import {
  RestartError,
  type RestartOptions,
  SYSTEMD_UNITS,
  chooseSystemdUnit,
  containerdConfigFromArgv,
  findContainerd,
  listContainerdProcesses,
  parseRestartStrategy,
  parseStat,
  restartContainerd,
  tail,
} from "../../agent/src/containerd/control/restart";
import {
  containerdUnavailable,
  describeWithContainerd,
  type TestContainerd,
  startContainerd,
} from "../support/containerd";
import {
  type FakeSystemd,
  type FakeSystemdCall,
  type FakeUnit,
  type TestBus,
  dbusUnavailable,
  describeWithDbus,
  startDbusDaemon,
  startFakeSystemd,
  unitObjectPath,
} from "../support/dbus";
import { runAgentCli } from "../support/agentHost";
import { describeIf } from "../support/describeIf";

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
        wait: { waitMs: 30 },
      }),
    ).rejects.toThrow(
      new RegExp(
        '^containerd did not come back after the restart command "true": containerd did not answer on ' +
          "/nonexistent/containerd\\.sock within 30 ms \\(\\d+ call\\(s\\)\\); last error: CRI Version on " +
          "/nonexistent/containerd\\.sock failed: the socket does not exist \\(is containerd running\\?\\)\\.$",
      ),
    );
  });
});

const active = (): FakeUnit => ({ loadState: "loaded", activeState: "active" });
const MANAGER = "org.freedesktop.systemd1.Manager";
const PROPERTIES = "org.freedesktop.DBus.Properties";
const UNIT = "org.freedesktop.systemd1.Unit";
const SYSTEMD = "/org/freedesktop/systemd1";

/** The calls the agent makes to check one unit: LoadUnit, then its two states. */
function unitCalls(unit: string): FakeSystemdCall[] {
  return [
    { interface: MANAGER, member: "LoadUnit", path: SYSTEMD, args: [unit] },
    { interface: PROPERTIES, member: "Get", path: unitObjectPath(unit), args: [UNIT, "LoadState"] },
    {
      interface: PROPERTIES,
      member: "Get",
      path: unitObjectPath(unit),
      args: [UNIT, "ActiveState"],
    },
  ];
}

/** The calls the agent makes to restart a unit: Subscribe (for JobRemoved), RestartUnit. */
function restartCalls(unit: string): FakeSystemdCall[] {
  return [
    { interface: MANAGER, member: "Subscribe", path: SYSTEMD, args: [] },
    { interface: MANAGER, member: "RestartUnit", path: SYSTEMD, args: [unit, "replace"] },
  ];
}

describe("systemd strategy: unit names, unit choice, the bus socket", () => {
  const state = (unit: string, loadState: string, activeState: string) => ({
    unit,
    path: unitObjectPath(unit),
    loadState,
    activeState,
  });

  it("rejects --restart-unit values that are not unit names, before connecting", async () => {
    for (const unit of ["--force", "a b", "x;reboot", ""]) {
      await expect(
        restartContainerd({ strategy: "systemd", hostRoot: tmpDir(), unit }),
      ).rejects.toThrow(
        new RestartError(
          `--restart-unit must be a systemd unit name such as containerd.service; got "${unit}".`,
        ),
      );
    }
  });

  it("chooses the first active candidate, else the only loaded one", () => {
    expect(
      chooseSystemdUnit("k3s", [
        state("k3s.service", "not-found", "inactive"),
        state("k3s-agent.service", "loaded", "active"),
      ]),
    ).toBe("k3s-agent.service");
    expect(
      chooseSystemdUnit("rke2", [
        state("rke2-server.service", "loaded", "active"),
        state("rke2-agent.service", "loaded", "active"),
      ]),
    ).toBe("rke2-server.service");
    expect(
      chooseSystemdUnit("k0s", [
        state("k0scontroller.service", "not-found", "inactive"),
        state("k0sworker.service", "loaded", "failed"),
      ]),
    ).toBe("k0sworker.service");
  });

  it("refuses to guess, naming every candidate's states", () => {
    expect(() =>
      chooseSystemdUnit("k3s", [
        state("k3s.service", "not-found", "inactive"),
        state("k3s-agent.service", "not-found", "inactive"),
      ]),
    ).toThrow(
      new RestartError(
        "Cannot tell which systemd unit runs k3s's containerd: none is loaded (k3s.service (not-found, inactive), " +
          "k3s-agent.service (not-found, inactive)); set --restart-unit to the unit that runs containerd.",
      ),
    );
    expect(() =>
      chooseSystemdUnit("rke2", [
        state("rke2-server.service", "loaded", "inactive"),
        state("rke2-agent.service", "loaded", "failed"),
      ]),
    ).toThrow(
      new RestartError(
        "Cannot tell which systemd unit runs rke2's containerd: none is active and several are loaded " +
          "(rke2-server.service (loaded, inactive), rke2-agent.service (loaded, failed)); set --restart-unit to " +
          "the unit that runs containerd.",
      ),
    );
  });

  it("has candidates for every distribution", () => {
    expect(SYSTEMD_UNITS).toEqual({
      containerd: ["containerd.service"],
      k3s: ["k3s.service", "k3s-agent.service"],
      rke2: ["rke2-server.service", "rke2-agent.service"],
      microk8s: ["snap.microk8s.daemon-containerd.service"],
      k0s: ["k0scontroller.service", "k0sworker.service"],
    });
  });

  it("escapes unit names into object paths as systemd does (the fake's paths)", () => {
    expect(unitObjectPath("containerd.service")).toBe(
      "/org/freedesktop/systemd1/unit/containerd_2eservice",
    );
    expect(unitObjectPath("k3s-agent.service")).toBe(
      "/org/freedesktop/systemd1/unit/k3s_2dagent_2eservice",
    );
    expect(unitObjectPath("0x.service")).toBe("/org/freedesktop/systemd1/unit/_30x_2eservice");
  });

  it("says to check the /run/dbus mount when the bus socket is missing", async () => {
    const host = tmpDir();
    await expect(restartContainerd({ strategy: "systemd", hostRoot: host })).rejects.toThrow(
      new RestartError(
        `The D-Bus system bus socket ${host}/run/dbus/system_bus_socket does not exist; check that the host's ` +
          `/run/dbus is mounted at ${host}/run/dbus (the DaemonSet mounts it for --restart systemd).`,
      ),
    );
  });

  it("says nothing listens when the socket path is not a listening socket", async () => {
    const host = tmpDir();
    write(path.join(host, "run/dbus/system_bus_socket"), "");
    await expect(restartContainerd({ strategy: "systemd", hostRoot: host })).rejects.toThrow(
      new RestartError(
        `Nothing listens on the D-Bus system bus socket ${host}/run/dbus/system_bus_socket (connection refused); ` +
          "check that dbus runs on the host.",
      ),
    );
  });
});

describeWithDbus("systemd strategy over D-Bus against a fake systemd", () => {
  let bus: TestBus;
  let systemd: FakeSystemd;
  beforeAll(async () => {
    bus = await startDbusDaemon();
    systemd = await startFakeSystemd(bus.socket, { units: {} });
  });
  afterAll(async () => {
    await systemd?.stop();
    await bus?.stop();
  });
  beforeEach(() => {
    systemd.reset();
    systemd.onRestart = undefined;
  });

  const restart = (o: Partial<RestartOptions> = {}) =>
    restartContainerd({ strategy: "systemd", hostRoot: bus.hostRoot, ...o });

  it.each<[ContainerdDistribution, string, Record<string, FakeUnit>, string[]]>([
    [
      "containerd",
      "containerd.service",
      { "containerd.service": active() },
      ["containerd.service"],
    ],
    // The first active candidate wins: k3s-agent on an agent node.
    [
      "k3s",
      "k3s-agent.service",
      { "k3s-agent.service": active() },
      ["k3s.service", "k3s-agent.service"],
    ],
    // rke2-server is active: rke2-agent is not even asked.
    [
      "rke2",
      "rke2-server.service",
      {
        "rke2-server.service": active(),
        "rke2-agent.service": { loadState: "loaded", activeState: "inactive" },
      },
      ["rke2-server.service"],
    ],
    [
      "microk8s",
      "snap.microk8s.daemon-containerd.service",
      { "snap.microk8s.daemon-containerd.service": active() },
      ["snap.microk8s.daemon-containerd.service"],
    ],
    // None active: the only loaded one (a failed k0sworker is started by the restart).
    [
      "k0s",
      "k0sworker.service",
      { "k0sworker.service": { loadState: "loaded", activeState: "failed" } },
      ["k0scontroller.service", "k0sworker.service"],
    ],
  ])(
    "%s: restarts %s, the first active candidate or else the only loaded one",
    async (distribution, unit, units, asked) => {
      systemd.units = units;
      const result = await restart({ distribution });
      expect(result.restarted).toBe(true);
      expect(result.detail).toBe(`restarted systemd unit ${unit}.`);
      expect(systemd.calls).toEqual([...asked.flatMap(unitCalls), ...restartCalls(unit)]);
      // EXTERNAL authentication made the agent uid 0 on the bus.
      expect(systemd.restartCallers).toEqual([0]);
      expect(systemd.units[unit].activeState).toBe("active");
    },
  );

  it("restarts --restart-unit after checking it exists, whatever the distribution", async () => {
    systemd.units = { "my-containerd.service": active() };
    const result = await restart({ unit: "my-containerd.service", distribution: "k3s" });
    expect(result.detail).toBe("restarted systemd unit my-containerd.service.");
    expect(systemd.calls).toEqual([
      ...unitCalls("my-containerd.service"),
      ...restartCalls("my-containerd.service"),
    ]);
  });

  it("names --restart-unit and the unit when systemd has no such unit, and restarts nothing", async () => {
    systemd.units = { "containerd.service": active() };
    await expect(restart({ unit: "contaienrd.service" })).rejects.toThrow(
      new RestartError(
        "--restart-unit contaienrd.service cannot be restarted: systemd has no such unit (LoadState not-found); " +
          "name the unit that runs containerd, e.g. containerd.service.",
      ),
    );
    expect(systemd.calls).toEqual(unitCalls("contaienrd.service"));
  });

  it("refuses a masked unit", async () => {
    systemd.units = { "containerd.service": { loadState: "masked", activeState: "inactive" } };
    await expect(restart({ unit: "containerd.service" })).rejects.toThrow(
      new RestartError(
        "--restart-unit containerd.service cannot be restarted: the unit is masked (LoadState masked); " +
          "name the unit that runs containerd, e.g. containerd.service.",
      ),
    );
    expect(systemd.calls.map((c) => c.member)).toEqual(["LoadUnit", "Get", "Get"]);
  });

  it("refuses to guess the k3s unit when systemd has neither, and restarts nothing", async () => {
    systemd.units = {};
    await expect(restart({ distribution: "k3s" })).rejects.toThrow(
      new RestartError(
        "Cannot tell which systemd unit runs k3s's containerd: none is loaded (k3s.service (not-found, inactive), " +
          "k3s-agent.service (not-found, inactive)); set --restart-unit to the unit that runs containerd.",
      ),
    );
    expect(systemd.calls).toEqual([...unitCalls("k3s.service"), ...unitCalls("k3s-agent.service")]);
  });

  it("returns only after systemd's job finished, not when RestartUnit returns", async () => {
    systemd.units = { "containerd.service": active() };
    let jobFinished = false;
    systemd.onRestart = async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      jobFinished = true;
    };
    const result = await restart();
    expect(jobFinished).toBe(true);
    expect(result.durationMs).toBeGreaterThanOrEqual(290);
  });

  it("gives up on a systemd that does not answer, naming the call", async () => {
    systemd.units = { "containerd.service": active() };
    systemd.hang.add("LoadUnit");
    // 2 s, not less: the same budget bounds the bus's Hello/GetId before LoadUnit, which took
    // over 200 ms on the loaded 2-CPU machine (1 failure in 20 loop runs).
    await expect(restart({ timeoutMs: 2000 })).rejects.toThrow(
      new RestartError(
        `Manager.LoadUnit("containerd.service") on the D-Bus system bus at ${bus.socket} got no answer within 2000 ms.`,
      ),
    );
    expect(systemd.calls.map((c) => c.member)).toEqual(["LoadUnit"]);
  });

  it("fails when the restart job fails, pointing at the unit's journal", async () => {
    systemd.units = { "containerd.service": active() };
    systemd.onRestart = () => {
      throw new Error("containerd exited with status 1");
    };
    await expect(restart()).rejects.toThrow(
      new RestartError(
        'systemd\'s restart job for containerd.service finished with result "failed" instead of "done"; ' +
          "see journalctl -u containerd.service on the node.",
      ),
    );
    expect(systemd.units["containerd.service"].activeState).toBe("failed");
  });

  it("gives up on a job that does not finish within the timeout", async () => {
    systemd.units = { "containerd.service": active() };
    let release = () => undefined as void;
    systemd.onRestart = () => new Promise<void>((resolve) => (release = resolve));
    try {
      // The timeout also bounds each D-Bus call before the job (LoadUnit, Subscribe,
      // RestartUnit): 300 ms was too short for them on a loaded 2-CPU machine (1 failure in 5
      // loop runs at load 17), so the budget is wide and only the job can exhaust it.
      await expect(restart({ timeoutMs: 2000 })).rejects.toThrow(
        /^systemd's restart job \/org\/freedesktop\/systemd1\/job\/[0-9]+ for containerd\.service did not finish within 2000 ms\.$/,
      );
    } finally {
      release();
    }
  });
});

describeWithDbus("systemd strategy on a bus without systemd", () => {
  let bus: TestBus;
  beforeAll(async () => {
    bus = await startDbusDaemon();
  });
  afterAll(async () => {
    await bus?.stop();
  });

  it("says the host does not run systemd", async () => {
    await expect(
      restartContainerd({ strategy: "systemd", hostRoot: bus.hostRoot }),
    ).rejects.toThrow(
      new RestartError(
        `Nothing owns org.freedesktop.systemd1 on the D-Bus system bus at ${bus.socket} ` +
          "(org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.systemd1 was not provided by any " +
          ".service files); the host does not run systemd, use --restart kill or command.",
      ),
    );
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
 *
 * The script must never fork while it waits: a fork keeps comm `containerd` and the same command
 * line until it execs, so `findContainerd` would briefly see two processes with this config and
 * refuse (this made "gives up when containerd ignores SIGTERM" fail about one run in eight when
 * the loop forked `sleep`). It therefore blocks in bash's builtin `read` on a pipe from the test
 * that is never written: no child process. A trapped SIGTERM interrupts `read` (status > 128) and
 * runs the trap; EOF (the test process is gone) ends the script instead of spinning.
 */
function fakeContainerd(onTerm: string): { child: ChildProcess; config: string } {
  const dir = tmpDir();
  const script = path.join(dir, "containerd");
  write(
    script,
    `#!/bin/bash\ntrap '${onTerm}' TERM\nwhile :; do read -r -t 3600; [ $? -gt 128 ] || exit 0; done\n`,
    0o755,
  );
  const config = path.join(dir, "fake.toml");
  const child = spawn(script, ["--config", config], { stdio: ["pipe", "ignore", "ignore"] });
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
    // Where the time went, for the log line and bench:agent: the parts add up to the whole.
    const { restartMs, criMs, exitMs } = result.phases!;
    expect(exitMs).toBeUndefined();
    expect(restartMs + criMs).toBeLessThanOrEqual(result.durationMs);
    expect(restartMs).toBeGreaterThan(0);
  });

  it("kill: SIGTERMs only the containerd with this config and waits until its supervisor restarted it", async () => {
    const before = ctrd.pid;
    const supervisor = ctrd.superviseNextExit();
    const result = await restartContainerd({
      strategy: "kill",
      hostRoot: "/",
      socket: ctrd.socket,
      configPath: ctrd.configPath,
      wait: { waitMs: 10_000 },
    });
    // Checked before the supervisor settles: the strategy itself must have waited for the exit
    // and for the new containerd.
    expect(alive(before)).toBe(false);
    expect(ctrd.pid).not.toBe(before);
    await supervisor;
    expect(result.restarted).toBe(true);
    expect(Object.keys(result.phases!)).toEqual(["restartMs", "criMs", "exitMs"]);
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
          wait: { waitMs: 150 },
        }),
      ).rejects.toThrow(
        new RegExp(
          `^containerd did not come back after SIGTERM to containerd pid ${before}: containerd did not answer on ` +
            `${ctrd.socket.replace(/[.]/g, "\\.")} within 150 ms \\(\\d+ call\\(s\\)\\); last error: CRI Version on .* failed: ` +
            "the socket does not exist \\(is containerd running\\?\\)\\.$",
        ),
      );
      expect(alive(before)).toBe(false);
    } finally {
      await ctrd.start();
    }
  });
});

describeIf(
  dbusUnavailable() ?? containerdUnavailable(),
  "systemd strategy: D-Bus call -> containerd restarts -> CRI answers",
  () => {
    let ctrd: TestContainerd;
    let bus: TestBus;
    let systemd: FakeSystemd;
    beforeAll(async () => {
      ctrd = await startContainerd();
      // The harness dir is the host root: the bus socket under its run/dbus, the CRI socket at
      // host path /containerd.sock.
      bus = await startDbusDaemon({ hostRoot: ctrd.dir });
      // The fake's restart job is the harness's real restart script.
      systemd = await startFakeSystemd(bus.socket, {
        units: { "containerd.service": active() },
        onRestart: () => ctrd.restart(),
      });
    }, 60_000);
    afterAll(async () => {
      await systemd?.stop();
      await bus?.stop();
      await ctrd?.cleanup();
    });

    it("restarts containerd through RestartUnit and waits until the CRI answers", async () => {
      const before = ctrd.pid;
      const result = await restartContainerd({
        strategy: "systemd",
        hostRoot: bus.hostRoot,
        socket: `/${path.relative(ctrd.dir, ctrd.socket)}`,
      });
      expect(result.detail).toBe("restarted systemd unit containerd.service.");
      expect(systemd.calls).toEqual([
        ...unitCalls("containerd.service"),
        ...restartCalls("containerd.service"),
      ]);
      expect(alive(before)).toBe(false);
      expect(ctrd.pid).not.toBe(before);
      expect((await criVersion(ctrd.socket)).runtimeName).toBe("containerd");
    });

    it("the bundled CLI installs and uninstalls with --restart systemd through the bus", async () => {
      const payload = tmpDir();
      write(path.join(payload, "vnode-standin"), "#!/bin/sh\n", 0o755);
      for (const role of ["containerd-shim-vnode-v2", "vnode-cni", "vnode-manager"]) {
        fs.symlinkSync("vnode-standin", path.join(payload, role));
      }
      const flags = [
        "--host-root",
        ctrd.dir,
        "--containerd-config",
        `/${path.relative(ctrd.dir, ctrd.configPath)}`,
        "--containerd-socket",
        `/${path.relative(ctrd.dir, ctrd.socket)}`,
        "--payload-dir",
        payload,
        // containerd runs in this machine's mount namespace, not under --host-root: a host path
        // it is given must be under the test's directory, or it creates the vNode CNI directory
        // (cni_conf_dir, default /etc/vnode/cni/net.d) on the machine itself.
        "--cni-conf-dir",
        path.join(ctrd.dir, "etc/vnode/cni/net.d"),
        "--runtime-type",
        "io.containerd.runc.v2",
        "--skip-preflight",
        "all",
        "--restart",
        "systemd",
      ];
      const machineCniDir = fs.existsSync(VNODE_CNI_CONF_DIR);
      systemd.reset();
      let before = ctrd.pid;
      const install = await runAgentCli(["install", ...flags]);
      expect(install.stderr).not.toMatch(/"level":(50|60)/);
      expect(install.code).toBe(0);
      expect(install.stdout).toMatch(
        /^installed handler vnode: [0-9]+ change\(s\), containerd restarted, CRI handlers: runc, vnode\n$/,
      );
      expect(systemd.calls).toEqual([
        ...unitCalls("containerd.service"),
        ...restartCalls("containerd.service"),
      ]);
      expect(ctrd.pid).not.toBe(before);

      systemd.reset();
      before = ctrd.pid;
      const uninstall = await runAgentCli(["uninstall", ...flags]);
      expect(uninstall.code).toBe(0);
      expect(uninstall.stdout).toBe("uninstalled: config restored, containerd restarted\n");
      expect(systemd.calls).toEqual([
        ...unitCalls("containerd.service"),
        ...restartCalls("containerd.service"),
      ]);
      expect(ctrd.pid).not.toBe(before);
      expect(fs.readFileSync(ctrd.configPath, "utf8")).toBe(ctrd.originalConfig);
      // The machine's own /etc is left alone.
      expect(fs.existsSync(VNODE_CNI_CONF_DIR)).toBe(machineCniDir);
    });
  },
);
