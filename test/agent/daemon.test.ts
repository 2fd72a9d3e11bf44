/**
 * `vnode-agent run` (the esbuild bundle, as a child process) against a real containerd 1.6 and
 * the FAKE Kubernetes API server: a bad VNODE_PER_POD, install and labels, labels restored,
 * drift repaired within an interval, the restart cap, the manager process, and SIGTERM as a
 * rolling update (nothing removed) and as a removal (refused while a vNode pod runs, then the
 * config restored byte for byte).
 *
 * The runs follow each other on one containerd, as on a node: each starts from what the
 * previous one left. Host root `/`; containerd, install and state dirs are private temp dirs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { ISOLATION_MODE_LABEL, PAYLOAD_ROLES, RUNTIME_LABEL } from "vnode-contract";
import { criStatus } from "../../agent/src/cri/client";
import {
  describeWithContainerd,
  startContainerd,
  type TestContainerd,
} from "../support/containerd";
import { STAND_IN_SHIM, agentHost } from "../support/agentHost";
import { FakeKubeApi } from "../support/fakeKubeApi";
import { parsePrometheusText, valueOf } from "../support/prometheus";

const CLI = path.resolve(__dirname, "../../agent/dist/vnode-agent.js");
const NODE = "test-node";
const NAMESPACE = "vnode-system";
const DAEMONSET = "vnode-agent";
const TOKEN = "daemon-test-token";
const OS_LABEL = { "kubernetes.io/os": "linux" };

interface LogLine {
  level: number;
  phase?: string;
  msg: string;
  [key: string]: unknown;
}

/** A running `vnode-agent run`, its parsed log lines and its exit. */
interface Agent {
  proc: ChildProcess;
  url: string;
  logs: LogLine[];
  stderr: string[];
  exit: Promise<number | null>;
}

async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  describe: () => string = () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

describeWithContainerd("vnode-agent run against a real containerd and a fake API server", () => {
  let ctrd: TestContainerd;
  let api: FakeKubeApi;
  let work: string;
  let installDir: string;
  let cniConfDir: string;
  let stateDir: string;
  let flags: string[];
  let installedConfig: string;
  const agents: Agent[] = [];

  beforeAll(async () => {
    ctrd = await startContainerd();
    work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-daemon-"));
    let base: string[];
    ({ installDir, stateDir, cniConfDir, flags: base } = agentHost(ctrd, work));
    const tokenFile = path.join(work, "token");
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    api = await FakeKubeApi.start({ token: TOKEN });
    api.addNode(NODE, { ...OS_LABEL });
    api.addDaemonSet(NAMESPACE, DAEMONSET, { ...OS_LABEL });
    flags = [
      ...base,
      ...["--listen", "127.0.0.1:0", "--interval", "1s"],
      ...["--daemonset", DAEMONSET, "--kube-api-server", api.url, "--kube-token-file", tokenFile],
    ];
    installedConfig =
      ctrd.originalConfig +
      "\n# BEGIN vnode-agent (managed, do not edit)\n" +
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode]\n' +
      '  runtime_type = "io.containerd.runc.v2"\n' +
      `  runtime_path = "${path.join(installDir, STAND_IN_SHIM)}"\n` +
      `  cni_conf_dir = "${cniConfDir}"\n` +
      "  cni_max_conf_num = 1\n" +
      "# END vnode-agent\n";
  }, 120_000);

  afterAll(async () => {
    for (const a of agents) {
      if (a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill("SIGKILL");
      await a.exit;
    }
    await api?.close();
    await ctrd?.cleanup();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Starts `run`; resolves once it listens (or exits first: then `url` is ""). */
  async function startAgent(env: Record<string, string>, extra: string[] = []): Promise<Agent> {
    const proc = spawn(process.execPath, [CLI, "run", ...flags, ...extra], {
      env: {
        PATH: process.env.PATH,
        NODE_NAME: NODE,
        POD_NAMESPACE: NAMESPACE,
        VNODE_AGENT_LOG_LEVEL: "debug",
        ...env,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const logs: LogLine[] = [];
    const stderr: string[] = [];
    readline.createInterface({ input: proc.stderr! }).on("line", (line) => {
      stderr.push(line);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not JSON: the CLI's one-sentence error
      }
    });
    const exit = new Promise<number | null>((resolve) =>
      proc.once("exit", (code) => resolve(code)),
    );
    const agent: Agent = { proc, url: "", logs, stderr, exit };
    agents.push(agent);
    let exited = false;
    void exit.then(() => (exited = true));
    await waitFor(
      "the agent to listen or exit",
      () => exited || logs.some((l) => l.phase === "http"),
      30_000,
      () => stderr.join("\n"),
    );
    const http = logs.find((l) => l.phase === "http");
    agent.url = http ? String(http.url) : "";
    return agent;
  }

  const config = () => fs.readFileSync(ctrd.configPath, "utf8");
  const patches = () => api.requestsFor("PATCH").map((r) => r.body);
  const events = () =>
    api.events
      .map((e) => [e.type, e.reason] as [unknown, unknown])
      .filter((e) => e[1] !== "ManagerExited");
  const eventOf = (reason: string) => api.events.find((e) => e.reason === reason);
  const nodeLabels = () => api.nodes.get(NODE)!.metadata.labels as Record<string, string>;
  const resetFake = () => {
    api.requests.length = 0;
    api.events.length = 0;
  };
  const metrics = async (agent: Agent) =>
    parsePrometheusText((await get(`${agent.url}/metrics`)).body);
  const waitReady = (agent: Agent, timeoutMs = 60_000) =>
    waitFor(
      "/readyz 200",
      async () => (await get(`${agent.url}/readyz`)).status === 200,
      timeoutMs,
      () => agent.stderr.join("\n"),
    );
  /** Waits for the end of a reconcile pass (debug log), so a pass is not cut in half. */
  const passEnded = async (agent: Agent) => {
    const seen = agent.logs.filter((l) => l.msg === "reconciled").length;
    await waitFor(
      "a reconcile pass",
      () => agent.logs.filter((l) => l.msg === "reconciled").length > seen,
    );
  };
  /**
   * Removes the handler behind the agent's back: the config back to the original and
   * containerd restarted, while the agent is frozen (SIGSTOP) so it cannot race the harness's
   * restart script. Resolves with the time the agent was let go.
   */
  const removeHandlerBehindItsBack = async (agent: Agent): Promise<number> => {
    await passEnded(agent);
    agent.proc.kill("SIGSTOP");
    try {
      fs.writeFileSync(ctrd.configPath, ctrd.originalConfig);
      await ctrd.restart();
      expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc"]);
    } finally {
      agent.proc.kill("SIGCONT");
    }
    return Date.now();
  };

  it("exits 2 on a bad VNODE_PER_POD, labels the node failed with an Event, host untouched", async () => {
    const agent = await startAgent({ VNODE_PER_POD: "yes" });
    expect(await agent.exit).toBe(2);
    expect(agent.stderr.at(-1)).toBe(
      'vnode-agent: VNODE_PER_POD must be "true" or "false" (case-insensitive) or unset; got "yes".',
    );
    expect(config()).toBe(ctrd.originalConfig);
    expect(fs.existsSync(installDir)).toBe(false);
    expect(fs.existsSync(stateDir)).toBe(false);
    expect(patches()).toEqual([{ metadata: { labels: { [RUNTIME_LABEL]: "failed" } } }]);
    expect(api.events).toHaveLength(1);
    const e = api.events[0];
    expect([e.type, e.reason, e.message, e.action]).toEqual([
      "Warning",
      "InvalidConfiguration",
      'VNODE_PER_POD must be "true" or "false" (case-insensitive) or unset; got "yes". The agent stopped without touching the host.',
      "Configure",
    ]);
    expect(e.involvedObject).toEqual({
      apiVersion: "v1",
      kind: "Node",
      name: NODE,
      uid: api.nodes.get(NODE)!.metadata.uid,
    });
    // The next run starts from a clean node.
    api.nodes.get(NODE)!.metadata.labels = { ...OS_LABEL };
    resetFake();
  });

  it("fails preflight when its payload has no shim: label failed, an Event naming the file, host untouched", async () => {
    // An image built without a vNode runtime (no VNODE_IMAGE) has no shim to install.
    const empty = path.join(work, "empty-payload");
    fs.mkdirSync(empty, { recursive: true });
    const agent = await startAgent({ VNODE_PER_POD: "false" }, ["--payload-dir", empty]);
    const failed = await waitFor("PreflightFailed", () => eventOf("PreflightFailed"));
    expect([failed.type, failed.reason, failed.message]).toEqual([
      "Warning",
      "PreflightFailed",
      `Preflight failed on node ${NODE}: payload: ${empty}/${PAYLOAD_ROLES.shim} is missing: the agent image carries no vNode runtime; build it with VNODE_IMAGE set to the vNode runtime image of your release.`,
    ]);
    await waitFor("the failed label", () => nodeLabels()[RUNTIME_LABEL] === "failed");
    expect(nodeLabels()).toEqual({
      ...OS_LABEL,
      [RUNTIME_LABEL]: "failed",
      [ISOLATION_MODE_LABEL]: "per-namespace",
    });
    expect((await get(`${agent.url}/readyz`)).status).toBe(503);
    expect(config()).toBe(ctrd.originalConfig);
    expect(fs.existsSync(installDir)).toBe(false);
    agent.proc.kill("SIGTERM");
    expect(await agent.exit).toBe(0);
    expect(config()).toBe(ctrd.originalConfig);
    api.nodes.get(NODE)!.metadata.labels = { ...OS_LABEL };
    resetFake();
  });

  describe("run 1: VNODE_PER_POD=TRUE", () => {
    let agent: Agent;
    let managerPid: number;

    it("installs, labels the node installing then ready, and gets ready", async () => {
      agent = await startAgent({ VNODE_PER_POD: "TRUE" }, [
        "--manager-command",
        'echo "manager sees VNODE_PER_POD=$VNODE_PER_POD"; exec sleep 600',
      ]);
      await waitReady(agent);
      expect(config()).toBe(installedConfig);
      expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc", "vnode"]);
      expect(patches()).toEqual([
        {
          metadata: {
            labels: { [RUNTIME_LABEL]: "installing", [ISOLATION_MODE_LABEL]: "per-pod" },
          },
        },
        { metadata: { labels: { [RUNTIME_LABEL]: "ready" } } },
      ]);
      expect(api.requestsFor("PATCH").map((r) => r.contentType)).toEqual([
        "application/merge-patch+json",
        "application/merge-patch+json",
      ]);
      expect(nodeLabels()).toEqual({
        ...OS_LABEL,
        [RUNTIME_LABEL]: "ready",
        [ISOLATION_MODE_LABEL]: "per-pod",
      });
      expect(events()).toEqual([
        ["Normal", "Installing"],
        ["Normal", "RuntimeReady"],
      ]);
      expect(eventOf("RuntimeReady")!.message).toMatch(
        /^Runtime handler "vnode" is live in containerd \(per-pod\); containerd was restarted; took \d+\.\d s\.$/,
      );
      expect(await get(`${agent.url}/healthz`)).toEqual({ status: 200, body: "ok\n" });
    });

    it("supervises the manager with VNODE_PER_POD passed through", async () => {
      const line = await waitFor("the manager's output", () =>
        agent.logs.find((l) => l.phase === "manager" && l.stream === "stdout"),
      );
      expect(line.msg).toBe("manager sees VNODE_PER_POD=true");
      managerPid = Number(line.pid);
      expect(fs.existsSync(`/proc/${managerPid}`)).toBe(true);
    });

    it("serves /metrics in Prometheus text format with the install counted", async () => {
      const m = await metrics(agent);
      const v = (name: string, labels: Record<string, string> = {}, family = name) =>
        valueOf(m, `vnode_agent_${family}`, `vnode_agent_${name}`, labels);
      expect(
        v("install_duration_seconds_count", { result: "success" }, "install_duration_seconds"),
      ).toBe(1);
      expect(v("containerd_restarts_total", { reason: "install" })).toBe(1);
      expect(v("isolation_mode", { mode: "per-pod" })).toBe(1);
      expect(v("drift_repairs_total")).toBe(0);
      expect(v("last_successful_reconcile_timestamp_seconds")).toBeGreaterThan(
        Date.now() / 1000 - 60,
      );
      expect(v("process_resident_memory_bytes")).toBeGreaterThan(0);
    });

    it("puts dropped labels back within an interval", async () => {
      resetFake();
      // Another writer drops the labels: the API server streams the change to the watch.
      api.updateNode(NODE, (n) => (n.metadata.labels = { ...OS_LABEL }));
      await waitFor("labels restored", () => patches().length > 0, 5000);
      expect(patches()).toEqual([
        { metadata: { labels: { [RUNTIME_LABEL]: "ready", [ISOLATION_MODE_LABEL]: "per-pod" } } },
      ]);
      await waitFor("the LabelsRestored event", () => eventOf("LabelsRestored"), 5000);
      expect(eventOf("LabelsRestored")!.message).toBe(
        `Node labels were changed or dropped (a kubelet restart?); restored ${RUNTIME_LABEL}=ready, ${ISOLATION_MODE_LABEL}=per-pod.`,
      );
    });

    it("repairs a handler removed from the config behind its back within one interval", async () => {
      resetFake();
      const released = await removeHandlerBehindItsBack(agent);
      await waitFor(
        "DriftRepaired",
        () => eventOf("DriftRepaired"),
        30_000,
        () => agent.stderr.slice(-20).join("\n"),
      );
      const detected = Date.parse(String(eventOf("DriftDetected")!.firstTimestamp));
      // Found by the next pass: one interval (1 s) plus the pass itself.
      expect(detected - released).toBeLessThan(2500);
      expect(config()).toBe(installedConfig);
      expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc", "vnode"]);
      expect(events()).toEqual([
        ["Warning", "DriftDetected"],
        ["Normal", "DriftRepaired"],
      ]);
      expect(eventOf("DriftDetected")!.message).toBe(
        `containerd's config lost runtime handler "vnode" (${ctrd.configPath}: add runtime handler "vnode" in a vnode-agent block); the CRI does not report handler "vnode" (it reports runc). Repairing.`,
      );
      expect(patches()).toEqual([
        { metadata: { labels: { [RUNTIME_LABEL]: "installing" } } },
        { metadata: { labels: { [RUNTIME_LABEL]: "ready" } } },
      ]);
      await waitReady(agent, 10_000);
      const m = await metrics(agent);
      expect(valueOf(m, "vnode_agent_drift_repairs_total", "vnode_agent_drift_repairs_total")).toBe(
        1,
      );
      expect(
        valueOf(
          m,
          "vnode_agent_containerd_restarts_total",
          "vnode_agent_containerd_restarts_total",
          {
            reason: "drift",
          },
        ),
      ).toBe(1);
    });

    it("SIGTERM while the DaemonSet still selects the node: everything stays", async () => {
      resetFake();
      const pid = ctrd.pid;
      agent.proc.kill("SIGTERM");
      expect(await agent.exit).toBe(0);
      expect(config()).toBe(installedConfig);
      expect(fs.existsSync(path.join(installDir, STAND_IN_SHIM))).toBe(true);
      expect(fs.existsSync(path.join(stateDir, "ledger.json"))).toBe(true);
      expect(ctrd.pid).toBe(pid);
      expect(patches()).toEqual([]);
      expect(events()).toEqual([["Normal", "RuntimeKept"]]);
      expect(eventOf("RuntimeKept")!.message).toBe(
        `DaemonSet ${NAMESPACE}/${DAEMONSET} still selects node ${NODE}: a rolling update or a pod restart, so the runtime stays installed.`,
      );
      expect(fs.existsSync(`/proc/${managerPid}`)).toBe(false);
    });
  });

  describe("run 2: per-namespace, --max-restarts 1", () => {
    let agent: Agent;

    it("warns about the mode change and installs without a restart", async () => {
      resetFake();
      const pid = ctrd.pid;
      agent = await startAgent({}, [
        ...["--max-restarts", "1", "--uninstall-pod-wait", "1s"],
        ...["--manager-command", 'echo "manager sees VNODE_PER_POD=$VNODE_PER_POD"; exit 3'],
      ]);
      await waitReady(agent);
      expect(ctrd.pid).toBe(pid);
      expect(events()).toEqual([
        ["Warning", "IsolationModeChanged"],
        ["Normal", "Installing"],
        ["Normal", "RuntimeReady"],
      ]);
      expect(eventOf("IsolationModeChanged")!.message).toBe(
        `The isolation mode of node ${NODE} changes from per-pod to per-namespace: the vNode manager restarts with VNODE_PER_POD=false, and every vNode and workload on the node restarts.`,
      );
      expect(eventOf("RuntimeReady")!.message).toMatch(/no containerd restart was needed/);
      expect(patches()).toEqual([
        {
          metadata: {
            labels: { [RUNTIME_LABEL]: "installing", [ISOLATION_MODE_LABEL]: "per-namespace" },
          },
        },
        { metadata: { labels: { [RUNTIME_LABEL]: "ready" } } },
      ]);
    });

    it("surfaces manager exits as Events and metrics", async () => {
      const exited = await waitFor("ManagerExited", () => eventOf("ManagerExited"));
      expect(exited.type).toBe("Warning");
      expect(exited.message).toMatch(
        /^vNode manager \(pid \d+\) exited with code 3 after \d+\.\d s, exit 1; restarting in 1\.0 s\.$/,
      );
      const line = agent.logs.find((l) => l.phase === "manager" && l.stream === "stdout");
      expect(line?.msg).toBe("manager sees VNODE_PER_POD=false");
      const m = await metrics(agent);
      expect(
        valueOf(m, "vnode_agent_manager_exits_total", "vnode_agent_manager_exits_total", {
          code: "3",
          signal: "",
        }),
      ).toBeGreaterThanOrEqual(1);
    });

    it("repairs once, then hits the restart cap: failed with an Event, no restart loop", async () => {
      await removeHandlerBehindItsBack(agent);
      await waitFor("DriftRepaired", () => eventOf("DriftRepaired"), 30_000);
      await waitReady(agent, 10_000);
      resetFake();
      await removeHandlerBehindItsBack(agent);
      const pid = ctrd.pid;
      await waitFor("RestartLimitReached", () => eventOf("RestartLimitReached"), 10_000);
      expect(eventOf("RestartLimitReached")!.message).toMatch(
        /^containerd's config lost runtime handler "vnode" \(.*\); the CRI does not report handler "vnode" \(it reports runc\)\. Not repairing: the agent restarted containerd 1 time\(s\) in the last 10m \(--max-restarts 1\); it tries again after \d{4}-\d\d-\d\dT[\d:.]+Z\.$/,
      );
      expect(nodeLabels()[RUNTIME_LABEL]).toBe("failed");
      expect(await get(`${agent.url}/readyz`)).toEqual({
        status: 503,
        body: `${String(eventOf("RestartLimitReached")!.message)}\n`,
      });
      // Three more passes: still no restart, and the Warning is not repeated.
      for (let i = 0; i < 3; i++) await passEnded(agent);
      expect(ctrd.pid).toBe(pid);
      expect(config()).toBe(ctrd.originalConfig);
      expect(events()).toEqual([["Warning", "RestartLimitReached"]]);
      const m = await metrics(agent);
      expect(
        valueOf(m, "vnode_agent_reconcile_errors_total", "vnode_agent_reconcile_errors_total"),
      ).toBeGreaterThanOrEqual(4);
    });

    it("SIGTERM with the DaemonSet deleted and a vNode pod running: refuses, host untouched", async () => {
      api.daemonSets.delete(`${NAMESPACE}/${DAEMONSET}`);
      api.addPod("team-a", "build-1", NODE, { runtimeClassName: "vnode" });
      api.addPod("team-b", "web-1", NODE);
      resetFake();
      const pid = ctrd.pid;
      agent.proc.kill("SIGTERM");
      expect(await agent.exit).toBe(1);
      expect(config()).toBe(ctrd.originalConfig);
      expect(fs.existsSync(path.join(installDir, STAND_IN_SHIM))).toBe(true);
      expect(fs.existsSync(path.join(stateDir, "ledger.json"))).toBe(true);
      expect(ctrd.pid).toBe(pid);
      expect(patches()).toEqual([{ metadata: { labels: { [RUNTIME_LABEL]: "uninstalling" } } }]);
      expect(events()).toEqual([
        ["Normal", "Uninstalling"],
        ["Warning", "UninstallRefused"],
      ]);
      expect(eventOf("Uninstalling")!.message).toBe(
        `DaemonSet ${NAMESPACE}/${DAEMONSET} no longer exists. Uninstalling the runtime.`,
      );
      expect(eventOf("UninstallRefused")!.message).toMatch(
        /^Not uninstalling: pods still use a vNode RuntimeClass on node test-node after 1s: team-a\/build-1\. /,
      );
      const list = api.requestsFor("GET", "/api/v1/pods");
      expect(list.length).toBeGreaterThanOrEqual(1);
      expect(list[0].query).toEqual({ fieldSelector: `spec.nodeName=${NODE}` });
    });
  });

  describe("run 3: the node leaves the runtime", () => {
    it("waits for the vNode pod to finish, then restores the config byte for byte", async () => {
      resetFake();
      const agent = await startAgent({ VNODE_PER_POD: "false" }, ["--uninstall-pod-wait", "20s"]);
      await waitReady(agent);
      expect(config()).toBe(installedConfig);
      agent.proc.kill("SIGTERM");
      await waitFor("waiting for vNode pods", () =>
        agent.logs.find((l) => l.msg === "waiting for vNode pods to go"),
      );
      expect(fs.existsSync(path.join(installDir, STAND_IN_SHIM))).toBe(true);
      (api.pods.find((p) => p.metadata.name === "build-1")!.status as { phase: string }).phase =
        "Succeeded";
      expect(await agent.exit).toBe(0);
      expect(config()).toBe(ctrd.originalConfig);
      expect(fs.existsSync(path.join(installDir, STAND_IN_SHIM))).toBe(false);
      expect(fs.existsSync(path.join(stateDir, "ledger.json"))).toBe(false);
      expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc"]);
      expect(patches().at(-1)).toEqual({
        metadata: { labels: { [RUNTIME_LABEL]: null, [ISOLATION_MODE_LABEL]: null } },
      });
      expect(nodeLabels()).toEqual(OS_LABEL);
      expect(events().slice(-2)).toEqual([
        ["Normal", "Uninstalling"],
        ["Normal", "RuntimeUninstalled"],
      ]);
    });
  });
});
