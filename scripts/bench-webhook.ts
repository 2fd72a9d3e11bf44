/**
 * `npm run bench:webhook`: AdmissionReviews per second and latency percentiles of
 * `vnode-agent webhook` (the esbuild bundle, as in the image) over keep-alive HTTPS on loopback.
 * The server is pinned to CPU 0 with taskset, this load generator to CPU 1, so the numbers are
 * one core's worth of server. Each run is bounded in requests and in time.
 *
 * The request mix is what the API server sends for tenant pods made by a ReplicaSet (reviews of
 * 2.3 to 2.8 KB JSON), a quarter each of: mutate a pod without class (JSONPatch answer), mutate
 * a pod that has one (no patch), validate an allowed vNode pod, validate a pod with a hostPort
 * (denied, and logged at info as in production).
 *
 * Targets (issue 6): >= 2,000 reviews/s and p99 <= 5 ms. Needs openssl; run `npm run build` first
 * (the npm script does). Env: BENCH_REQUESTS (per run, default 20000), BENCH_SECONDS (per run,
 * default 10), BENCH_CONCURRENCY (comma list, default 1,4,16).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { admissionReview, CASES } from "../test/support/admissionCases";
import { makeCa, opensslUnavailable, secretDir } from "../test/support/tlsCerts";

const CLI = path.resolve(__dirname, "../agent/dist/vnode-agent.js");
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? "1,4,16").split(",").map(Number);
const TARGET_RPS = 2000;
const TARGET_P99_MS = 5;

const caseNamed = (prefix: string) => {
  const c = CASES.find((x) => x.name.startsWith(prefix));
  if (!c) throw new Error(`no case ${prefix}`);
  return c;
};
const MIX: { path: string; body: Buffer }[] = [
  { path: "/mutate/per-namespace", c: caseNamed("no class, namespace without") },
  { path: "/mutate/per-namespace", c: caseNamed("vNode class with plain") },
  { path: "/validate", c: caseNamed("vNode class with plain") },
  { path: "/validate", c: caseNamed("vNode class with a hostPort") },
].map(({ path: p, c }) => ({ path: p, body: Buffer.from(JSON.stringify(admissionReview(c))) }));

/** CPU time (user + system, ms) of a process so far, from /proc. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

function pin(cpu: number, pid: number): boolean {
  return spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)]).status === 0;
}

const percentile = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

interface RunResult {
  concurrency: number;
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  serverCpu: number;
}

async function runLoad(
  url: string,
  ca: string,
  concurrency: number,
  maxRequests: number,
  maxSeconds: number,
  serverPid: number,
): Promise<RunResult> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency, ca });
  const latencies = new Float64Array(maxRequests);
  let started = 0;
  let done = 0;
  let errors = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(maxSeconds * 1e9));
  const cpu0 = cpuMs(serverPid);

  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const m = MIX[i % MIX.length];
      const start = process.hrtime.bigint();
      const req = https.request(
        `${url}${m.path}`,
        {
          agent,
          method: "POST",
          headers: { "content-type": "application/json", "content-length": m.body.length },
        },
        (res) => {
          res.on("data", () => undefined);
          res.on("end", () => {
            latencies[done++] = Number(process.hrtime.bigint() - start) / 1e6;
            if (res.statusCode !== 200) errors++;
            resolve();
          });
        },
      );
      req.on("error", () => {
        errors++;
        latencies[done++] = Number(process.hrtime.bigint() - start) / 1e6;
        resolve();
      });
      req.end(m.body);
    });

  const worker = async () => {
    while (started < maxRequests && process.hrtime.bigint() < deadline) {
      await one(started++);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const serverCpu = (cpuMs(serverPid) - cpu0) / 1000 / seconds;
  agent.destroy();
  const sorted = latencies.slice(0, done).sort();
  return {
    concurrency,
    requests: done,
    errors,
    seconds,
    rps: done / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1],
    serverCpu,
  };
}

function startServer(
  certFile: string,
  keyFile: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [CLI, "webhook", "--listen", "127.0.0.1:0", "--tls-cert-file", certFile]
      .concat(["--tls-key-file", keyFile, "--class", "per-namespace=vnode"])
      .concat(["--class", "per-pod=vnode-per-pod", "--exclude-namespace", "vnode-runtime"]),
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`webhook did not start:\n${buf}`)), 20_000);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => {
      if (buf.length < 100_000) buf += d;
      const m = buf.match(/"port":(\d+)[^\n]*"msg":"webhook listening"/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on("exit", (code) => reject(new Error(`webhook exited ${code}:\n${buf}`)));
  });
}

async function main(): Promise<void> {
  const why = opensslUnavailable();
  if (why) throw new Error(`bench:webhook needs openssl: ${why}.`);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing; run npm run build first.`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-bench-webhook-"));
  let child: ChildProcess | undefined;
  try {
    const ca = makeCa(path.join(work, "ca"));
    const secret = secretDir(path.join(work, "tls"), ca.issue("vnode-webhook"));
    const server = await startServer(secret.certFile, secret.keyFile);
    child = server.child;
    const pid = child.pid as number;
    const cpus = os.cpus().length;
    const pinned = cpus >= 2 && pin(0, pid) && pin(1, process.pid);
    const url = `https://127.0.0.1:${server.port}`;

    await runLoad(url, ca.certPem, 8, 3000, 10, pid); // warm-up: JIT, TLS sessions
    const results: RunResult[] = [];
    for (const c of CONCURRENCY)
      results.push(await runLoad(url, ca.certPem, c, REQUESTS, SECONDS, pid));
    const rssKiB = Number(
      fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+)/)?.[1] ?? NaN,
    );

    const ok = (r: RunResult) => r.rps >= TARGET_RPS && r.p99 <= TARGET_P99_MS && r.errors === 0;
    console.log(
      `vnode-agent webhook, keep-alive HTTPS on loopback, ${MIX.length}-way mix of ${MIX.map((m) => m.body.length)} B reviews; ` +
        (pinned
          ? "server pinned to CPU 0, load generator to CPU 1"
          : `NOT pinned (${cpus} CPU(s) or taskset failed): numbers include the load generator`),
    );
    const rows = [
      [
        "concurrency",
        "requests",
        "errors",
        "reviews/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU",
        "target",
      ],
      ...results.map((r) => [
        String(r.concurrency),
        String(r.requests),
        String(r.errors),
        r.rps.toFixed(0),
        r.p50.toFixed(2),
        r.p99.toFixed(2),
        r.max.toFixed(2),
        `${(r.serverCpu * 100).toFixed(0)}%`,
        ok(r) ? "met" : "missed",
      ]),
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    for (const row of rows) console.log(row.map((cell, i) => cell.padStart(widths[i])).join("  "));
    console.log(
      `targets: >= ${TARGET_RPS} reviews/s with p99 <= ${TARGET_P99_MS} ms; server peak RSS ${(rssKiB / 1024).toFixed(1)} MiB`,
    );
    if (!results.some(ok)) process.exitCode = 1;
  } finally {
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
