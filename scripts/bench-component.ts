/**
 * Benchmark: time to construct a VNodeRuntime and register all its children under Pulumi's mock
 * runtime, with 1, 10 and 50 pools. Target: 50 pools in under 2 s.
 *
 *   npm run bench:component [-- --runs 5]
 *
 * Each measurement runs from `new VNodeRuntime(...)` until the mock engine has seen every child
 * and the component's outputs resolved. One warm-up run first (module loading, JIT) is not counted.
 */
import { performance } from "perf_hooks";
import * as os from "os";
import * as pulumi from "@pulumi/pulumi";
import { IsolationMode, PoolArgs, VNodeRuntime, VNodeRuntimeArgs } from "../components/index";
import { resolveArgs } from "../components/defaults";
import { median } from "./stats";

const POOL_COUNTS = [1, 10, 50];
const TARGET_MS = 2000;

const registered = new Map<string, number>();
const waiters: { prefix: string; count: number; done: () => void }[] = [];

function argsFor(pools: number): VNodeRuntimeArgs {
  const list: PoolArgs[] = Array.from({ length: pools }, (_, i) => ({
    name: `pool-${i}`,
    // Alternate modes so both RuntimeClasses exist, as in a real mixed cluster.
    isolationMode: i % 2 === 0 ? IsolationMode.PerNamespace : IsolationMode.PerPod,
    nodeSelector: { "node.example.com/pool": `pool-${i}` },
    tolerations: [{ key: `pool-${i}`, operator: "Exists", effect: "NoSchedule" }],
  }));
  return { agentImage: { ref: "ghcr.io/acme/vnode-agent:0.1.0" }, pools: list };
}

/** Every resource the component registers: itself, Namespace, ServiceAccount, 4 RBAC, DaemonSets, classes. */
function expectedResources(name: string, args: VNodeRuntimeArgs): number {
  const plan = resolveArgs(name, args);
  return 1 + 1 + 1 + 4 + plan.pools.length + plan.runtimeClasses.length;
}

function waitForRegistrations(prefix: string, count: number): Promise<void> {
  if ((registered.get(prefix) ?? 0) >= count) {
    return Promise.resolve();
  }
  return new Promise((done) => waiters.push({ prefix, count, done }));
}

async function measure(name: string, pools: number): Promise<{ ms: number; resources: number }> {
  const args = argsFor(pools);
  const expected = expectedResources(name, args);
  const start = performance.now();
  const runtime = new VNodeRuntime(name, args);
  await waitForRegistrations(name, expected);
  await new Promise((resolve) => runtime.daemonSetNames.apply(resolve));
  await new Promise((resolve) => runtime.runtimeClassNames.apply(resolve));
  return { ms: performance.now() - start, resources: registered.get(name) ?? 0 };
}

async function main(): Promise<number> {
  const runsFlag = process.argv.indexOf("--runs");
  const runs = runsFlag === -1 ? 5 : Number(process.argv[runsFlag + 1]);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error("bench-component: --runs needs a positive integer.");
    return 2;
  }
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const prefix = args.name.split("-")[0];
        registered.set(prefix, (registered.get(prefix) ?? 0) + 1);
        for (const waiter of waiters.filter(
          (w) => w.prefix === prefix && (registered.get(prefix) ?? 0) >= w.count,
        )) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.done();
        }
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    "bench",
    "bench",
    false,
  );
  await measure("warmup", 10);

  const rows: string[][] = [["pools", "resources", "median ms", "min ms", "max ms", "runs"]];
  let fiftyMedian = Number.NaN;
  for (const pools of POOL_COUNTS) {
    const times: number[] = [];
    let resources = 0;
    for (let run = 0; run < runs; run++) {
      const result = await measure(`b${pools}r${run}`, pools);
      times.push(result.ms);
      resources = result.resources;
    }
    if (pools === 50) {
      fiftyMedian = median(times);
    }
    rows.push([
      String(pools),
      String(resources),
      median(times).toFixed(1),
      Math.min(...times).toFixed(1),
      Math.max(...times).toFixed(1),
      String(runs),
    ]);
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  console.log(
    `VNodeRuntime construct + register under mocks (node ${process.version}, ${os.cpus().length} CPUs)`,
  );
  for (const row of rows) {
    console.log(row.map((cell, column) => cell.padStart(widths[column])).join("  "));
  }
  // Drain the RPC queue (the last components' registerOutputs) before exiting.
  await pulumi.runtime.disconnect();
  const met = fiftyMedian < TARGET_MS;
  console.log(
    `target: 50 pools < ${TARGET_MS} ms: ${met ? "met" : "MISSED"} (median ${fiftyMedian.toFixed(1)} ms)`,
  );
  return met ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`bench-component: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
