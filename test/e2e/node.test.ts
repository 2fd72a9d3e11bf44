/**
 * `npm run e2e:node`: the agent DaemonSet's pod, rendered by the stack program (the `npm run
 * render` code path), run on one node the way kubelet runs it: both containers (the agent and
 * vNode's manager) in one pod, each with its own security context, mounts, env and probes.
 *
 * Real parts: the agent image built from agent/Dockerfile with buildah, its vNode payload found
 * by name in a stand-in vNode image; podman running the pod template as translated by
 * test/support/kubelet.ts (which refuses fields it does not know); containerd 1.6 laid out as on a
 * node under a private host root (config, socket, CNI dirs, the agent's install dir), restarted by
 * the agent through a private system D-Bus; the bundled agent itself, unmodified.
 *
 * Named FAKES and stand-ins, for what this machine cannot run:
 * - the API server: test/support/fakeKubeApi.ts over HTTPS, reached as kubelet tells a pod to
 *   reach it (KUBERNETES_SERVICE_HOST/PORT, the service account token and CA);
 * - systemd: the fake of test/support/dbus.ts on that bus; its RestartUnit restarts the harness's
 *   containerd, so the default `systemd` restart strategy is the one exercised;
 * - vNode itself (commercial; needs containerd 1.7+, cgroup v2): the stand-in multi-call program
 *   of test/support/agentHost.ts, acting by argv[0] as vNode's binary does (vNode's architecture
 *   page). As the shim it execs Debian's runc shim, so a sandbox on handler `vnode` really runs
 *   through the link the agent installed (the real shim only hands containerd the manager's
 *   socket, and containerd then speaks the same shim v2 API to it); as `vnode-cni` it passes its
 *   prevResult on, as a chained CNI plugin must; as `vnode-manager` it records each start with its
 *   environment under the host root and listens on the manager's socket;
 * - the host's CNI network: the same program as `host-net` and `loopback` (a real bridge and IPAM
 *   need a network this sandbox does not have).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  AGENT_DEFAULTS,
  CNI_HOST_DEFAULTS,
  ISOLATION_MODE_LABEL,
  MANAGER_DEFAULTS,
  PAYLOAD_ROLES,
  RUNTIME_LABEL,
  VNODE_CNI_CONF_DIR,
} from "vnode-contract";
import {
  criStatus,
  podSandboxStatus,
  removePodSandbox,
  runPodSandbox,
  stopPodSandbox,
} from "../../agent/src/cri/client";
import type { Manifest } from "../../scripts/render";
import {
  type ManagerStart,
  STAND_IN_BINARY,
  managerStarts,
  standInCalls,
  standInScript,
} from "../support/agentHost";
import { containerdUnavailable, startContainerd, type TestContainerd } from "../support/containerd";
import {
  type FakeSystemd,
  type TestBus,
  dbusUnavailable,
  startDbusDaemon,
  startFakeSystemd,
} from "../support/dbus";
import { describeIf } from "../support/describeIf";
import { FakeKubeApi } from "../support/fakeKubeApi";
import {
  type Store,
  REPO_ROOT,
  buildAgentImage,
  buildah,
  check,
  commitFromScratch,
  defaultStore,
  ensureNodeBaseImage,
  imageToolsUnavailable,
  podman,
} from "../support/images";
import { RunningPod, translatePod } from "../support/kubelet";
import { makeCa, opensslUnavailable } from "../support/tlsCerts";

// Each step runs pods for tens of seconds (readiness polled on the rendered 10 s period).
jest.setTimeout(300_000);

const NODE = "e2e-node";
const NAMESPACE = "vnode-runtime";
const TOKEN = "e2e-service-account-token";
const IMAGE = `localhost/vnode-e2e/agent:${process.pid}`;
/** The same agent rebuilt with another VERSION label: a newer image, as a rollout brings. */
const NEWER_IMAGE = `localhost/vnode-e2e/agent:${process.pid}-newer`;
const AGENT = "agent";
const MANAGER = MANAGER_DEFAULTS.container;
/**
 * The one deviation from the rendered args: this CI machine is not a vNode-capable node (Debian's
 * containerd is 1.6, vNode needs 1.7+; its cgroups are hybrid, vNode needs v2 only), so preflight
 * is told so. On a real node the rendered args run as they are.
 */
const NOT_A_VNODE_NODE = ["--skip-preflight", "cgroup", "--min-containerd", "1.6"];
/** The pools of the rendered stack: one per mode, selected by a node label. */
const POOLS = [
  { pool: "builds", isolationMode: "per-pod", perPod: "true" },
  { pool: "tenants", isolationMode: "per-namespace", perPod: "false" },
] as const;
const POOL_LABEL = "e2e.example.com/pool";
/**
 * The stand-in's records, as node paths in the manager's socket dir: the one dir the manager
 * mounts, and one the harness binds into containerd's mount namespace too (where the shim and
 * the CNI plugins run). Fixed paths: the stand-in image, and so the agent image's payload layer,
 * are the same on every run.
 */
// The rendered agent's --manager-socket is the contract's default (asserted per pool below).
const RECORD_DIR = path.posix.dirname(MANAGER_DEFAULTS.socket);
const MANAGER_RECORD = path.posix.join(RECORD_DIR, "e2e-manager-starts.jsonl");
const CALLS_RECORD = path.posix.join(RECORD_DIR, "e2e-calls.jsonl");
/** Each container's output, kept after its pod is gone. */
const LOG_DIR = path.join(os.tmpdir(), "vnode-e2e-logs");
/** kubelet marks a pod ready on the first readiness success; the agent needs one probe period. */
const READY_TIMEOUT_MS = 60_000;
const HOST_CONFLIST = `{
  "cniVersion": "0.4.0",
  "name": "hostnet",
  "plugins": [{ "type": "host-net" }]
}
`;

const unavailable =
  containerdUnavailable({ pauseImage: true }) ??
  dbusUnavailable() ??
  imageToolsUnavailable() ??
  opensslUnavailable();

interface Obj {
  [key: string]: unknown;
}

const t0 = Date.now();
/** Progress on stderr: the e2e runs for minutes. */
function progress(msg: string): void {
  process.stderr.write(`[e2e:node +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

/** The stack program under Pulumi's mocks with `pools`, in a fresh module registry. */
async function render(
  pools: readonly { pool: string; isolationMode: string }[],
): Promise<Manifest[]> {
  const config: Record<string, string> = {
    "vnode-runtime:agentImage": IMAGE,
    "vnode-runtime:pools": JSON.stringify(
      pools.map((p) => ({
        name: p.pool,
        isolationMode: p.isolationMode,
        nodeSelector: { [POOL_LABEL]: p.pool },
      })),
    ),
  };
  let manifests: Manifest[] = [];
  // index.ts registers its resources when imported: a fresh registry runs it again.
  await jest.isolateModulesAsync(async () => {
    const { runProgram } = await import("../../scripts/render");
    manifests = await runProgram(REPO_ROOT, "vnode-runtime", "e2e", config, []);
  });
  return manifests;
}

/**
 * The stand-in vNode image: the stand-in multi-call program and its role links, as vNode's image
 * carries its binary. `/usr/bin/env node`: the manager role runs in the agent image (node on
 * PATH), the shim and CNI roles on the host under containerd (the test's node on PATH).
 */
async function standInVNodeImage(store: Store, record: string): Promise<string> {
  const ref = `localhost/vnode-e2e/vnode-runtime:${process.pid}`;
  const script = standInScript(record, fs.realpathSync(whichShim()), {
    interpreter: "/usr/bin/env node",
    managerSocket: MANAGER_DEFAULTS.socket,
    managerRecord: MANAGER_RECORD,
  });
  await commitFromScratch(
    store,
    ref,
    (rootfs) => {
      const bin = path.join(rootfs, "usr/bin");
      fs.mkdirSync(bin, { recursive: true });
      fs.writeFileSync(path.join(bin, STAND_IN_BINARY), script, { mode: 0o755 });
      for (const role of Object.values(PAYLOAD_ROLES))
        fs.symlinkSync(STAND_IN_BINARY, path.join(bin, role));
    },
    ["--cmd", "[]"],
  );
  return ref;
}

function whichShim(): string {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/bin"]) {
    const p = path.join(dir, "containerd-shim-runc-v2");
    if (dir && fs.existsSync(p)) return p;
  }
  throw new Error("containerd-shim-runc-v2 is not installed (Debian package containerd)");
}

function environOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    fs
      .readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

describeIf(unavailable, "the rendered agent pod on one node, run as kubelet runs it", () => {
  const store = defaultStore();
  let work: string;
  let hostRoot: string;
  let ctrd: TestContainerd;
  let bus: TestBus;
  let systemd: FakeSystemd;
  let api: FakeKubeApi;
  /** The stack as first rendered, and after the tenants pool switched to per-pod. */
  let manifests: Manifest[];
  let switched: Manifest[];
  let saDir: string;
  /** The shim's and CNI plugins' record (they run on the host, under containerd). */
  const calls = () => path.join(hostRoot, CALLS_RECORD);
  const pods: RunningPod[] = [];
  const images: string[] = [];
  let podCount = 0;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-e2e-"));
    hostRoot = path.join(work, "host");
    fs.rmSync(LOG_DIR, { recursive: true, force: true });
    fs.mkdirSync(LOG_DIR, { recursive: true });
    progress("rendering the stack (both modes, then the tenants pool switched to per-pod)");
    manifests = await render(POOLS);
    switched = await render(POOLS.map((p) => ({ ...p, isolationMode: "per-pod" })));

    progress("building the agent images (agent/Dockerfile, buildah) on a stand-in vNode image");
    const base = await ensureNodeBaseImage(store);
    const vnode = await standInVNodeImage(store, CALLS_RECORD);
    images.push(vnode);
    const built = await buildAgentImage(store, {
      tag: IMAGE,
      buildArgs: {
        BUILD_IMAGE: base,
        BASE_IMAGE: base,
        VNODE_IMAGE: vnode,
        VERSION: "0.0.0-e2e.1",
      },
    });
    images.push(IMAGE);
    progress(`built ${IMAGE} in ${built.seconds.toFixed(1)} s`);
    // The newer image: the same build with the next version label (what a rebuild with a new
    // VERSION build arg yields: a new image config, so a new digest), committed directly rather
    // than rebuilt, which costs half a minute here.
    const ctr = check(
      "buildah from",
      await buildah(store, ["from", "--pull-never", IMAGE]),
    ).stdout.trim();
    check(
      "buildah config",
      await buildah(store, [
        "config",
        "--label",
        "org.opencontainers.image.version=0.0.0-e2e.2",
        ctr,
      ]),
    );
    check("buildah commit", await buildah(store, ["commit", "--quiet", "--rm", ctr, NEWER_IMAGE]));
    images.push(NEWER_IMAGE);

    progress("starting containerd under the host root, D-Bus, fake systemd, fake API server");
    // The host's CNI network, as a node has it before the agent comes.
    const hostCni = path.join(work, "host-cni");
    fs.mkdirSync(hostCni);
    fs.writeFileSync(
      path.join(hostCni, STAND_IN_BINARY),
      standInScript(CALLS_RECORD, whichShim(), { interpreter: "/usr/bin/env node" }),
      { mode: 0o755 },
    );
    for (const dir of [CNI_HOST_DEFAULTS.binDir, CNI_HOST_DEFAULTS.confDir])
      fs.mkdirSync(path.join(hostRoot, dir), { recursive: true });
    for (const plugin of ["host-net", "loopback"]) {
      fs.symlinkSync(
        path.join(hostCni, STAND_IN_BINARY),
        path.join(hostRoot, CNI_HOST_DEFAULTS.binDir, plugin),
      );
    }
    fs.writeFileSync(
      path.join(hostRoot, CNI_HOST_DEFAULTS.confDir, "10-host.conflist"),
      HOST_CONFLIST,
    );
    ctrd = await startContainerd({
      hostRoot,
      nodePaths: [AGENT_DEFAULTS.installDir, VNODE_CNI_CONF_DIR, RECORD_DIR],
      shimPath: [AGENT_DEFAULTS.installDir],
      pauseImage: true,
    });
    bus = await startDbusDaemon({ hostRoot });
    systemd = await startFakeSystemd(bus.socket, {
      units: { "containerd.service": { loadState: "loaded", activeState: "active" } },
      onRestart: () => ctrd.restart(),
    });
    const ca = makeCa(path.join(work, "ca"));
    api = await FakeKubeApi.start({ token: TOKEN, tls: ca.issue("kubernetes") });
    saDir = path.join(work, "serviceaccount");
    fs.mkdirSync(saDir);
    fs.writeFileSync(path.join(saDir, "token"), TOKEN);
    fs.writeFileSync(path.join(saDir, "ca.crt"), ca.certPem);
    fs.writeFileSync(path.join(saDir, "namespace"), NAMESPACE);
    progress("ready to run pods");
  }, 900_000);

  afterAll(async () => {
    for (const pod of pods) await pod.remove();
    for (const ref of images) await podman(store, ["rmi", "--force", ref]);
    await systemd?.stop();
    await bus?.stop();
    await ctrd?.cleanup();
    await api?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    progress("done");
  }, 120_000);

  const daemonSetOf = (from: Manifest[], pool: string): Obj =>
    from.find(
      (m) => m.kind === "DaemonSet" && (m.metadata as Obj).name === `vnode-agent-${pool}`,
    ) as unknown as Obj;
  const podSpecOf = (from: Manifest[], pool: string): Obj =>
    ((daemonSetOf(from, pool).spec as Obj).template as Obj).spec as Obj;
  const containerOf = (from: Manifest[], pool: string, name: string): Obj =>
    (podSpecOf(from, pool).containers as Obj[]).find((c) => c.name === name) as Obj;
  const nodeLabels = () => api.nodes.get(NODE)!.metadata.labels as Record<string, string>;
  const restarts = () => systemd.calls.filter((c) => c.member === "RestartUnit").length;
  const starts = (): ManagerStart[] => managerStarts(path.join(hostRoot, MANAGER_RECORD));
  const eventReasons = () => api.events.map((e) => e.reason as string);

  /** The node as a fresh member of `pool`, with its DaemonSet in the fake API. */
  function joinPool(pool: string): void {
    api.nodes.delete(NODE);
    api.addNode(NODE, { "kubernetes.io/os": "linux", [POOL_LABEL]: pool });
    api.addDaemonSet(NAMESPACE, `vnode-agent-${pool}`, { [POOL_LABEL]: pool });
    systemd.reset();
    api.events.length = 0;
    fs.rmSync(path.join(hostRoot, MANAGER_RECORD), { force: true });
  }

  /** kubelet creates the DaemonSet's pod on the node and waits for the agent's readiness. */
  async function runPod(from: Manifest[], pool: string, image?: string): Promise<RunningPod> {
    const name = `vnode-e2e-${process.pid}-${++podCount}`;
    progress(`pod ${name}: ${pool}${image ? ` (${image})` : ""}`);
    const pod = await RunningPod.start(
      store,
      translatePod(podSpecOf(from, pool), {
        hostRoot,
        nodeName: NODE,
        namespace: NAMESPACE,
        serviceAccountDir: saDir,
        apiHost: "127.0.0.1",
        apiPort: Number(new URL(api.url).port),
        podDir: path.join(work, name),
        name,
        extraArgs: { [AGENT]: NOT_A_VNODE_NODE },
        ...(image === undefined ? {} : { image }),
      }),
      work,
    );
    pods.push(pod);
    // The API's side of the pod: the DaemonSet controller created it, kubelet reports each
    // container running and its restart count (the agent reads its manager's from there).
    const apiPod = api.addPod(NAMESPACE, name, NODE, { daemonSet: `vnode-agent-${pool}` });
    apiPod.status = {
      phase: "Running",
      containerStatuses: pod.pod.containers.map((c) => ({
        name: c.name,
        ready: false,
        restartCount: 0,
        state: { running: {} },
      })),
    };
    try {
      await pod.waitReady(AGENT, READY_TIMEOUT_MS);
    } catch (err) {
      // The next pod needs the probe port: this one goes, as kubelet would kill it.
      await keepLogs(pod);
      await pod.remove();
      throw err;
    }
    progress(`pod ${name}: ready`);
    return pod;
  }

  async function keepLogs(pod: RunningPod): Promise<void> {
    for (const c of pod.pod.containers)
      fs.writeFileSync(path.join(LOG_DIR, `${c.podmanName}.log`), await pod.logs(c.name, 10_000));
  }

  /** kubelet stops the pod (SIGTERM, the grace period); every container exits 0. */
  async function stopPod(pod: RunningPod): Promise<void> {
    progress(`pod ${pod.pod.name}: SIGTERM, grace ${pod.pod.terminationGracePeriodSeconds} s`);
    pod.assertLive();
    const codes = await pod.stop();
    await keepLogs(pod);
    await pod.remove();
    api.pods.splice(
      api.pods.findIndex((p) => (p.metadata as Obj).name === pod.pod.name),
      1,
    );
    expect(codes).toEqual({ [AGENT]: 0, [MANAGER]: 0 });
    progress(`pod ${pod.pod.name}: stopped`);
  }

  /** The manager process's own environment, read from the node's /proc. */
  async function managerEnv(pod: RunningPod): Promise<Record<string, string>> {
    return environOf(await pod.pid(MANAGER));
  }

  /** SIGTERM after the DaemonSet was deleted: the node leaves; everything is restored. */
  async function leave(pod: RunningPod, pool: string): Promise<void> {
    api.daemonSets.delete(`${NAMESPACE}/vnode-agent-${pool}`);
    const before = restarts();
    await stopPod(pod);
    expect(fs.readFileSync(ctrd.configPath, "utf8")).toBe(ctrd.originalConfig);
    expect(fs.readdirSync(path.join(hostRoot, AGENT_DEFAULTS.installDir))).toEqual([]);
    expect(fs.readdirSync(path.join(hostRoot, CNI_HOST_DEFAULTS.binDir)).sort()).toEqual([
      "host-net",
      "loopback",
    ]);
    expect(fs.readdirSync(path.join(hostRoot, VNODE_CNI_CONF_DIR))).toEqual([]);
    expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc"]);
    expect(restarts()).toBe(before + 1);
    expect(nodeLabels()).toEqual({ "kubernetes.io/os": "linux", [POOL_LABEL]: pool });
  }

  describe.each(POOLS)("pool $pool ($isolationMode)", ({ pool, isolationMode, perPod }) => {
    let pod: RunningPod;

    beforeAll(() => joinPool(pool));

    it("the rendered template: two containers, VNODE_PER_POD from the mode in both, the systemd strategy", () => {
      expect((podSpecOf(manifests, pool).containers as Obj[]).map((c) => c.name)).toEqual([
        AGENT,
        MANAGER,
      ]);
      for (const name of [AGENT, MANAGER]) {
        expect(
          (containerOf(manifests, pool, name).env as Obj[]).find((e) => e.name === "VNODE_PER_POD"),
        ).toEqual({ name: "VNODE_PER_POD", value: perPod });
      }
      const args = containerOf(manifests, pool, AGENT).args as string[];
      expect(args).toContain("systemd");
      // The agent's readiness connects to this socket: the stand-in manager listens there.
      expect(args[args.indexOf("--manager-socket") + 1]).toBe(MANAGER_DEFAULTS.socket);
    });

    it("installs, restarts containerd once through systemd, the CRI reports vnode, the node is labelled", async () => {
      pod = await runPod(manifests, pool);
      expect(restarts()).toBe(1);
      expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc", "vnode"]);
      expect(nodeLabels()).toEqual({
        "kubernetes.io/os": "linux",
        [POOL_LABEL]: pool,
        [RUNTIME_LABEL]: "ready",
        [ISOLATION_MODE_LABEL]: isolationMode,
      });
      // The payload the image carried, by role: each role name in the install dir, and
      // vnode-cni linked where containerd's CNI looks plugins up by type.
      expect(fs.readdirSync(path.join(hostRoot, AGENT_DEFAULTS.installDir)).sort()).toEqual(
        Object.values(PAYLOAD_ROLES).sort(),
      );
      const cniLink = path.join(hostRoot, CNI_HOST_DEFAULTS.binDir, PAYLOAD_ROLES.cni);
      expect(path.posix.dirname(fs.readlinkSync(cniLink))).toBe(AGENT_DEFAULTS.installDir);
      expect(fs.readFileSync(ctrd.configPath, "utf8")).toContain(
        `runtime_path = "${AGENT_DEFAULTS.installDir}/${PAYLOAD_ROLES.shim}"`,
      );
    });

    it(`runs vNode's manager once, with VNODE_PER_POD=${perPod} in its own environment, on its socket`, async () => {
      expect(starts().map((s) => [s.start, s.env.VNODE_PER_POD, s.env.NODE_NAME])).toEqual([
        [1, perPod, NODE],
      ]);
      expect((await managerEnv(pod)).VNODE_PER_POD).toBe(perPod);
      expect(fs.statSync(path.join(hostRoot, MANAGER_DEFAULTS.socket)).isSocket()).toBe(true);
    });

    it("a pod sandbox on handler vnode runs from the installed shim until SANDBOX_READY, vnode-cni after the host's CNI", async () => {
      const id = await runPodSandbox(
        ctrd.socket,
        {
          metadata: {
            name: `e2e-${pool}`,
            uid: `e2e-${pool}-${process.pid}`,
            namespace: "e2e",
            attempt: 0,
          },
          logDirectory: path.join(work, "pods", pool),
          linux: { securityContext: { namespaceOptions: { network: "POD" } } },
        },
        "vnode",
        { timeoutMs: 60_000 },
      );
      try {
        const status = await podSandboxStatus(ctrd.socket, id);
        expect([status.state, status.runtimeHandler]).toEqual(["SANDBOX_READY", "vnode"]);
        const mine = standInCalls(calls());
        // containerd ran the shim by its role name from the install dir (argv[0]).
        expect(mine.filter((c) => c.role === PAYLOAD_ROLES.shim).length).toBeGreaterThan(0);
        expect(
          mine
            .filter((c) => c.containerId === id && c.cniCommand === "ADD" && c.role !== "loopback")
            .map((c) => c.role),
        ).toEqual(["host-net", PAYLOAD_ROLES.cni]);
      } finally {
        await stopPodSandbox(ctrd.socket, id, { timeoutMs: 30_000 });
        await removePodSandbox(ctrd.socket, id, { timeoutMs: 30_000 });
      }
    });

    // DaemonSet RollingUpdate (maxUnavailable 1, no surge): kubelet stops the old pod first, then
    // the controller creates the new one from the new template.
    it("rolling update: the old pod's SIGTERM keeps the runtime, the newer image restarts no containerd", async () => {
      const pid = ctrd.pid;
      await stopPod(pod);
      expect(ctrd.pid).toBe(pid);
      expect(restarts()).toBe(1);
      expect((await criStatus(ctrd.socket)).handlers).toEqual(["runc", "vnode"]);
      expect(eventReasons()).toContain("RuntimeKept");
      expect(nodeLabels()[RUNTIME_LABEL]).toBe("ready");

      pod = await runPod(manifests, pool, NEWER_IMAGE);
      expect(restarts()).toBe(1);
      expect(ctrd.pid).toBe(pid);
      expect(nodeLabels()[RUNTIME_LABEL]).toBe("ready");
      // The new pod's manager: one more start, same mode.
      expect(starts().map((s) => [s.start, s.env.VNODE_PER_POD])).toEqual([
        [1, perPod],
        [2, perPod],
      ]);
    });

    if (pool === "tenants") {
      // A mode switch on one node: the pool's isolationMode changes, so its DaemonSet's template
      // does, and the DaemonSet rolls the pod (the stopped pod above was the rolling update's).
      it("mode switch: the pool rolled to per-pod starts the manager exactly once with VNODE_PER_POD=true, no containerd restart", async () => {
        for (const name of [AGENT, MANAGER]) {
          expect(
            (containerOf(switched, pool, name).env as Obj[]).find(
              (e) => e.name === "VNODE_PER_POD",
            ),
          ).toEqual({ name: "VNODE_PER_POD", value: "true" });
        }
        const pid = ctrd.pid;
        const eventsBefore = eventReasons().length;
        await stopPod(pod);
        pod = await runPod(switched, pool);
        expect(starts().map((s) => [s.start, s.env.VNODE_PER_POD])).toEqual([
          [1, "false"],
          [2, "false"],
          [3, "true"],
        ]);
        expect((await managerEnv(pod)).VNODE_PER_POD).toBe("true");
        expect(nodeLabels()[ISOLATION_MODE_LABEL]).toBe("per-pod");
        expect(eventReasons().slice(eventsBefore)).toContain("IsolationModeChanged");
        expect(restarts()).toBe(1);
        expect(ctrd.pid).toBe(pid);
      });
    }

    it("with the DaemonSet deleted, SIGTERM restores the config byte for byte, removes the links and labels", async () => {
      await leave(pod, pool);
    });
  });
});
