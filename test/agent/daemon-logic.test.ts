/**
 * The daemon's pure decisions: durations, label patches, which repair a drift calls for, the
 * containerd restart budget, whether SIGTERM means the node leaves the runtime, which pods
 * still use it, and the `run` flags as the agent's CLI parses them.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse, stringify } from "smol-toml";
import { ISOLATION_MODE_LABEL, RUNTIME_LABEL } from "vnode-contract";
import type { RunOptions } from "vnode-contract";
import { daemonOptions, kubeServerOf } from "../../agent/src/daemon/options";
import { agentArgvError, parseAgentArgv } from "../support/agentCli";
import { planRegister } from "../../agent/src/containerd/config/plan";
import { collectConfigFiles, hostFiles } from "../../agent/src/containerd/config/snapshot";
import { DriftChecker } from "../../agent/src/daemon/drift";
import { formatDuration, parseDuration } from "../../agent/src/lib/duration";
import { AgentError, ExitCode } from "../../agent/src/lib/errors";
import { type InstallerOptions, resolveLayout } from "../../agent/src/installer/installer";
import type { V1DaemonSet, V1Node, V1Pod } from "../../agent/src/kube/client";
import { parseMinContainerd, parseSkipList } from "../../agent/src/installer/preflight";
import {
  describeDrift,
  desiredLabels,
  type DriftReport,
  labelPatch,
  repairFor,
  RestartBudget,
} from "../../agent/src/daemon/reconcile";
import {
  isVNodeClass,
  nodeLeaving,
  podsUsingRuntime,
  successorOnNode,
} from "../../agent/src/daemon/shutdown";

function thrown(fn: () => unknown): AgentError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AgentError) return err;
    throw err;
  }
  throw new Error("expected an AgentError");
}

describe("parseDuration", () => {
  it.each([
    ["30s", 30_000],
    ["500ms", 500],
    ["10m", 600_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["1.5s", 1500],
    [" 2s ", 2000],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDuration("--interval", text)).toBe(ms);
  });

  it.each([
    ["", "empty"],
    ["30", 'cannot read "30"'],
    ["5 s", 'cannot read "5 s"'],
    ["-1s", 'cannot read "-1s"'],
    ["1d", 'cannot read "1d"'],
  ])("rejects %j naming the flag (%s)", (text, why) => {
    const err = thrown(() => parseDuration("--interval", text));
    expect(err.exitCode).toBe(ExitCode.BadInput);
    expect(err.message).toBe(
      `--interval must be a duration such as 500ms, 30s, 10m, 1h or 1m30s; got ${JSON.stringify(text)} (${why}).`,
    );
  });

  it("enforces a minimum", () => {
    expect(thrown(() => parseDuration("--interval", "50ms", 100)).message).toBe(
      '--interval must be a duration such as 500ms, 30s, 10m, 1h or 1m30s; got "50ms" (at least 100ms).',
    );
    expect(parseDuration("--interval", "100ms", 100)).toBe(100);
  });

  it("formats durations for messages", () => {
    expect([500, 1500, 30_000, 600_000, 3_600_000, 90_000].map(formatDuration)).toEqual([
      "500ms",
      "1.5s",
      "30s",
      "10m",
      "1h",
      "90s",
    ]);
  });
});

describe("labels", () => {
  it("desired labels carry the state and the mode", () => {
    expect(desiredLabels("ready", "per-pod")).toEqual({
      [RUNTIME_LABEL]: "ready",
      [ISOLATION_MODE_LABEL]: "per-pod",
    });
  });

  it("patches only what differs and never touches other labels", () => {
    const current = { "kubernetes.io/os": "linux", [RUNTIME_LABEL]: "installing" };
    expect(labelPatch(current, desiredLabels("ready", "per-namespace"))).toEqual({
      [RUNTIME_LABEL]: "ready",
      [ISOLATION_MODE_LABEL]: "per-namespace",
    });
    expect(
      labelPatch(
        { ...current, [RUNTIME_LABEL]: "ready", [ISOLATION_MODE_LABEL]: "per-namespace" },
        desiredLabels("ready", "per-namespace"),
      ),
    ).toBeNull();
    expect(labelPatch(undefined, { [RUNTIME_LABEL]: "failed" })).toEqual({
      [RUNTIME_LABEL]: "failed",
    });
  });

  it("removes only labels that are there", () => {
    const remove = { [RUNTIME_LABEL]: null, [ISOLATION_MODE_LABEL]: null };
    expect(labelPatch({ [RUNTIME_LABEL]: "ready" }, remove)).toEqual({ [RUNTIME_LABEL]: null });
    expect(labelPatch({ other: "x" }, remove)).toBeNull();
  });
});

describe("repairFor", () => {
  const report = (over: Partial<DriftReport>): DriftReport => ({
    configChanges: [],
    missingArtifacts: [],
    cri: { state: "live" },
    ...over,
  });
  const changed = ["/etc/containerd/config.toml: add runtime handler"];

  it.each<[string, Partial<DriftReport>, string]>([
    ["everything in place", {}, "none"],
    ["config lost the handler, containerd still has it", { configChanges: changed }, "install"],
    [
      "config and CRI lost it",
      { configChanges: changed, cri: { state: "missing", handlers: ["runc"] } },
      "install",
    ],
    ["a payload file is gone", { missingArtifacts: ["/opt/vnode/bin/shim"] }, "install"],
    [
      "config right, containerd stale",
      { cri: { state: "missing", handlers: ["runc"] } },
      "restart",
    ],
    [
      "containerd down while the config drifted",
      { configChanges: changed, cri: { state: "unreachable", reason: "ECONNREFUSED" } },
      "wait",
    ],
    ["containerd not ready", { cri: { state: "not-ready", reason: "starting" } }, "wait"],
    ["a config install would refuse", { configProblem: "x." }, "refuse"],
    [
      "a config install would refuse, payload gone too: still refuse",
      { configProblem: "x.", missingArtifacts: ["/opt/vnode/bin/shim"] },
      "refuse",
    ],
    ["the agent's table rewritten", { configChanges: changed, rewritten: ["/c"] }, "install"],
  ])("%s: %s", (_what, over, action) => {
    expect(repairFor(report(over))).toBe(action);
  });

  it("describes the drift in one sentence", () => {
    expect(
      describeDrift(
        report({
          configChanges: changed,
          missingArtifacts: ["/opt/vnode/bin/a", "/opt/vnode/bin/b"],
          cri: { state: "missing", handlers: [] },
        }),
        "vnode",
      ),
    ).toBe(
      'containerd\'s config lost runtime handler "vnode" (/etc/containerd/config.toml: add runtime handler); payload files are missing: /opt/vnode/bin/a, /opt/vnode/bin/b; the CRI does not report handler "vnode" (it reports none).',
    );
    expect(describeDrift(report({}), "vnode")).toBe("no drift.");
    expect(
      describeDrift(
        report({ configChanges: changed, rewritten: ["/etc/containerd/config.toml"] }),
        "vnode",
      ),
    ).toBe(
      'another tool rewrote /etc/containerd/config.toml without the vnode-agent block, keeping runtime "vnode" as the agent recorded it; re-adopting it (/etc/containerd/config.toml: add runtime handler).',
    );
    expect(
      describeDrift(
        report({
          configProblem: "/c defines runtime vnode.",
          cri: { state: "missing", handlers: [] },
        }),
        "vnode",
      ),
    ).toBe(
      'containerd\'s config cannot take runtime handler "vnode": /c defines runtime vnode; the CRI does not report handler "vnode" (it reports none).',
    );
  });
});

describe("RestartBudget", () => {
  it("allows max restarts per window, then refills as they age out", () => {
    const b = new RestartBudget(3, 600_000);
    expect(b.allows(0)).toBe(true);
    b.record(0);
    b.record(100_000);
    expect(b.allows(100_000)).toBe(true);
    b.record(200_000);
    expect(b.used(200_000)).toBe(3);
    expect(b.allows(200_000)).toBe(false);
    expect(b.nextAllowedAt(200_000)).toBe(600_000);
    expect(b.allows(599_999)).toBe(false);
    expect(b.allows(600_000)).toBe(true);
    expect(b.used(600_000)).toBe(2);
    expect(b.nextAllowedAt(600_000)).toBe(600_000);
  });

  it("a budget of 0 never allows a restart", () => {
    const b = new RestartBudget(0, 1000);
    expect(b.allows(0)).toBe(false);
    expect(b.nextAllowedAt(0)).toBe(Infinity);
  });

  it("rejects a nonsensical budget", () => {
    expect(() => new RestartBudget(-1, 1000)).toThrow(
      "restart budget max must be an integer >= 0; got -1.",
    );
    expect(() => new RestartBudget(3, 0)).toThrow("restart budget window must be > 0 ms; got 0.");
  });
});

describe("nodeLeaving", () => {
  const node = (labels: Record<string, string>): V1Node => ({
    metadata: { name: "n1", labels },
  });
  const ds = (
    spec: NonNullable<NonNullable<V1DaemonSet["spec"]>["template"]["spec"]>,
    deleting = false,
  ): V1DaemonSet => ({
    metadata: {
      name: "agent",
      namespace: "vnode",
      ...(deleting ? { deletionTimestamp: new Date(0) } : {}),
    },
    spec: { selector: {}, template: { spec } },
  });
  const containers = [{ name: "agent" }];

  it("a deleted DaemonSet means leaving", () => {
    expect(nodeLeaving(null, node({}), "vnode/agent")).toEqual({
      leaving: true,
      reason: "DaemonSet vnode/agent no longer exists.",
    });
  });

  it("a DaemonSet being deleted means leaving", () => {
    expect(nodeLeaving(ds({ containers }, true), node({}), "vnode/agent")).toEqual({
      leaving: true,
      reason: "DaemonSet vnode/agent is being deleted.",
    });
  });

  it("a DaemonSet still selecting the node is a rolling update", () => {
    const v = nodeLeaving(
      ds({ containers, nodeSelector: { pool: "sandbox" } }),
      node({ pool: "sandbox", other: "x" }),
      "vnode/agent",
    );
    expect(v).toEqual({
      leaving: false,
      reason:
        "DaemonSet vnode/agent still selects node n1: a rolling update or a pod restart, so the runtime stays installed.",
    });
  });

  it("a nodeSelector the node no longer matches means leaving", () => {
    const sel = ds({ containers, nodeSelector: { pool: "sandbox" } });
    expect(nodeLeaving(sel, node({ pool: "general" }), "vnode/agent")).toEqual({
      leaving: true,
      reason:
        "DaemonSet vnode/agent no longer selects node n1: its nodeSelector wants pool=sandbox, the node has pool=general.",
    });
    expect(nodeLeaving(sel, node({}), "vnode/agent").reason).toBe(
      "DaemonSet vnode/agent no longer selects node n1: its nodeSelector wants pool=sandbox, the node has no label pool.",
    );
  });

  describe("required node affinity", () => {
    const withTerms = (...nodeSelectorTerms: object[]) =>
      ds({
        containers,
        affinity: {
          nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } },
        },
      });
    const leaves = (d: V1DaemonSet, labels: Record<string, string>) =>
      nodeLeaving(d, node(labels), "vnode/agent").leaving;

    it.each<[string, object, Record<string, string>, boolean]>([
      ["In matches", { key: "pool", operator: "In", values: ["a", "b"] }, { pool: "b" }, false],
      ["In misses", { key: "pool", operator: "In", values: ["a"] }, { pool: "b" }, true],
      ["In on a missing label", { key: "pool", operator: "In", values: ["a"] }, {}, true],
      ["NotIn holds", { key: "pool", operator: "NotIn", values: ["a"] }, { pool: "b" }, false],
      ["NotIn on a missing label", { key: "pool", operator: "NotIn", values: ["a"] }, {}, false],
      ["NotIn fails", { key: "pool", operator: "NotIn", values: ["a"] }, { pool: "a" }, true],
      ["Exists", { key: "gpu", operator: "Exists" }, { gpu: "" }, false],
      ["Exists fails", { key: "gpu", operator: "Exists" }, {}, true],
      ["DoesNotExist", { key: "gpu", operator: "DoesNotExist" }, {}, false],
      ["DoesNotExist fails", { key: "gpu", operator: "DoesNotExist" }, { gpu: "1" }, true],
      ["Gt", { key: "gen", operator: "Gt", values: ["5"] }, { gen: "6" }, false],
      ["Gt fails", { key: "gen", operator: "Gt", values: ["5"] }, { gen: "5" }, true],
      ["Lt", { key: "gen", operator: "Lt", values: ["5"] }, { gen: "4" }, false],
      ["Lt on a non-integer", { key: "gen", operator: "Lt", values: ["5"] }, { gen: "x" }, true],
    ])("%s", (_what, expr, labels, leaving) => {
      expect(leaves(withTerms({ matchExpressions: [expr] }), labels)).toBe(leaving);
    });

    it("terms are ORed, expressions ANDed, an empty term matches nothing", () => {
      const d = withTerms(
        {},
        {
          matchExpressions: [
            { key: "pool", operator: "In", values: ["sandbox"] },
            { key: "zone", operator: "Exists" },
          ],
        },
        { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1"] }] },
      );
      expect(leaves(d, { pool: "sandbox", zone: "a" })).toBe(false);
      expect(leaves(d, {})).toBe(false); // by name
      expect(leaves(withTerms({}), { pool: "sandbox" })).toBe(true);
      expect(
        leaves(
          withTerms({
            matchExpressions: [
              { key: "pool", operator: "In", values: ["sandbox"] },
              { key: "zone", operator: "Exists" },
            ],
          }),
          { pool: "sandbox" },
        ),
      ).toBe(true);
      expect(
        nodeLeaving(
          withTerms({ matchFields: [{ key: "metadata.name", operator: "NotIn", values: ["n1"] }] }),
          node({}),
          "vnode/agent",
        ),
      ).toEqual({
        leaving: true,
        reason:
          "DaemonSet vnode/agent no longer selects node n1: no term of its required node affinity matches the node.",
      });
    });
  });
});

describe("pods using the runtime", () => {
  const pod = (ns: string, name: string, runtimeClassName?: string, phase = "Running"): V1Pod => ({
    metadata: { namespace: ns, name },
    spec: { containers: [{ name: "c" }], ...(runtimeClassName ? { runtimeClassName } : {}) },
    status: { phase },
  });

  it("recognises the handler's classes by name by default", () => {
    expect(
      ["vnode", "vnode-per-pod", "vnodex", "runc", undefined].map((c) =>
        isVNodeClass(c, "vnode", null),
      ),
    ).toEqual([true, true, false, false, false]);
  });

  it("uses exactly --runtime-classes when given", () => {
    expect(["sandboxed", "vnode"].map((c) => isVNodeClass(c, "vnode", ["sandboxed"]))).toEqual([
      true,
      false,
    ]);
  });

  it("lists unfinished pods on a vNode class, sorted", () => {
    const pods = [
      pod("b", "build", "vnode"),
      pod("a", "web"),
      pod("a", "job", "vnode-per-pod", "Succeeded"),
      pod("a", "crashed", "vnode", "Failed"),
      pod("a", "pending", "vnode-per-pod", "Pending"),
    ];
    expect(podsUsingRuntime(pods, "vnode", null)).toEqual(["a/pending", "b/build"]);
  });
});

describe("run flags (through the agent's parser)", () => {
  const installer = { handler: { name: "vnode" } } as InstallerOptions;
  const env = { NODE_NAME: "n1", POD_NAMESPACE: "vnode-system" };
  const runOptions = async (...argv: string[]): Promise<RunOptions> =>
    (await parseAgentArgv(["run", ...argv])).options as unknown as RunOptions;
  const options = async (argv: string[], e: Record<string, string> = env) =>
    daemonOptions(await runOptions(...argv), e, installer);

  it("has the documented defaults", async () => {
    const o = await options(["--daemonset", "vnode-agent"]);
    expect({ ...o, installer: undefined }).toEqual({
      node: "n1",
      installer: undefined,
      listen: { host: undefined, port: 8090 },
      intervalMs: 30_000,
      daemonSet: { namespace: "vnode-system", name: "vnode-agent" },
      runtimeClasses: null,
      managerCommand: null,
      managerSocket: null,
      managerContainer: null,
      forceUninstall: false,
      maxRestarts: 3,
      restartWindowMs: 600_000,
      uninstallPodWaitMs: 30_000,
    });
  });

  it("reads every flag", async () => {
    const o = await options(
      [
        ...["--listen", "127.0.0.1:9000", "--interval", "1s", "--daemonset", "ds"],
        ...["--namespace", "other", "--runtime-classes", "vnode, vnode-per-pod,"],
        ...["--manager-command", "/opt/vnode/bin/manager", "--force-uninstall"],
        ...["--manager-socket", "/run/vnode/m.sock", "--manager-container", "vnode-manager"],
        ...["--max-restarts", "0", "--restart-window", "1h", "--uninstall-pod-wait", "0s"],
      ],
      { ...env, POD_NAME: "vnode-agent-x1" },
    );
    expect({ ...o, installer: undefined }).toEqual({
      node: "n1",
      installer: undefined,
      listen: { host: "127.0.0.1", port: 9000 },
      intervalMs: 1000,
      daemonSet: { namespace: "other", name: "ds" },
      runtimeClasses: ["vnode", "vnode-per-pod"],
      managerCommand: "/opt/vnode/bin/manager",
      managerSocket: "/run/vnode/m.sock",
      managerContainer: { namespace: "other", pod: "vnode-agent-x1", container: "vnode-manager" },
      forceUninstall: true,
      maxRestarts: 0,
      restartWindowMs: 3_600_000,
      uninstallPodWaitMs: 0,
    });
  });

  it.each<[string, string[], Record<string, string>, string]>([
    [
      "no node name",
      [],
      {},
      "NODE_NAME must name the node the agent runs on (the DaemonSet sets it from spec.nodeName); it is unset.",
    ],
    [
      "--daemonset without a namespace",
      ["--daemonset", "ds"],
      { NODE_NAME: "n1" },
      "--daemonset ds needs its namespace: --namespace NAME or POD_NAMESPACE.",
    ],
    [
      "--manager-container without POD_NAME",
      ["--manager-container", "vnode-manager"],
      { NODE_NAME: "n1", POD_NAMESPACE: "vnode-system" },
      "--manager-container vnode-manager needs the agent's own pod: POD_NAME and POD_NAMESPACE (or --namespace), which the DaemonSet sets from the downward API; POD_NAME is unset.",
    ],
    [
      "--manager-socket relative",
      ["--manager-socket", "run/vnode/manager.sock"],
      { NODE_NAME: "n1" },
      '--manager-socket must be an absolute host path such as /run/vnode/manager.sock; got "run/vnode/manager.sock".',
    ],
  ])("rejects %s, naming it", async (_what, argv, e, message) => {
    const o = await runOptions(...argv);
    const err = thrown(() => daemonOptions(o, e, installer));
    expect(err.exitCode).toBe(ExitCode.BadInput);
    expect(err.message).toBe(message);
  });

  // A bad value fails in the parser, before any command runs: the same AgentError (exit 2).
  it.each<[string, string[], string]>([
    [
      "--max-restarts",
      ["--max-restarts", "three"],
      '--max-restarts must be an integer >= 0; got "three".',
    ],
    [
      "--max-restarts negative",
      ["--max-restarts", "-1"],
      '--max-restarts must be an integer >= 0; got "-1".',
    ],
    [
      "--runtime-classes empty",
      ["--runtime-classes", " , "],
      "--runtime-classes must list at least one name.",
    ],
    [
      "--manager-command empty",
      ["--manager-command", "  "],
      "--manager-command must not be empty.",
    ],
    [
      "--interval too short",
      ["--interval", "10ms"],
      '--interval must be a duration such as 500ms, 30s, 10m, 1h or 1m30s; got "10ms" (at least 100ms).',
    ],
    [
      "--listen",
      ["--listen", "8090"],
      '--listen must be ":PORT", "HOST:PORT" or "[IPV6]:PORT" with PORT 0-65535; got "8090" (expected one colon between host and port, IPv6 hosts in brackets).',
    ],
    [
      "--restart",
      ["--restart", "reboot"],
      "error: option '--restart <strategy>' argument 'reboot' is invalid. Allowed choices are systemd, kill, command, none.",
    ],
    ["an unknown flag", ["--handler-name", "x"], "error: unknown option '--handler-name'"],
  ])("parser rejects %s, naming it", async (_what, argv, message) => {
    expect(await agentArgvError(["run", ...argv])).toEqual([
      message.startsWith("error:") ? "commander" : "AgentError",
      message,
    ]);
  });

  it("points the client at --kube-api-server with the token file's token", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-token-"));
    try {
      const tokenFile = path.join(dir, "token");
      fs.writeFileSync(tokenFile, "s3cret\n");
      const flags = (over: Partial<RunOptions> = {}) => over;
      expect(kubeServerOf(flags())).toBeUndefined();
      expect(kubeServerOf(flags({ kubeApiServer: "https://10.0.0.1:6443" }))).toEqual({
        url: "https://10.0.0.1:6443",
      });
      expect(
        kubeServerOf(flags({ kubeApiServer: "http://127.0.0.1:1", kubeTokenFile: tokenFile })),
      ).toEqual({
        url: "http://127.0.0.1:1",
        token: "s3cret",
      });
      expect(thrown(() => kubeServerOf(flags({ kubeApiServer: "ftp://x" }))).message).toBe(
        '--kube-api-server must be an http(s) URL; got "ftp://x".',
      );
      expect(thrown(() => kubeServerOf(flags({ kubeTokenFile: tokenFile }))).message).toBe(
        "--kube-token-file is only used with --kube-api-server.",
      );
      expect(
        thrown(() =>
          kubeServerOf(flags({ kubeApiServer: "http://x", kubeTokenFile: path.join(dir, "none") })),
        ).message,
      ).toBe(`--kube-token-file ${path.join(dir, "none")} cannot be read: ENOENT.`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("DriftChecker on fixture hosts (no containerd running)", () => {
  const FIXTURES = path.resolve(__dirname, "../fixtures/containerd");
  let root: string;
  const options = (distribution: string, verify: "cri" | "none" = "cri"): InstallerOptions => ({
    hostRoot: root,
    containerd: { distribution },
    handler: { name: "vnode", runtimeType: "io.containerd.vnode.v2" },
    isolationMode: "per-namespace",
    installDir: "/opt/vnode/bin",
    stateDir: "/var/lib/vnode-agent",
    restart: { strategy: "none" },
    verify,
    skipPreflight: parseSkipList(undefined),
    minContainerd: parseMinContainerd(undefined),
  });
  /** What install would write, written: the host as right after an install. */
  const register = async (o: InstallerOptions) => {
    const layout = resolveLayout(o);
    for (const c of planRegister(
      layout,
      await collectConfigFiles(layout, hostFiles(root)),
      o.handler,
    )) {
      fs.mkdirSync(path.dirname(path.join(root, c.path)), { recursive: true });
      fs.writeFileSync(path.join(root, c.path), c.after!);
    }
  };

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-drift-"));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("sees the missing handler, then a clean config once registered, and missing payload files", async () => {
    fs.cpSync(path.join(FIXTURES, "containerd-1.7-kubeadm"), root, { recursive: true });
    const o = options("containerd");
    const checker = new DriftChecker(o);
    const before = await checker.check([]);
    expect(before.configChanges).toEqual([
      '/etc/containerd/config.toml: add runtime handler "vnode" in a vnode-agent block',
    ]);
    expect(before.cri.state).toBe("unreachable");
    expect((before.cri as { reason: string }).reason).toContain(
      path.join(root, "run/containerd/containerd.sock"),
    );
    await register(o);
    fs.mkdirSync(path.join(root, "opt/vnode/bin"), { recursive: true });
    fs.writeFileSync(path.join(root, "opt/vnode/bin/shim"), "x");
    const after = await checker.check(["/opt/vnode/bin/shim", "/opt/vnode/bin/helper"]);
    expect(after.configChanges).toEqual([]);
    expect(after.missingArtifacts).toEqual(["/opt/vnode/bin/helper"]);
    // A config edited behind its back is seen again, although the clean one was cached.
    fs.writeFileSync(
      path.join(root, "etc/containerd/config.toml"),
      fs.readFileSync(path.join(FIXTURES, "containerd-1.7-kubeadm/etc/containerd/config.toml")),
    );
    expect((await checker.check([])).configChanges).toHaveLength(1);
    checker.close();
  });

  it("with the ledger's record: a table rewritten without the block is re-adopted, a changed one refused", async () => {
    fs.cpSync(path.join(FIXTURES, "containerd-1.7-kubeadm"), root, { recursive: true });
    const o = options("containerd", "none");
    await register(o);
    const cfg = path.join(root, "etc/containerd/config.toml");
    // nvidia-ctk / `containerd config migrate` re-serialize the file: comments (and so the
    // block's markers) go, the tables stay (smol-toml's stringify does the same here).
    const doc = parse(fs.readFileSync(cfg, "utf8"));
    fs.writeFileSync(cfg, stringify(doc) + "\n");
    const recorded = { name: "vnode", table: { runtime_type: "io.containerd.vnode.v2" } };
    const checker = new DriftChecker(o);
    expect(await checker.check([], recorded)).toMatchObject({
      configChanges: [
        '/etc/containerd/config.toml: remove runtime "vnode", which vnode-agent added and another tool rewrote without its block; add runtime handler "vnode" in a vnode-agent block',
      ],
      rewritten: ["/etc/containerd/config.toml"],
    });
    // Without a record (nothing installed): what install says, thrown as before.
    await expect(checker.check([])).rejects.toThrow(
      '/etc/containerd/config.toml already defines runtime "vnode" under plugins."io.containerd.grpc.v1.cri".containerd.runtimes, not in a vnode-agent block; remove it or choose another --handler, then rerun.',
    );
    // Another tool changed the table too: refused, whatever the record.
    const runtimes = (
      doc as {
        plugins: Record<string, { containerd: { runtimes: Record<string, object> } }>;
      }
    ).plugins["io.containerd.grpc.v1.cri"].containerd.runtimes;
    runtimes.vnode = { ...runtimes.vnode, privileged_without_host_devices: true };
    fs.writeFileSync(cfg, stringify(doc) + "\n");
    const changed = await checker.check([], recorded);
    expect(changed.configChanges).toEqual([]);
    expect(changed.rewritten).toBeUndefined();
    expect(changed.configProblem).toBe(
      '/etc/containerd/config.toml defines runtime "vnode" under plugins."io.containerd.grpc.v1.cri".containerd.runtimes outside a vnode-agent block and not as vnode-agent recorded it (another tool rewrote the config and changed the table); vnode-agent leaves it alone: remove the table or restore it as recorded, and the handler is registered again.',
    );
  });

  it("checks k3s through its template, and skips the CRI with --verify none", async () => {
    fs.cpSync(path.join(FIXTURES, "k3s-v2"), root, { recursive: true });
    const o = options("k3s", "none");
    const checker = new DriftChecker(o);
    expect((await checker.check([])).configChanges).toEqual([
      '/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl: create a template: the k3s base config plus runtime handler "vnode"',
    ]);
    await register(o);
    expect(await checker.check([])).toMatchObject({
      configChanges: [],
      missingArtifacts: [],
      cri: { state: "live" },
    });
  });
});

describe("successorOnNode: another DaemonSet's agent takes the node over", () => {
  const OWN = { namespace: "vnode-runtime", name: "vnode-agent" };
  const agentPod = (
    namespace: string,
    name: string,
    owner: { kind: string; name: string; controller?: boolean } | undefined,
    extra: { phase?: string; deleting?: boolean; label?: string } = {},
  ): V1Pod => ({
    metadata: {
      namespace,
      name,
      labels: { "app.kubernetes.io/name": extra.label ?? "vnode-agent" },
      ...(owner
        ? {
            ownerReferences: [{ apiVersion: "apps/v1", uid: "u", controller: true, ...owner }],
          }
        : {}),
      ...(extra.deleting ? { deletionTimestamp: new Date(0) } : {}),
    },
    status: { phase: extra.phase ?? "Running" },
  });
  const ds = (name: string) => ({ kind: "DaemonSet", name });
  test.each<[string, V1Pod[], string | undefined]>([
    ["no pods", [], undefined],
    [
      "only its own DaemonSet's pods",
      [agentPod("vnode-runtime", "a-1", ds("vnode-agent"))],
      undefined,
    ],
    [
      "the new pool's DaemonSet",
      [agentPod("vnode-runtime", "b-1", ds("vnode-agent-builds"))],
      "vnode-runtime/b-1 (DaemonSet vnode-runtime/vnode-agent-builds)",
    ],
    [
      "the same DaemonSet name in the new namespace",
      [agentPod("vnode-system", "a-2", ds("vnode-agent"))],
      "vnode-system/a-2 (DaemonSet vnode-system/vnode-agent)",
    ],
    ["a successor being deleted", [agentPod("x", "b-1", ds("b"), { deleting: true })], undefined],
    ["a finished one", [agentPod("x", "b-1", ds("b"), { phase: "Failed" })], undefined],
    [
      "the webhook's pods (a ReplicaSet's)",
      [agentPod("x", "w-1", { kind: "ReplicaSet", name: "w" })],
      undefined,
    ],
    ["a bare pod", [agentPod("x", "p", undefined)], undefined],
    [
      "not a controller reference",
      [agentPod("x", "b-1", { kind: "DaemonSet", name: "b", controller: false })],
      undefined,
    ],
    [
      "another app's DaemonSet",
      [agentPod("x", "c-1", ds("cilium"), { label: "cilium" })],
      undefined,
    ],
  ])("%s", (_what, pods, expected) => {
    expect(successorOnNode(pods, OWN)).toBe(expected);
  });
});
