/**
 * `npm run bench:image`: builds agent/Dockerfile with buildah and measures
 *   - image size (and what the agent adds on top of its base image),
 *   - cold build time (no layer cache; npm ci hits the registry),
 *   - warm rebuild after a source change (layer cache; only the bundle step reruns),
 *   - agent cold start inside the container (podman run wall time, and the agent process alone).
 * Targets (issue 5): image <= 180 MiB, warm rebuild after a source change <= 30 s.
 *
 * The base images are the local stand-ins from test/support/images.ts (no registry here), so the
 * size is node + this machine's libraries + the agent; the agent's own share is printed apart.
 * The build runs on a copy of the build context, so the "source change" never touches the repo.
 * Needs root, buildah, podman, runc (like test/image). Exits 1 when a target is missed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  type Store,
  REPO_ROOT,
  buildAgentImage,
  check,
  defaultStore,
  ensureNodeBaseImage,
  ensurePayloadImage,
  imageToolsUnavailable,
  inspectImage,
  podman,
  runImage,
} from "../test/support/images";
import { median } from "./stats";

const MIB = 1024 * 1024;
const RUNS = 10;
const TAG = `localhost/vnode-bench/agent:${process.pid}`;

/** The files agent/Dockerfile reads (see /.dockerignore), copied so a bench edit stays private. */
function copyContext(dest: string): void {
  for (const f of [
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    ".dockerignore",
    "components/contract.ts",
  ]) {
    fs.mkdirSync(path.dirname(path.join(dest, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, f), path.join(dest, f));
  }
  const skip = new Set(["node_modules", "dist"].map((d) => path.join(REPO_ROOT, "agent", d)));
  for (const dir of ["agent", "components/enforcement"]) {
    fs.cpSync(path.join(REPO_ROOT, dir), path.join(dest, dir), {
      recursive: true,
      filter: (src) => !skip.has(src),
    });
  }
}

/** Times `vnode-agent --version` inside the container, the container runtime excluded. */
const IN_CONTAINER = `
const { execFileSync } = require("node:child_process");
const time = (file, args) => {
  const t = process.hrtime.bigint();
  execFileSync(file, args);
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const agent = [], bare = [];
for (let i = 0; i < ${RUNS}; i++) {
  agent.push(time("vnode-agent", ["--version"]));
  bare.push(time(process.execPath, ["-e", "0"]));
}
console.log(JSON.stringify({ agent, bare }));
`;

async function coldStart(
  store: Store,
  image: string,
): Promise<{ podmanRun: number; agent: number; bare: number }> {
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++)
    runs.push(check("podman run", await runImage(store, image, ["--version"])).seconds);
  const r = check(
    "in-container timing",
    await runImage(store, image, ["-e", IN_CONTAINER], { entrypoint: "node" }),
  );
  const t = JSON.parse(r.stdout) as { agent: number[]; bare: number[] };
  return { podmanRun: median(runs) * 1000, agent: median(t.agent), bare: median(t.bare) };
}

interface Row {
  metric: string;
  value: string;
  target?: string;
  ok?: boolean;
}

function printTable(rows: Row[]): void {
  const cells = rows.map((r) => [
    r.metric,
    r.value,
    r.target ?? "",
    r.ok === undefined ? "" : r.ok ? "ok" : "MISSED",
  ]);
  const head = ["metric", "value", "target", ""];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => x.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  console.log([line(head), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n"));
}

async function main(): Promise<void> {
  const problem = imageToolsUnavailable();
  if (problem) throw new Error(`bench:image cannot run here: ${problem}.`);
  const store = defaultStore();
  const context = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-bench-image-"));
  try {
    const t0 = process.hrtime.bigint();
    const base = await ensureNodeBaseImage(store);
    const baseSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    copyContext(context);
    // The stand-in vNode image (a multi-call script and its role links) as VNODE_IMAGE.
    const vnode = await ensurePayloadImage(store);
    const buildArgs = { BUILD_IMAGE: base, BASE_IMAGE: base, VNODE_IMAGE: vnode.ref };
    console.error("cold build (no layer cache)...");
    const cold = await buildAgentImage(store, { tag: TAG, buildArgs, context, noCache: true });
    // buildah keeps no cache from a --no-cache build: seed the layer cache with a normal build.
    await buildAgentImage(store, { tag: TAG, buildArgs, context });
    const mainTs = path.join(context, "agent", "src", "cli", "main.ts");
    fs.appendFileSync(mainTs, `\n// bench:image source change ${new Date().toISOString()}\n`);
    console.error("warm rebuild after a source change...");
    const warm = await buildAgentImage(store, { tag: TAG, buildArgs, context });
    const bundleOnly = /RUN npm ci [^\n]*\n--> Using cache/.test(warm.stdout);
    console.error("warm rebuild, nothing changed...");
    const noop = await buildAgentImage(store, { tag: TAG, buildArgs, context });
    const [img, baseImg] = [await inspectImage(store, TAG), await inspectImage(store, base)];
    console.error(`cold start (${RUNS} runs)...`);
    const start = await coldStart(store, TAG);

    printTable([
      {
        metric: "image size",
        value: `${(img.Size / MIB).toFixed(1)} MiB`,
        target: "<= 180 MiB",
        ok: img.Size <= 180 * MIB,
      },
      {
        metric: "  of which base (local node stand-in)",
        value: `${(baseImg.Size / MIB).toFixed(1)} MiB`,
      },
      {
        metric: "  of which agent bundle + payload",
        value: `${((img.Size - baseImg.Size) / MIB).toFixed(2)} MiB`,
      },
      { metric: "base image (cached or built)", value: `${baseSeconds.toFixed(1)} s` },
      { metric: "cold build, no layer cache", value: `${cold.seconds.toFixed(1)} s` },
      {
        metric: `warm rebuild after a source change${bundleOnly ? "" : " (npm ci NOT cached)"}`,
        value: `${warm.seconds.toFixed(1)} s`,
        target: "<= 30 s",
        ok: warm.seconds <= 30 && bundleOnly,
      },
      { metric: "warm rebuild, no change", value: `${noop.seconds.toFixed(1)} s` },
      {
        metric: `podman run --version, median of ${RUNS}`,
        value: `${start.podmanRun.toFixed(0)} ms`,
      },
      { metric: `agent --version in container, median`, value: `${start.agent.toFixed(0)} ms` },
      { metric: `  node -e 0 in container, median`, value: `${start.bare.toFixed(0)} ms` },
    ]);
    console.log(`(${store.driver} storage, ${os.cpus().length} cores, node ${process.version})`);
    if (img.Size > 180 * MIB || warm.seconds > 30 || !bundleOnly) process.exitCode = 1;
  } finally {
    // Untag, never rmi: removing an image also removes its untagged parents, i.e. the cache.
    await podman(store, ["untag", TAG]);
    fs.rmSync(context, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
