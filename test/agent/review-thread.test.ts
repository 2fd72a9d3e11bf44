/**
 * The webhook's review thread (agent/src/webhook/reviewThread.ts, driven by reviewWorker.ts): a
 * real worker thread running the TypeScript source under tsx, as the server starts it in tests
 * (the image runs the bundled dist/webhook-review-thread.js; the bench and the image test run
 * that one).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { enforcementRules } from "vnode-contract";
import { ENFORCEMENT_DEFAULTS } from "../../components/enforcement/plan";
import { compilePolicy } from "../../agent/src/webhook/policy";
import { answerReview, type ReviewAnswer, routesOf } from "../../agent/src/webhook/review";
import { REVIEW_THREAD_DEFAULTS, ReviewWorker } from "../../agent/src/webhook/reviewWorker";
import type { WebhookLog } from "../../agent/src/webhook/server";
import { admissionReview, CASES, RULES } from "../support/admissionCases";
import { postReview } from "../support/postReview";
import { makeCa, opensslUnavailable, secretDir } from "../support/tlsCerts";

const CLI = path.resolve(__dirname, "../../agent/dist/vnode-agent.js");

const rules = enforcementRules(RULES);

/** A log that keeps what it was given, to wait for and check the thread's own reports. */
function recordingLog() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  const log: WebhookLog = { info: at("info"), warn: at("warn"), debug: at("debug") };
  const waitFor = async (msg: string, count = 1) => {
    for (let i = 0; i < 200 && lines.filter((l) => l.msg === msg).length < count; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    return lines.filter((l) => l.msg === msg);
  };
  return { log, lines, waitFor };
}

/** A review of the first case carrying `bytes` of padding in an annotation. */
function bigReview(bytes: number): Buffer {
  const r = admissionReview(CASES[0]) as {
    request: { object: { metadata: { annotations?: Record<string, string> } } };
  };
  r.request.object.metadata.annotations = { padding: "x".repeat(bytes) };
  return Buffer.from(JSON.stringify(r));
}

describe("review thread", () => {
  const workers: ReviewWorker[] = [];
  const start = (...args: ConstructorParameters<typeof ReviewWorker>) => {
    const w = new ReviewWorker(...args);
    workers.push(w);
    return w;
  };
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()));
  });

  test("answers every shared admission case on every route exactly as the event loop does", async () => {
    const worker = start({ rules, guard: undefined, nice: 10 }, recordingLog().log);
    const policy = compilePolicy(rules);
    const routes = [...routesOf(rules, undefined)].filter(([, r]) => r.kind !== "health");
    let compared = 0;
    for (const c of CASES.filter((x) => x.rules === undefined)) {
      const body = Buffer.from(JSON.stringify(admissionReview(c)));
      for (const [path, route] of routes) {
        if (route.kind === "health") continue;
        const local = answerReview(route, body, policy, path);
        // The thread gets a copy: the worker may move (detach) the buffer it is handed.
        expect(await worker.answer(path, Buffer.from(body))).toEqual(local);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(100);
  });

  test("bad bodies get the same 400 as on the event loop, and the thread goes on", async () => {
    const worker = start({ rules, guard: undefined, nice: 10 }, recordingLog().log);
    const a = await worker.answer("/validate", Buffer.from("{not json"));
    expect(a.status).toBe(400);
    expect(a.body).toMatch(/^malformed JSON body: /);
    const b = await worker.answer("/validate", Buffer.from(JSON.stringify({ kind: "Pod" })));
    expect(b.status).toBe(400);
    expect((await worker.answer("/validate", bigReview(200_000))).status).toBe(200);
  });

  test("runs at nice 10 (Linux keeps nice per thread) while the process's other threads keep theirs", async () => {
    const { log, waitFor } = recordingLog();
    const niceOf = (tid: string) => {
      try {
        const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      } catch {
        return NaN; // the thread ended meanwhile
      }
    };
    const before = new Set(fs.readdirSync("/proc/self/task"));
    start({ rules, guard: undefined, nice: REVIEW_THREAD_DEFAULTS.nice }, log);
    const [ready] = await waitFor("review thread started");
    expect(ready.obj.nice).toBe(10);
    const added = fs.readdirSync("/proc/self/task").filter((t) => !before.has(t));
    expect(added.map(niceOf)).toContain(10);
    expect(niceOf(String(process.pid))).toBe(0);
  });

  test("a body that exhausts the thread's heap gets a 500 (denied under Fail), and the next large body gets a new thread", async () => {
    const { log, waitFor } = recordingLog();
    // 300,000 strings of 200 bytes: the server's body limit never lets such a body through, so it
    // is handed to the thread directly. Parsed, they need ~70 MiB of a heap of at most 24 MiB. (A
    // heap too small for the thread to boot at all is fatal to the whole process in V8, so the
    // limits must stay well above what a bare thread needs: REVIEW_THREAD_DEFAULTS.)
    const limits = { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 };
    // The answer must come from the out-of-memory exit, not the timeout, however loaded the machine.
    const worker = start({ rules, guard: undefined, nice: 10 }, log, {
      resourceLimits: limits,
      timeoutMs: 120_000,
    });
    const huge = Buffer.from(
      `[${Array.from({ length: 300_000 }, (_, i) => `"${String(i).padEnd(200, "x")}"`).join(",")}]`,
    );
    const answer: ReviewAnswer = await worker.answer("/validate", huge);
    expect(answer.status).toBe(500);
    expect(answer.body).toMatch(/^internal error: .*out of memory/i);
    expect((await waitFor("review thread ended"))[0].level).toBe("warn");
    // A fresh thread with the same limits answers the next review.
    const next = await worker.answer("/validate", bigReview(100_000));
    expect(next.status).toBe(200);
    expect(await waitFor("review thread started", 2)).toHaveLength(2);
  }, 150_000);

  test("a review with no answer in time gets a 500 and the stuck thread is replaced", async () => {
    const { log, waitFor } = recordingLog();
    const worker = start({ rules, guard: undefined, nice: 10 }, log, { timeoutMs: 1 });
    // Parsing 3 MiB takes far longer than 1 ms.
    const answer = await worker.answer("/validate", bigReview(3 * 1024 * 1024));
    expect(answer).toMatchObject({
      status: 500,
      body: "internal error: review thread gave no answer in 1 ms",
    });
    expect((await waitFor("review thread ended"))[0].obj.reason).toBe(
      "review thread gave no answer in 1 ms",
    );
  });

  test("after close, reviews get a 500 instead of waiting forever", async () => {
    const worker = start({ rules, guard: undefined, nice: 10 }, recordingLog().log);
    await worker.close();
    expect(await worker.answer("/validate", bigReview(10))).toMatchObject({ status: 500 });
  });
});

const noOpenssl = opensslUnavailable();
if (noOpenssl && process.env.CI === "true") {
  throw new Error(`review-thread test needs openssl: ${noOpenssl}`);
}

(noOpenssl ? describe.skip : describe)(
  "the bundled webhook (npm run build), as the Deployment runs it",
  () => {
    test("finds its review thread next to the bundle, runs it at nice 10 with --expose-gc, and answers a large review from it", async () => {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-review-thread-"));
      const ca = makeCa(path.join(work, "ca"));
      const secret = secretDir(path.join(work, "tls"), ca.issue("vnode-webhook"));
      const child = spawn(
        process.execPath,
        [CLI, "webhook", "--listen", "127.0.0.1:0", "--tls-cert-file", secret.certFile]
          .concat(["--tls-key-file", secret.keyFile, "--class", "per-namespace=vnode"])
          .concat(["--class", "per-pod=vnode-per-pod"]),
        {
          stdio: ["ignore", "ignore", "pipe"],
          env: {
            PATH: process.env.PATH ?? "",
            NODE_OPTIONS: ENFORCEMENT_DEFAULTS.webhookNodeOptions,
          },
        },
      );
      try {
        let stderr = "";
        child.stderr.setEncoding("utf8");
        const logged = (msg: string) =>
          new Promise<Record<string, unknown>>((resolve, reject) => {
            const look = () => {
              const line = stderr.split("\n").find((l) => l.includes(`"msg":"${msg}"`));
              if (line) return resolve(JSON.parse(line) as Record<string, unknown>);
              if (child.exitCode !== null) reject(new Error(`webhook exited: ${stderr}`));
            };
            child.stderr.on("data", (d: string) => {
              stderr += d;
              look();
            });
            look();
          });
        const listening = await logged("webhook listening");
        expect(await logged("review thread started")).toMatchObject({ nice: 10, collects: true });
        const body = bigReview(1024 * 1024);
        const answer = await postReview(
          listening.port as number,
          ca.certPem,
          "/validate/per-namespace",
          body,
        );
        expect(answer.status).toBe(200);
        const local = answerReview(
          { kind: "validate", scope: { kind: "mode", mode: "per-namespace" } },
          body,
          compilePolicy(
            enforcementRules({ classes: { "per-namespace": "vnode", "per-pod": "vnode-per-pod" } }),
          ),
          "/validate/per-namespace",
        );
        expect(JSON.parse(answer.body)).toEqual(JSON.parse(local.body));
        expect(stderr).not.toContain("review thread ended");
      } finally {
        child.kill("SIGKILL");
        fs.rmSync(work, { recursive: true, force: true });
      }
    }, 30_000);
  },
);
