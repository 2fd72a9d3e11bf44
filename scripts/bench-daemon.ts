/**
 * `npm run bench:agent`, second table: the daemon `vnode-agent run` against a real containerd 1.6
 * (private, as in the tests) and the fake Kubernetes API server (test/support/fakeKubeApi.ts),
 * with a 1 s reconcile interval:
 *   (e) steady-state RSS and CPU over 60 s, from /proc/<pid>/status VmRSS and /proc/<pid>/stat
 *       utime+stime, after a warm-up;
 *   (f) time from a drift (the handler removed from containerd's config) to its repair (config
 *       back and the CRI reporting the handler), and its two parts: detection and repair;
 *   (g) the fleet table: the agent's Kubernetes API load in the same steady window, from the fake
 *       API server's request log (requests, response bytes, new TCP/TLS connections), per node
 *       per hour and for a 5,000-node fleet. The agent runs as the DaemonSet runs it, with
 *       --manager-socket (a unix listener stands in for vNode's manager) and --manager-container
 *       (its own pod, with kubelet's container statuses, in the fake), so its pod lists count. The fake's clock runs FLEET_SCALE (30) times faster
 *       (watch timeouts, the minutely bookmarks, kubelet's 5-minute node status update), as does
 *       the agent's 1 s interval against the production 30 s, so the 60 s window is 30 minutes.
 * Needs root and Debian's containerd + runc (what `.ci/run` installs). Run `npm run build` first.
 * The agent runs with the image's NODE_OPTIONS (the ENV line of agent/Dockerfile).
 * BENCH_STEADY_SECONDS and BENCH_DRIFTS shorten it for a quick look; BENCH_MANAGER=0 runs the
 * agent without --manager-socket and --manager-container; BENCH_AGENT_NODE_OPTIONS
 * runs the agent with other Node.js options (e.g. --max-semi-space-size=1) to compare, and
 * BENCH_AGENT_ENV adds environment variables (`K=V,K2=V2`, e.g. MALLOC_ARENA_MAX=2).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";
import { criStatus } from "../agent/src/cri/client";
import { agentHost } from "../test/support/agentHost";
import { containerdUnavailable, startContainerd } from "../test/support/containerd";
import { FakeKubeApi } from "../test/support/fakeKubeApi";
import { median } from "./stats";

const CLI = path.resolve(__dirname, "../agent/dist/vnode-agent.js");
const STEADY_SECONDS = Number(process.env.BENCH_STEADY_SECONDS ?? 60);
/**
 * Start-up (loading the Kubernetes client, the install) grows V8's young generation to 16 MiB;
 * V8's memory reducer gives it back about 10 s after start (RSS ~80 -> ~70 MiB). Steady state
 * starts after that.
 */
const WARMUP_SECONDS = 15;
const DRIFTS = Number(process.env.BENCH_DRIFTS ?? 5);
const NODE = "bench-node";
/** The fake API server's clock speed: the agent's 1 s interval stands for the default 30 s. */
const FLEET_SCALE = 30;
/** The nodes of the fleet the load is computed for. */
const FLEET = 5000;
/** kubelet updates its Node status every 5 minutes when nothing changes (nodeStatusReportFrequency). */
const NODE_STATUS_SECONDS = 300;
const TOKEN = "bench-token";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resident set size of a process, in MiB. */
function rssMiB(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB$/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** RSS split into anonymous memory (heap, malloc) and file pages (node's binary, libraries), MiB. */
function rssParts(pid: number): { anon: number; file: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) =>
    Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB$`, "m"))?.[1] ?? NaN);
  return { anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024 };
}

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5); `fields` starts at field 3.
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * The part of @kubernetes/client-node the agent uses (agent/build.mjs vendors it), or the bundle
 * itself.
 */
const KUBE_VENDOR = fs.existsSync(
  path.resolve(__dirname, "../agent/dist/vendor/kubernetes-client-node.js"),
)
  ? path.resolve(__dirname, "../agent/dist/vendor/kubernetes-client-node.js")
  : CLI;

/** NODE_OPTIONS of the agent image, read from agent/Dockerfile so the two cannot drift apart. */
export function imageNodeOptions(dockerfile: string): string {
  const m = dockerfile.match(/^ENV\b.*\sNODE_OPTIONS=("[^"]*"|\S*)/m);
  if (!m) throw new Error("agent/Dockerfile has no ENV line that sets NODE_OPTIONS.");
  return m[1].replace(/^"(.*)"$/, "$1");
}

/** RSS (MiB) of an idle node process that ran `code`: the floor under the agent's RSS. */
function idleRss(code: string): number {
  const out = execFileSync(
    process.execPath,
    [
      "-e",
      `${code};setTimeout(()=>process.stdout.write(require("fs").readFileSync("/proc/self/status","utf8").match(/^VmRSS:\\s+(\\d+)/m)[1]),1000)`,
    ],
    { encoding: "utf8" },
  );
  return Number(out) / 1024;
}

/**
 * The agent's V8 heap spaces (bytes, total per space), its whole V8 heap and the memory V8
 * accounts as external (Buffers, ...), from its own /metrics.
 */
async function heapSpaces(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const spaces: Record<string, number> = {};
  for (const m of text.matchAll(
    /^vnode_agent_nodejs_heap_space_size_total_bytes\{space="(\w+)"\} (\d+)$/gm,
  )) {
    spaces[m[1]] = Number(m[2]);
  }
  for (const [key, metric] of [
    ["total", "heap_size_total_bytes"],
    ["external", "external_memory_bytes"],
  ]) {
    const m = text.match(new RegExp(`^vnode_agent_nodejs_${metric} (\\d+)$`, "m"));
    spaces[key] = Number(m?.[1] ?? NaN);
  }
  return spaces;
}

async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Counts from the fake API server's request log; `since` gives the window's start. */
interface ApiLoad {
  nodeGets: number;
  watches: number;
  /** Lists of the agent's own pod (the manager container's restarts). */
  podLists: number;
  other: number;
  bytes: number;
  connections: number;
}

function apiLoad(api: FakeKubeApi, since?: ApiLoad): ApiLoad {
  const now: ApiLoad = {
    nodeGets: 0,
    watches: 0,
    podLists: 0,
    other: 0,
    bytes: 0,
    connections: api.connections,
  };
  for (const r of api.requests) {
    now.bytes += r.bytes;
    if (r.method === "GET" && r.path === `/api/v1/nodes/${NODE}`) now.nodeGets++;
    else if (r.method === "GET" && r.query.watch === "true") now.watches++;
    else if (r.method === "GET" && r.path === "/api/v1/pods") now.podLists++;
    else now.other++;
  }
  if (since === undefined) return now;
  const d = { ...now };
  for (const k of Object.keys(d) as (keyof ApiLoad)[]) d[k] = now[k] - since[k];
  return d;
}

/** (g) the fleet table: per node per hour, and the API server's load from FLEET nodes. */
function printFleet(load: ApiLoad, simulatedSeconds: number, nodeBytes: number): void {
  const perHour = (n: number) => (n * 3600) / simulatedSeconds;
  const fleetPerSecond = (n: number) => (perHour(n) * FLEET) / 3600;
  const requests = load.nodeGets + load.watches + load.podLists + load.other;
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  // The agent before issue 12: a GET of the node every 30 s on a new connection each.
  const pollPerHour = 3600 / 30;
  const rows: [string, string, string, string][] = [
    [
      "node GETs per node per hour",
      perHour(load.nodeGets).toFixed(1),
      "0 (no periodic GET)",
      load.nodeGets === 0 ? "met" : "MISSED",
    ],
    [
      "watch (re-)establishments, per 10 min",
      (perHour(load.watches) / 6).toFixed(2),
      "<= 1",
      perHour(load.watches) / 6 <= 1 ? "met" : "MISSED",
    ],
    ["own pod lists (manager) per node/hour", perHour(load.podLists).toFixed(1), "", ""],
    ["other requests per node per hour", perHour(load.other).toFixed(1), "", ""],
    ["response bytes per node per hour", kib(perHour(load.bytes)), "", ""],
    ["new connections per node per hour", perHour(load.connections).toFixed(1), "", ""],
    [`${FLEET} nodes: requests/s`, fleetPerSecond(requests).toFixed(2), "", ""],
    [`${FLEET} nodes: response bytes/s`, kib(fleetPerSecond(load.bytes)), "", ""],
    [`${FLEET} nodes: TCP+TLS handshakes/s`, fleetPerSecond(load.connections).toFixed(2), "", ""],
    [`${FLEET} nodes: open watches`, String(FLEET), "", ""],
    [`before (GET/30 s): ${FLEET} nodes GET/s`, ((pollPerHour * FLEET) / 3600).toFixed(1), "", ""],
    [
      "before: handshakes/s, bytes/s",
      `${((pollPerHour * FLEET) / 3600).toFixed(1)}, ${kib(((pollPerHour * FLEET) / 3600) * nodeBytes)}`,
      "",
      "",
    ],
  ];
  console.log(
    `\nbench:agent fleet (the Node watch; fake API server log over ${(simulatedSeconds / 60).toFixed(0)} simulated min, ` +
      `clock x${FLEET_SCALE}, node object ${kib(nodeBytes)}, kubelet status update every ${NODE_STATUS_SECONDS} s)`,
  );
  const w = [40, 22, 20, 6];
  console.log(["measure", "value", "target", ""].map((c, i) => c.padEnd(w[i])).join("  "));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join("  "));
}

export async function benchDaemon(): Promise<void> {
  const why = containerdUnavailable();
  if (why) throw new Error(`bench:agent needs a real containerd: ${why}.`);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing; run npm run build first.`);
  const ctrd = await startContainerd();
  const api = await FakeKubeApi.start({ token: TOKEN, timeScale: FLEET_SCALE });
  let kubelet: NodeJS.Timeout | undefined;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-bench-daemon-"));
  const nodeOptions =
    process.env.BENCH_AGENT_NODE_OPTIONS ??
    imageNodeOptions(fs.readFileSync(path.resolve(__dirname, "../agent/Dockerfile"), "utf8"));
  let agent: ChildProcess | undefined;
  let manager: net.Server | undefined;
  try {
    api.addNode(NODE, { "kubernetes.io/os": "linux" });
    // A node object as big as a real one: status with conditions and the image list kubelet
    // reports (up to 50 images), tens of KB.
    api.updateNode(NODE, (n) => {
      n.status = {
        conditions: ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"].map((type) => ({
          type,
          status: type === "Ready" ? "True" : "False",
          lastHeartbeatTime: new Date().toISOString(),
          reason: `Kubelet${type}`,
          message: `kubelet reports ${type}`,
        })),
        images: Array.from({ length: 50 }, (_, i) => ({
          names: [
            `registry.example.com/team-${i}/service-${i}@sha256:${"0".repeat(63)}${i % 10}`,
            `registry.example.com/team-${i}/service-${i}:v1.${i}.0`,
          ],
          sizeBytes: 50_000_000 + i,
        })),
      };
    });
    const nodeBytes = Buffer.byteLength(JSON.stringify(api.nodes.get(NODE)));
    kubelet = setInterval(
      () =>
        api.updateNode(NODE, (n) => {
          const status = n.status as { conditions: { lastHeartbeatTime: string }[] };
          status.conditions[0].lastHeartbeatTime = new Date().toISOString();
        }),
      (NODE_STATUS_SECONDS * 1000) / FLEET_SCALE,
    );
    api.addDaemonSet("vnode-system", "vnode-agent", { "kubernetes.io/os": "linux" });
    // The agent's own pod as kubelet reports it, and a listener standing in for vNode's manager.
    const pod = api.addPod("vnode-system", "vnode-agent-bench1", NODE, {
      daemonSet: "vnode-agent",
    });
    pod.status = {
      phase: "Running",
      containerStatuses: ["agent", "vnode-manager"].map((name) => ({
        name,
        ready: true,
        restartCount: 0,
        image: "registry.example.com/acme/vnode-agent:0.1.0",
        imageID: `registry.example.com/acme/vnode-agent@sha256:${"0".repeat(64)}`,
        containerID: `containerd://${"1".repeat(64)}`,
        started: true,
        state: { running: { startedAt: new Date().toISOString() } },
        lastState: {},
      })),
    };
    const managerSocket = path.join(work, "manager.sock");
    manager = net.createServer((c) => c.on("error", () => undefined));
    await new Promise<void>((resolve) => manager!.listen(managerSocket, resolve));
    const host = agentHost(ctrd, work);
    const tokenFile = path.join(work, "token");
    fs.writeFileSync(tokenFile, TOKEN);
    agent = spawn(
      process.execPath,
      [
        CLI,
        "run",
        ...host.flags,
        ...["--listen", "127.0.0.1:0", "--interval", "1s", "--max-restarts", "1000"],
        ...[
          "--daemonset",
          "vnode-agent",
          "--kube-api-server",
          api.url,
          "--kube-token-file",
          tokenFile,
        ],
        // BENCH_MANAGER=0: without them, to see what the manager checks cost.
        ...(process.env.BENCH_MANAGER === "0"
          ? []
          : ["--manager-socket", managerSocket, "--manager-container", "vnode-manager"]),
      ],
      {
        env: {
          PATH: process.env.PATH,
          NODE_NAME: NODE,
          POD_NAMESPACE: "vnode-system",
          POD_NAME: "vnode-agent-bench1",
          NODE_OPTIONS: nodeOptions,
          ...(process.env.BENCH_AGENT_ENV
            ? Object.fromEntries(
                process.env.BENCH_AGENT_ENV.split(",").map(
                  (kv) => kv.split("=") as [string, string],
                ),
              )
            : {}),
        },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const pid = agent.pid!;
    let url = "";
    const tail: string[] = [];
    readline.createInterface({ input: agent.stderr! }).on("line", (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      if (!url && line.includes('"phase":"http"')) url = String(JSON.parse(line).url);
    });
    await waitFor(
      "/readyz",
      async () => url !== "" && (await fetch(`${url}/readyz`)).status === 200,
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${tail.join("\n")}`);
    });

    // (e) steady state: labels re-read, config and CRI checked once a second, nothing to do.
    await sleep(WARMUP_SECONDS * 1000);
    const clkTck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    const rss: number[] = [];
    const load0 = apiLoad(api);
    const ticks0 = cpuTicks(pid);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < STEADY_SECONDS; i++) {
      await sleep(1000);
      rss.push(rssMiB(pid));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpuPercent = ((cpuTicks(pid) - ticks0) / clkTck / seconds) * 100;
    const load = apiLoad(api, load0);
    const passes = Math.round(seconds);
    const heap = await heapSpaces(url);
    const parts = rssParts(pid);

    const currentPid = () => {
      try {
        return ctrd.pid;
      } catch {
        return 0; // between stop and start
      }
    };
    // (f) drift: the handler removed from the config while containerd runs (an admin edit,
    // k3s re-rendering), until the config is back and the CRI reports the handler again.
    const installed = fs.readFileSync(ctrd.configPath, "utf8");
    const toRepair: number[] = [];
    const toDetect: number[] = [];
    for (let i = 0; i < DRIFTS; i++) {
      // Spread the edits over the interval's phase, as real drifts are.
      await sleep(1000 + (i * 1000) / DRIFTS);
      const before = ctrd.pid;
      const seen = api.events.length;
      const edited = Date.now();
      fs.writeFileSync(ctrd.configPath, ctrd.originalConfig);
      await waitFor(
        "the repair",
        async () =>
          currentPid() !== before &&
          fs.readFileSync(ctrd.configPath, "utf8") === installed &&
          (await criStatus(ctrd.socket).catch(() => null))?.handlers.includes("vnode"),
        60_000,
      );
      toRepair.push(Date.now() - edited);
      const detected = api.events.slice(seen).find((e) => e.reason === "DriftDetected");
      if (!detected) throw new Error("no DriftDetected event");
      toDetect.push(Date.parse(String(detected.firstTimestamp)) - edited);
      await waitFor("/readyz", async () => (await fetch(`${url}/readyz`)).status === 200, 30_000);
    }

    agent.kill("SIGTERM");
    await new Promise((resolve) => agent!.once("exit", resolve));

    const maxRss = Math.max(...rss);
    const bare = idleRss("");
    const withKube = idleRss(`require(${JSON.stringify(KUBE_VENDOR)})`);
    const rows: [string, string, string, string][] = [
      [`(e) steady RSS, median of ${rss.length} s`, `${median(rss).toFixed(1)} MiB`, "", ""],
      [
        "    steady RSS, max",
        `${maxRss.toFixed(1)} MiB`,
        "<= 80 MiB",
        maxRss <= 80 ? "met" : "MISSED",
      ],
      [
        `    CPU over ${seconds.toFixed(0)} s (${passes} passes)`,
        `${cpuPercent.toFixed(2)} % of a core`,
        "<= 1 %",
        cpuPercent <= 1 ? "met" : "MISSED",
      ],
      [
        "    anonymous / file-backed pages",
        `${parts.anon.toFixed(1)} / ${parts.file.toFixed(1)} MiB`,
        "",
        "",
      ],
      [
        "    anon: V8 heap / external / native",
        [heap.total, heap.external, parts.anon * 1048576 - heap.total - heap.external]
          .map((b) => (b / 1048576).toFixed(1))
          .join(" / ") + " MiB",
        "",
        "",
      ],
      ["    where RSS goes: bare node", `${bare.toFixed(1)} MiB`, "", ""],
      ["    + @kubernetes/client-node", `+${(withKube - bare).toFixed(1)} MiB`, "", ""],
      [
        "    V8 heap: new / old / code",
        ["new", "old", "code"].map((k) => (heap[k] / 1048576).toFixed(1)).join(" / ") + " MiB",
        "",
        "",
      ],
      [`(f) drift to repair, median of ${DRIFTS}`, `${median(toRepair)} ms`, "", ""],
      ["    drift to repair, max", `${Math.max(...toRepair)} ms`, "", ""],
      [
        "    of which detection (median)",
        `${median(toDetect)} ms`,
        "<= 1 interval",
        median(toDetect) <= 1000 ? "met" : "MISSED",
      ],
    ];
    console.log(
      `\nbench:agent daemon (vnode-agent run, --interval 1s), ${os.cpus().length} CPUs, ` +
        `NODE_OPTIONS=${JSON.stringify(nodeOptions)}` +
        (process.env.BENCH_AGENT_NODE_OPTIONS === undefined ? " (the image's)" : ""),
    );
    const w = [36, 22, 14, 6];
    console.log(["measure", "value", "target", ""].map((c, i) => c.padEnd(w[i])).join("  "));
    for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join("  "));
    printFleet(load, seconds * FLEET_SCALE, nodeBytes);
  } finally {
    if (kubelet) clearInterval(kubelet);
    if (agent && agent.exitCode === null && agent.signalCode === null) agent.kill("SIGKILL");
    manager?.close();
    await api.close();
    await ctrd.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchDaemon().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
