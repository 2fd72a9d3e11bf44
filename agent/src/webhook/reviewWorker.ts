/**
 * The server's side of the review thread (reviewThread.ts): hands it a large body, gets the
 * answer back. The thread has its own heap with its own limits, so a body that makes it run out
 * of memory ends that thread (the review gets a 500, which a `Fail` policy denies), never the
 * server; the next large body starts a new one. A review that gets no answer in time is treated
 * the same way.
 */
import { join } from "node:path";
import { type ResourceLimits, Worker } from "node:worker_threads";
import type { EnforcementRules, NamespaceGuard } from "vnode-contract";
import { internalError, type ReviewAnswer } from "./review";
import type { WebhookLog } from "./server";

export interface ReviewThreadData {
  rules: EnforcementRules;
  guard: NamespaceGuard | undefined;
  /** The thread's nice value (the event loop keeps the process's). */
  nice: number;
}
export interface ReviewJob {
  id: number;
  path: string;
  body: Uint8Array;
}
export interface ReviewDone {
  id: number;
  answer: ReviewAnswer;
}
export interface ReviewThreadReady {
  ready: true;
  /** The nice value the thread runs at, or why it is unchanged. */
  nice: number | string;
  /** Whether it collects its garbage after each review (the process runs with --expose-gc). */
  collects: boolean;
}

export const REVIEW_THREAD_DEFAULTS = {
  /** Weight 110 against the event loop's 1024 (nice 0): the event loop gets ~90% of a contended core. */
  nice: 10,
  /**
   * Longer than the API server waits for an answer (the webhook's timeoutSeconds: 5 s by default,
   * 30 s at most), for a review that takes ~25 ms: a thread silent this long is stuck.
   */
  timeoutMs: 10_000,
  /**
   * The thread's heap. The shape limits (intake.ts) bound what one body parses into: a 2.5 MiB
   * review of ~98,000 values (a 49,000-entry annotation map) took 5.7 MiB of heap parsed and
   * judged. The process's own heap is capped by NODE_OPTIONS.
   */
  resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 },
} as const;

/** Its file: next to the bundle in the image, or the TypeScript source under tsx (tests). */
export const REVIEW_THREAD_FILE = "webhook-review-thread.js";
const entry = __filename.endsWith(".ts")
  ? { file: join(__dirname, "reviewThread.ts"), execArgv: ["--import", "tsx"] }
  : { file: join(__dirname, REVIEW_THREAD_FILE), execArgv: [] };

interface Pending {
  path: string;
  resolve: (answer: ReviewAnswer) => void;
  timer: NodeJS.Timeout;
}

export class ReviewWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  private readonly timeoutMs: number;
  private readonly resourceLimits: ResourceLimits;

  constructor(
    private readonly data: ReviewThreadData,
    private readonly log: WebhookLog,
    limits: { timeoutMs?: number; resourceLimits?: ResourceLimits } = {},
  ) {
    this.timeoutMs = limits.timeoutMs ?? REVIEW_THREAD_DEFAULTS.timeoutMs;
    this.resourceLimits = limits.resourceLimits ?? REVIEW_THREAD_DEFAULTS.resourceLimits;
    // Started now, so the first large review does not wait for a thread to boot.
    this.start();
  }

  /** Judges `body` on `path` in the thread; never rejects (a dead thread answers 500). */
  answer(path: string, body: Buffer): Promise<ReviewAnswer> {
    if (this.closed) return Promise.resolve(internalError(new Error("server closing"), path));
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(
        () =>
          void this.fail(worker, new Error(`review thread gave no answer in ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.pending.set(id, { path, resolve, timer });
      // A body that owns its whole ArrayBuffer (Buffer.concat's result) moves without a copy.
      const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
      const job: ReviewJob = { id, path, body };
      worker.postMessage(job, owned ? [body.buffer as ArrayBuffer] : []);
    });
  }

  close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (worker === undefined) return Promise.resolve();
    return this.fail(worker, new Error("server closing"));
  }

  private start(): Worker {
    const worker = new Worker(entry.file, {
      workerData: this.data,
      execArgv: entry.execArgv,
      resourceLimits: this.resourceLimits,
    });
    // The listening server keeps the process alive; an idle thread must not.
    worker.unref();
    worker.on("message", (m: ReviewDone | ReviewThreadReady) => {
      if ("ready" in m) {
        return this.log.info({ nice: m.nice, collects: m.collects }, "review thread started");
      }
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      clearTimeout(p.timer);
      this.pending.delete(m.id);
      p.resolve(m.answer);
    });
    // ERR_WORKER_OUT_OF_MEMORY comes as an error, then an exit.
    worker.on("error", (err) => void this.fail(worker, err));
    worker.on(
      "exit",
      (code) => void this.fail(worker, new Error(`review thread exited with code ${code}`)),
    );
    this.worker = worker;
    return worker;
  }

  /** Ends `worker` (if still the current one) and answers its reviews with a 500. */
  private async fail(worker: Worker, err: Error): Promise<void> {
    if (this.worker !== worker) return;
    this.worker = undefined;
    if (!this.closed) this.log.warn({ reason: err.message }, "review thread ended");
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(internalError(err, p.path));
    }
    this.pending.clear();
    await worker.terminate();
  }
}
