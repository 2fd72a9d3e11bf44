import * as fs from "node:fs";
import { AgentError, ExitCode } from "../../agent/src/lib/errors";
import {
  checkCgroup,
  checkPayload,
  checkConfig,
  checkContainerd,
  checkKernel,
  compareVersions,
  formatPreflight,
  parseMinContainerd,
  parseMountinfo,
  parseSkipList,
  parseVersion,
  preflightPassed,
  readCgroupFacts,
  readPayloadFact,
  runPreflight,
  type Version,
} from "../../agent/src/installer/preflight";
import { makeHostRoot, putHostFile, removeHostRoot } from "../support/hostRoot";

// /proc/1/mountinfo of a hybrid host (systemd's "hybrid" layout; this one is the CI VM's).
const HYBRID = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=4096k
30 22 0:27 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
31 30 0:28 / /sys/fs/cgroup rw,relatime shared:7 - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:8 - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:16 - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:17 - cgroup2 cgroup2 rw
`;

// A unified host (Debian 12, Ubuntu 22.04+ default).
const UNIFIED = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:27 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
31 30 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:7 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

// cgroup v1 only (CentOS 7 style).
const LEGACY = `31 30 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:8 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory
`;

const CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc\n";

describe("versions", () => {
  it.each([
    ["6.18.44-fc-v669", [6, 18, 44]],
    ["5.15.0-105-generic", [5, 15, 0]],
    ["6.1", [6, 1, 0]],
    ["1.6.20~ds1", [1, 6, 20]],
    ["v2.1.0", [2, 1, 0]],
    ["1.7.27-0ubuntu1~24.04.1", [1, 7, 27]],
    ["v1.7.13-k3s1", [1, 7, 13]],
    ["2.0.0-rc.1", [2, 0, 0]],
    ["  v10.20.30+meta", [10, 20, 30]],
    ["unknown", null],
    ["7", null],
  ])("parses %j", (text, expected) => {
    expect(parseVersion(text)).toEqual(expected);
  });

  it("compares numerically, not as strings", () => {
    expect(compareVersions([1, 10, 0], [1, 9, 9])).toBeGreaterThan(0);
    expect(compareVersions([6, 1, 0], [6, 1, 0])).toBe(0);
    expect(compareVersions([5, 99, 0], [6, 1, 0])).toBeLessThan(0);
  });
});

describe("flags", () => {
  it("parses --skip-preflight lists and all", () => {
    expect([...parseSkipList(undefined)]).toEqual([]);
    expect([...parseSkipList(" kernel, cgroup ,")]).toEqual(["kernel", "cgroup"]);
    expect([...parseSkipList("all")]).toEqual([
      "kernel",
      "cgroup",
      "containerd",
      "config",
      "payload",
    ]);
  });

  it("rejects an unknown check as bad input naming the flag and the allowed values", () => {
    let err: unknown;
    try {
      parseSkipList("kernel,cgroups");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).exitCode).toBe(ExitCode.BadInput);
    expect((err as AgentError).message).toBe(
      '--skip-preflight has unknown check "cgroups"; allowed: kernel, cgroup, containerd, config, payload, all.',
    );
  });

  it("parses --min-containerd and rejects junk", () => {
    expect(parseMinContainerd(undefined)).toEqual([1, 7, 0]);
    expect(parseMinContainerd("v2.0.1")).toEqual([2, 0, 1]);
    expect(() => parseMinContainerd("1.7.x")).toThrow(
      '--min-containerd must be a version like 1.7 or 2.0.1; got "1.7.x".',
    );
    expect(() => parseMinContainerd("2")).toThrow(AgentError);
  });
});

describe("checks", () => {
  it.each([
    ["6.18.44-fc-v669", "pass", "6.18.44 >= 6.1"],
    ["6.1.0-18-amd64", "pass", "6.1.0 >= 6.1"],
    ["5.15.0-105-generic", "fail", "5.15.0 < 6.1: vNode needs Linux 6.1 or newer"],
    ["6.0.19", "fail", "6.0.19 < 6.1: vNode needs Linux 6.1 or newer"],
    ["weird", "fail", 'cannot read a version from kernel release "weird"'],
  ])("kernel %s: %s", (release, status, detail) => {
    expect(checkKernel(release)).toEqual({ name: "kernel", status, ok: status === "pass", detail });
  });

  it("cgroup: passes a unified host", () => {
    expect(checkCgroup({ rootControllers: CONTROLLERS, mounts: parseMountinfo(UNIFIED) })).toEqual({
      name: "cgroup",
      status: "pass",
      ok: true,
      detail: "v2 unified, controllers: cpuset cpu io memory hugetlb pids rdma misc",
    });
  });

  it("cgroup: fails a hybrid host, naming the v1 and v2 mounts", () => {
    expect(checkCgroup({ rootControllers: null, mounts: parseMountinfo(HYBRID) })).toEqual({
      name: "cgroup",
      status: "fail",
      ok: false,
      detail:
        "hybrid cgroup v1/v2 (v1 at /sys/fs/cgroup/cpu, /sys/fs/cgroup/memory, /sys/fs/cgroup/systemd; v2 at /sys/fs/cgroup/unified): vNode needs cgroup v2 only (boot with systemd.unified_cgroup_hierarchy=1)",
    });
  });

  it("cgroup: fails a v1-only host and a v2 root with a v1 hierarchy mounted elsewhere", () => {
    expect(checkCgroup({ rootControllers: null, mounts: parseMountinfo(LEGACY) }).detail).toBe(
      "cgroup v1 (at /sys/fs/cgroup/cpu,cpuacct, /sys/fs/cgroup/memory): vNode needs cgroup v2 only (boot with systemd.unified_cgroup_hierarchy=1)",
    );
    const extra = UNIFIED + "50 22 0:40 / /run/cgroup\\040v1 rw - cgroup cgroup rw,name=systemd\n";
    expect(checkCgroup({ rootControllers: CONTROLLERS, mounts: parseMountinfo(extra) })).toEqual({
      name: "cgroup",
      status: "fail",
      ok: false,
      detail:
        "cgroup v2 at /sys/fs/cgroup but v1 hierarchies are mounted too (/run/cgroup v1): vNode needs cgroup v2 only (boot with systemd.unified_cgroup_hierarchy=1)",
    });
  });

  it("cgroup: fails when there is no cgroup at all, and says when mounts were not checked", () => {
    expect(checkCgroup({ rootControllers: null, mounts: null }).detail).toBe(
      "/sys/fs/cgroup/cgroup.controllers not found (no cgroup v2 root): vNode needs cgroup v2 only (boot with systemd.unified_cgroup_hierarchy=1)",
    );
    expect(checkCgroup({ rootControllers: "", mounts: null }).detail).toBe(
      "v2 unified, controllers: none (host mountinfo not readable; v1 mounts not checked)",
    );
  });

  const min17: Version = [1, 7, 0];
  it.each([
    [{ runtimeName: "containerd", runtimeVersion: "v2.1.0" }, min17, "pass", "2.1.0 >= 1.7"],
    [
      { runtimeName: "containerd", runtimeVersion: "1.7.27-0ubuntu1~24.04.1" },
      min17,
      "pass",
      "1.7.27 >= 1.7",
    ],
    [
      { runtimeName: "containerd", runtimeVersion: "1.6.20~ds1" },
      min17,
      "fail",
      "1.6.20 < 1.7: vNode needs containerd 1.7 or newer (--min-containerd)",
    ],
    [
      { runtimeName: "containerd", runtimeVersion: "1.6.20~ds1" },
      [1, 6, 0] as Version,
      "pass",
      "1.6.20 >= 1.6",
    ],
    [
      { runtimeName: "containerd", runtimeVersion: "v2.0.4" },
      [2, 0, 5] as Version,
      "fail",
      "2.0.4 < 2.0.5: vNode needs containerd 2.0.5 or newer (--min-containerd)",
    ],
    [
      { runtimeName: "cri-o", runtimeVersion: "1.29.1" },
      min17,
      "fail",
      "the CRI runtime is cri-o 1.29.1; vNode needs containerd >= 1.7",
    ],
    [
      { runtimeName: "containerd", runtimeVersion: "dev" },
      min17,
      "fail",
      `cannot read a version from containerd's "dev"`,
    ],
    [
      new Error("connect ENOENT /run/containerd/containerd.sock"),
      min17,
      "fail",
      "cannot get the runtime version: connect ENOENT /run/containerd/containerd.sock",
    ],
  ])("containerd %j against %j: %s", (reported, min, status, detail) => {
    expect(checkContainerd(reported, min)).toEqual({
      name: "containerd",
      status,
      ok: status === "pass",
      detail,
    });
  });

  const c17 = { runtimeName: "containerd", runtimeVersion: "1.7.27" };
  const c21 = { runtimeName: "containerd", runtimeVersion: "v2.1.0" };
  const cfg = "/etc/containerd/config.toml";
  it.each([
    [{ path: cfg, version: 2 }, c17, "pass", `${cfg} version 2`],
    [{ path: cfg, version: 3 }, c21, "pass", `${cfg} version 3`],
    [{ path: cfg, version: 4 }, null, "pass", `${cfg} version 4`],
    [
      { path: cfg, version: null },
      c17,
      "fail",
      `${cfg} has no version (the v1 format); supported: version 2, 3 or 4`,
    ],
    [{ path: cfg, version: 5 }, c21, "fail", `${cfg} has version 5; supported: version 2, 3 or 4`],
    [
      { path: cfg, version: 3 },
      c17,
      "fail",
      `${cfg} has version 3, which containerd 1.7.27 cannot read (needs 2.x)`,
    ],
    [
      new Error("no containerd config found"),
      c17,
      "fail",
      "cannot read the containerd config: no containerd config found",
    ],
  ])("config %j with %j: %s", (fact, containerd, status, detail) => {
    expect(checkConfig(fact, containerd)).toEqual({
      name: "config",
      status,
      ok: status === "pass",
      detail,
    });
  });
});

describe("runPreflight", () => {
  let root: string;
  beforeEach(async () => {
    root = await makeHostRoot("vnode-preflight-");
  });
  afterEach(async () => {
    await removeHostRoot(root);
  });

  it("reads cgroup facts from the host root, preferring PID 1's mountinfo", async () => {
    await putHostFile(root, "/proc/1/mountinfo", HYBRID);
    await putHostFile(root, "/proc/self/mountinfo", UNIFIED);
    expect(await readCgroupFacts(root)).toEqual({
      rootControllers: null,
      mounts: parseMountinfo(HYBRID),
    });
    await putHostFile(root, "/sys/fs/cgroup/cgroup.controllers", CONTROLLERS);
    expect((await readCgroupFacts(root)).rootControllers).toBe(CONTROLLERS);
  });

  it("prints one line per check", async () => {
    await putHostFile(root, "/sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n");
    await putHostFile(root, "/proc/1/mountinfo", UNIFIED);
    const results = await runPreflight({
      hostRoot: root,
      kernelRelease: () => "6.18.44-fc-v669",
      containerdVersion: async () => ({ runtimeName: "containerd", runtimeVersion: "1.6.20~ds1" }),
      configVersion: async () => ({ path: "/etc/containerd/config.toml", version: 2 }),
      payload: () => readPayloadFact(`${root}/payload`, "containerd-shim-vnode-v2"),
    });
    expect(formatPreflight(results)).toBe(
      [
        "PASS kernel 6.18.44 >= 6.1",
        "PASS cgroup v2 unified, controllers: cpu memory pids",
        "FAIL containerd 1.6.20 < 1.7: vNode needs containerd 1.7 or newer (--min-containerd)",
        "PASS config /etc/containerd/config.toml version 2",
        `FAIL payload ${root}/payload/containerd-shim-vnode-v2 is missing: the agent image carries no vNode runtime; build it with VNODE_IMAGE set to the vNode runtime image of your release`,
      ].join("\n"),
    );
    expect(preflightPassed(results)).toBe(false);
  });

  it("skips checks without running them, and a failed lookup is a failed check, not a crash", async () => {
    await putHostFile(root, "/proc/1/mountinfo", HYBRID);
    const containerdVersion = jest.fn(async () => {
      throw new Error("connect ECONNREFUSED");
    });
    const configVersion = jest.fn(async () => ({ path: "/x", version: 2 }));
    const results = await runPreflight({
      hostRoot: root,
      skip: parseSkipList("kernel,config"),
      minContainerd: parseMinContainerd("1.6"),
      kernelRelease: () => "4.19.0",
      containerdVersion,
      configVersion,
    });
    expect(formatPreflight(results)).toBe(
      [
        "SKIP kernel (--skip-preflight)",
        "FAIL cgroup hybrid cgroup v1/v2 (v1 at /sys/fs/cgroup/cpu, /sys/fs/cgroup/memory, /sys/fs/cgroup/systemd; v2 at /sys/fs/cgroup/unified): vNode needs cgroup v2 only (boot with systemd.unified_cgroup_hierarchy=1)",
        "FAIL containerd cannot get the runtime version: connect ECONNREFUSED",
        "SKIP config (--skip-preflight)",
        "SKIP payload (no payload dir: containerd must already find the shim on the node)",
      ].join("\n"),
    );
    expect(configVersion).not.toHaveBeenCalled();

    const none = await runPreflight({
      hostRoot: root,
      skip: parseSkipList("all"),
      containerdVersion,
      configVersion,
    });
    expect(none.map((r) => r.status)).toEqual(["skip", "skip", "skip", "skip", "skip"]);
    expect(preflightPassed(none)).toBe(true);
    expect(containerdVersion).toHaveBeenCalledTimes(1);
  });
});

describe("payload: the shim containerd will run is in the payload dir", () => {
  let root: string;
  beforeEach(async () => {
    root = await makeHostRoot("vnode-payload-");
  });
  afterEach(async () => {
    await removeHostRoot(root);
  });

  it("passes for an executable file or a symlink to one, fails naming the file otherwise", async () => {
    const shim = "containerd-shim-vnode-v2";
    const dir = `${root}/payload`;
    const verdict = async () =>
      formatPreflight([
        (
          await runPreflight({
            hostRoot: root,
            skip: parseSkipList("kernel,cgroup,containerd,config"),
            containerdVersion: async () => ({ runtimeName: "containerd", runtimeVersion: "2.1.0" }),
            configVersion: async () => ({ path: "/x", version: 3 }),
            payload: () => readPayloadFact(dir, shim),
          })
        )[4],
      ]);
    const advice =
      "the agent image carries no vNode runtime; build it with VNODE_IMAGE set to the vNode runtime image of your release";
    await putHostFile(root, "/payload/vnode-manager", "#!/bin/sh\n", 0o755);
    expect(await verdict()).toBe(`FAIL payload ${dir}/${shim} is missing: ${advice}`);
    fs.symlinkSync("vnode", `${dir}/${shim}`);
    expect(await verdict()).toBe(`FAIL payload ${dir}/${shim} is a symlink to nothing: ${advice}`);
    await putHostFile(root, "/payload/vnode", "#!/bin/sh\n", 0o644);
    expect(await verdict()).toBe(`FAIL payload ${dir}/${shim} is not executable`);
    fs.chmodSync(`${dir}/vnode`, 0o755);
    expect(await verdict()).toBe(`PASS payload ${dir}/${shim} present`);
    fs.rmSync(`${dir}/${shim}`);
    fs.mkdirSync(`${dir}/${shim}`);
    expect(await verdict()).toBe(`FAIL payload ${dir}/${shim} is not a file: ${advice}`);
    expect(formatPreflight([checkPayload(await readPayloadFact(undefined, shim))])).toBe(
      `SKIP payload (no payload dir: containerd must already find ${shim} on the node)`,
    );
  });
});
