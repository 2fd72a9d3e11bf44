/**
 * The daemon in-process (runDaemon) against the FAKE Kubernetes API server and a fixture host
 * root, without containerd (`--restart none`, `--verify none`, containerd preflight checks
 * skipped): the API-side paths the real-containerd test does not reach. A failed preflight, API
 * errors on labels, Events and the shutdown decision, a DaemonSet that stops selecting the node,
 * and --force-uninstall under a running vNode pod.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { ISOLATION_MODE_LABEL, RUNTIME_LABEL } from "vnode-contract";
import type { DaemonOptions } from "../../agent/src/daemon/options";
import type { InstallerOptions } from "../../agent/src/installer/installer";
import type { Logger } from "../../agent/src/lib/log";
import { createMetrics } from "../../agent/src/daemon/metrics";
import { parseMinContainerd, parseSkipList } from "../../agent/src/installer/preflight";
import { FakeKubeApi, importKube } from "../support/fakeKubeApi";
import { parsePrometheusText, valueOf } from "../support/prometheus";

const { createKubeClient } = importKube();
// After importKube: daemon.ts reaches the natively loaded @kubernetes/client-node through kube.ts.
const { runDaemon } =
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require("../../agent/src/daemon/daemon") as typeof import("../../agent/src/daemon/daemon");

const FIXTURES = path.resolve(__dirname, "../fixtures/containerd");
const NODE = "n1";
const TOKEN = "t0ken";
const OS_LABEL = { "kubernetes.io/os": "linux" };

interface Line {
  phase?: string;
  msg: string;
  [k: string]: unknown;
}

describe("runDaemon against the fake API server, without containerd", () => {
  let api: FakeKubeApi;
  let root: string;
  let lines: Line[];
  let log: Logger;

  beforeEach(async () => {
    api = await FakeKubeApi.start({ token: TOKEN });
    api.addNode(NODE, { ...OS_LABEL });
    api.addDaemonSet("vnode-system", "vnode-agent", { ...OS_LABEL });
    root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-daemon-kube-"));
    lines = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    log = pino({ level: "debug", base: { node: NODE } }, sink) as unknown as Logger;
  });

  afterEach(async () => {
    await api.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const installer = (fixture: string): InstallerOptions => {
    fs.cpSync(path.join(FIXTURES, fixture), root, { recursive: true });
    return {
      hostRoot: root,
      containerd: { distribution: "containerd" },
      handler: { name: "vnode", runtimeType: "io.containerd.vnode.v2" },
      isolationMode: "per-pod",
      installDir: "/opt/vnode/bin",
      stateDir: "/var/lib/vnode-agent",
      restart: { strategy: "none" },
      verify: "none",
      skipPreflight: parseSkipList("kernel,cgroup,containerd"),
      minContainerd: parseMinContainerd(undefined),
      lockTimeoutMs: 5000,
    };
  };
  const options = (fixture: string, over: Partial<DaemonOptions> = {}): DaemonOptions => ({
    node: NODE,
    installer: installer(fixture),
    listen: { host: "127.0.0.1", port: 0 },
    intervalMs: 200,
    daemonSet: { namespace: "vnode-system", name: "vnode-agent" },
    runtimeClasses: null,
    managerCommand: null,
    managerSocket: null,
    managerContainer: null,
    forceUninstall: false,
    maxRestarts: 3,
    restartWindowMs: 600_000,
    uninstallPodWaitMs: 0,
    ...over,
  });
  const kube = () =>
    createKubeClient({
      server: { url: api.url, token: TOKEN },
      requestTimeoutMs: 2000,
      patchRetry: { attempts: 3, policy: { initialMs: 5, maxMs: 10 } },
    });
  const start = (o: DaemonOptions) => {
    const metrics = createMetrics({ processMetrics: false });
    const exit = runDaemon(o, { kube: kube(), log, metrics });
    return { exit, metrics };
  };
  const waitFor = async <T>(
    what: string,
    fn: () => T | undefined | false | Promise<T | undefined | false>,
    ms = 10_000,
  ) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}\n${lines.map((l) => JSON.stringify(l)).join("\n")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const url = () => String(lines.find((l) => l.phase === "http")?.url);
  const reasons = () => api.events.map((e) => e.reason);
  const labels = () => api.nodes.get(NODE)!.metadata.labels as Record<string, string>;
  const config = () => fs.readFileSync(path.join(root, "etc/containerd/config.toml"), "utf8");
  const original = (fixture: string) =>
    fs.readFileSync(path.join(FIXTURES, fixture, "etc/containerd/config.toml"), "utf8");
  const sigterm = () => process.emit("SIGTERM", "SIGTERM");
  const ready = () => waitFor("ready", () => labels()[RUNTIME_LABEL] === "ready");

  it("a failed preflight: failed label, one Warning naming the check, counted by check, stays up", async () => {
    const { exit, metrics } = start(options("v1-no-version"));
    await waitFor("failed", () => labels()[RUNTIME_LABEL] === "failed");
    // Several passes retry it; the Warning is not repeated.
    await waitFor("3 passes", () => lines.filter((l) => l.msg === "reconciled").length >= 3);
    expect(reasons()).toEqual(["Installing", "PreflightFailed"]);
    expect(api.events[1].type).toBe("Warning");
    expect(api.events[1].message).toMatch(/^Preflight failed on node n1: config: /);
    const res = await fetch(`${url()}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe(`${String(api.events[1].message)}\n`);
    const m = parsePrometheusText(await metrics.registry.metrics());
    expect(
      valueOf(m, "vnode_agent_preflight_failures_total", "vnode_agent_preflight_failures_total", {
        check: "config",
      }),
    ).toBe(1);
    // The passes cannot plan against a version 1 config either: each is a reconcile error.
    expect(
      valueOf(m, "vnode_agent_reconcile_errors_total", "vnode_agent_reconcile_errors_total"),
    ).toBeGreaterThanOrEqual(3);
    expect(lines.find((l) => l.msg === "reconcile pass failed")?.reason).toMatch(/version/);
    expect(config()).toBe(original("v1-no-version"));
    sigterm();
    expect(await exit).toBe(0);
  });

  it("retries label patches, survives failing Events, and becomes ready", async () => {
    api.failNext({ method: "PATCH", times: 2, status: 409 });
    api.failNext({ method: "POST", times: 1, status: 500 });
    const { exit } = start(options("containerd-1.7-kubeadm"));
    await ready();
    expect(labels()).toEqual({
      ...OS_LABEL,
      [RUNTIME_LABEL]: "ready",
      [ISOLATION_MODE_LABEL]: "per-pod",
    });
    // The first Event (Installing) was lost to the 500; the agent went on.
    expect(reasons()).toEqual(["RuntimeReady"]);
    expect(api.requestsFor("PATCH").map((r) => r.status)).toEqual([409, 409, 200, 200]);
    expect(lines.some((l) => l.phase === "event" && l.event === "Installing")).toBe(true);
    sigterm();
    expect(await exit).toBe(0);
    expect(reasons().at(-1)).toBe("RuntimeKept");
  });

  it("keeps the runtime when the DaemonSet cannot be read at SIGTERM", async () => {
    const { exit } = start(options("containerd-1.7-kubeadm"));
    await ready();
    const installed = config();
    expect(installed).not.toBe(original("containerd-1.7-kubeadm"));
    api.failNext({ method: "GET", path: /daemonsets/, times: 1, status: 503 });
    sigterm();
    expect(await exit).toBe(0);
    expect(config()).toBe(installed);
    expect(api.events.at(-1)!.message).toBe(
      'Cannot tell whether node n1 is leaving the runtime (get daemonset "vnode-system/vnode-agent": HTTP 503: injected failure 503); the runtime stays installed.',
    );
  });

  it("uninstalls when the DaemonSet no longer selects the node", async () => {
    const { exit } = start(options("containerd-1.7-kubeadm"));
    await ready();
    (
      api.daemonSets.get("vnode-system/vnode-agent")!.spec as {
        template: { spec: { nodeSelector: object } };
      }
    ).template.spec.nodeSelector = { pool: "sandbox" };
    sigterm();
    expect(await exit).toBe(0);
    expect(config()).toBe(original("containerd-1.7-kubeadm"));
    expect(labels()).toEqual(OS_LABEL);
    expect(reasons().slice(-2)).toEqual(["Uninstalling", "RuntimeUninstalled"]);
    expect(api.events.at(-2)!.message).toBe(
      "DaemonSet vnode-system/vnode-agent no longer selects node n1: its nodeSelector wants pool=sandbox, the node has no label pool. Uninstalling the runtime.",
    );
  });

  it("--force-uninstall uninstalls under a running pod of a listed RuntimeClass", async () => {
    api.addPod("ci", "build-7", NODE, { runtimeClassName: "sandboxed" });
    const { exit } = start(
      options("containerd-1.7-kubeadm", { forceUninstall: true, runtimeClasses: ["sandboxed"] }),
    );
    await ready();
    api.daemonSets.clear();
    sigterm();
    expect(await exit).toBe(0);
    expect(config()).toBe(original("containerd-1.7-kubeadm"));
    expect(
      lines.find((l) => l.msg === "--force-uninstall: uninstalling under running vNode pods")?.pods,
    ).toEqual(["ci/build-7"]);
  });

  it("hands the runtime over to another DaemonSet's agent on the node instead of uninstalling", async () => {
    // A replaced DaemonSet (pool renamed, component renamed): Pulumi created the new one first.
    const agentLabels = { "app.kubernetes.io/name": "vnode-agent" };
    api.addPod("vnode-system", "vnode-agent-old-x1", NODE, {
      labels: agentLabels,
      daemonSet: "vnode-agent",
    });
    api.addPod("vnode-system", "vnode-agent-builds-k2", NODE, {
      labels: agentLabels,
      daemonSet: "vnode-agent-builds",
    });
    const { exit } = start(options("containerd-1.7-kubeadm"));
    await ready();
    const installed = config();
    api.daemonSets.clear();
    sigterm();
    expect(await exit).toBe(0);
    expect(config()).toBe(installed);
    expect(fs.existsSync(path.join(root, "var/lib/vnode-agent/ledger.json"))).toBe(true);
    expect(labels()[RUNTIME_LABEL]).toBe("ready");
    expect(api.events.at(-1)!.reason).toBe("RuntimeHandedOver");
    expect(api.events.at(-1)!.message).toBe(
      "DaemonSet vnode-system/vnode-agent no longer exists. The agent vnode-system/vnode-agent-builds-k2 (DaemonSet vnode-system/vnode-agent-builds) runs on node n1 and takes the runtime over, so it stays installed.",
    );
  });

  it("uninstalls when the only other agent pod on the node is its own DaemonSet's", async () => {
    api.addPod("vnode-system", "vnode-agent-old-x1", NODE, {
      labels: { "app.kubernetes.io/name": "vnode-agent" },
      daemonSet: "vnode-agent",
    });
    const { exit } = start(options("containerd-1.7-kubeadm"));
    await ready();
    api.daemonSets.clear();
    sigterm();
    expect(await exit).toBe(0);
    expect(config()).toBe(original("containerd-1.7-kubeadm"));
    expect(reasons().slice(-2)).toEqual(["Uninstalling", "RuntimeUninstalled"]);
  });

  it("refuses without --force-uninstall when the pods cannot be listed", async () => {
    const { exit } = start(options("containerd-1.7-kubeadm"));
    await ready();
    const installed = config();
    api.daemonSets.clear();
    // Twice: the successor lookup (unknown counts as none), then the vNode pod check.
    api.failNext({ method: "GET", path: "/api/v1/pods", times: 2, status: 500 });
    sigterm();
    expect(await exit).toBe(1);
    expect(config()).toBe(installed);
    expect(labels()[RUNTIME_LABEL]).toBe("uninstalling");
    expect(api.events.at(-1)!.message).toMatch(
      /^Not uninstalling: pods still use a vNode RuntimeClass on node n1 after 0ms: \(pods on the node could not be listed: list pods on node "n1": HTTP 500: injected failure 500\)\. /,
    );
  });

  // vNode's manager as the DaemonSet runs it: a container beside the agent, its socket in a host
  // dir both mount. Here the "manager" is a real unix listener under the fixture host root.
  it("/readyz waits for the manager's socket, naming it and the error, and follows it", async () => {
    const sock = "/run/vnode/manager.sock";
    const { exit } = start(options("containerd-1.7-kubeadm", { managerSocket: sock }));
    await ready();
    const readyz = async () => {
      const res = await fetch(`${url()}/readyz`);
      return `${res.status} ${(await res.text()).trim()}`;
    };
    // The runtime is ready on the node (label), but the agent is not ready without its manager.
    expect(
      await waitFor("ENOENT", async () => (await readyz()).includes("ENOENT") && readyz()),
    ).toBe(
      "503 vNode manager socket /run/vnode/manager.sock: ENOENT (no socket there: the manager has not started or has not created it)",
    );
    fs.mkdirSync(path.join(root, "run/vnode"), { recursive: true });
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(path.join(root, sock), r));
    try {
      await waitFor("ready", async () => (await readyz()) === "200 ok");
      expect(lines.some((l) => l.msg === "vNode manager answers on its socket")).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
    // Gone again (server.close unlinks the file): not ready, within a probe interval.
    await waitFor("ENOENT again", async () => (await readyz()).startsWith("503 vNode manager"));
    sigterm();
    expect(await exit).toBe(0);
  });

  it("reports each restart of the manager container once: metrics and a Warning on the node", async () => {
    // kubelet's view of the agent's pod, as the API server returns it (containerStatuses).
    const pod = api.addPod("vnode-system", "vnode-agent-abcde", NODE, { daemonSet: "vnode-agent" });
    const status = (restartCount: number, lastState: object = {}) => {
      pod.status = {
        phase: "Running",
        containerStatuses: [
          { name: "agent", restartCount: 0, ready: true, image: "a", imageID: "", lastState: {} },
          { name: "vnode-manager", restartCount, ready: true, image: "a", imageID: "", lastState },
        ],
      };
    };
    status(1); // a restart before this agent started: the baseline, not announced
    const managerContainer = {
      namespace: "vnode-system",
      pod: pod.metadata.name as string,
      container: "vnode-manager",
    };
    const { exit, metrics } = start(options("containerd-1.7-kubeadm", { managerContainer }));
    await ready();
    const podLists = () =>
      api
        .requestsFor("GET", "/api/v1/pods")
        .filter((r) => r.query.fieldSelector?.includes("metadata.name"));
    await waitFor("two looks", () => podLists().length >= 2);
    expect(podLists()[0].query).toEqual({
      fieldSelector:
        "spec.nodeName=n1,metadata.namespace=vnode-system,metadata.name=vnode-agent-abcde",
      resourceVersion: "0",
    });
    expect(reasons()).not.toContain("ManagerRestarted");
    status(3, {
      terminated: { exitCode: 137, reason: "OOMKilled", finishedAt: "2026-11-29T23:00:00Z" },
    });
    await waitFor("ManagerRestarted", () => reasons().includes("ManagerRestarted"));
    const looks = podLists().length;
    // Every 10th pass (200 ms each here) looks again: the same count is not announced again.
    await waitFor("two more looks", () => podLists().length >= looks + 2);
    const restarted = api.events.filter((e) => e.reason === "ManagerRestarted");
    expect(restarted.map((e) => [e.type, e.message])).toEqual([
      [
        "Warning",
        "vNode manager restarted 2 times on node n1 (container vnode-manager, restart count 3; its last run ended with exit code 137, OOMKilled, at 2026-11-29T23:00:00.000Z): every vNode and workload on node n1 restarted.",
      ],
    ]);
    const m = parsePrometheusText(await metrics.registry.metrics());
    expect(
      valueOf(m, "vnode_agent_manager_restarts_total", "vnode_agent_manager_restarts_total"),
    ).toBe(2);
    expect(
      valueOf(
        m,
        "vnode_agent_manager_container_restarts",
        "vnode_agent_manager_container_restarts",
      ),
    ).toBe(3);
    sigterm();
    expect(await exit).toBe(0);
  });

  it("a mode change is announced once: the node's mode label differs, the next start does not", async () => {
    api.updateNode(NODE, (n) => {
      n.metadata.labels = { ...OS_LABEL, [ISOLATION_MODE_LABEL]: "per-namespace" };
    });
    const first = start(options("containerd-1.7-kubeadm"));
    await ready();
    sigterm();
    expect(await first.exit).toBe(0);
    const changed = api.events.filter((e) => e.reason === "IsolationModeChanged");
    expect(changed.map((e) => [e.type, e.message])).toEqual([
      [
        "Warning",
        "The isolation mode of node n1 changes from per-namespace to per-pod: the vNode manager restarts with VNODE_PER_POD=true, and every vNode and workload on the node restarts.",
      ],
    ]);
    // The agent restarts (a crash, a rolling update of the same mode): nothing changed.
    const second = start({
      ...options("containerd-1.7-kubeadm"),
      installer: { ...installer("containerd-1.7-kubeadm") },
    });
    await waitFor(
      "second RuntimeReady",
      () => reasons().filter((r) => r === "RuntimeReady").length === 2,
    );
    sigterm();
    expect(await second.exit).toBe(0);
    expect(reasons().filter((r) => r === "IsolationModeChanged")).toHaveLength(1);
  });
});
