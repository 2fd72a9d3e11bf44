/**
 * The review thread of `vnode-agent webhook` (its own bundle, dist/webhook-review-thread.js): it
 * parses and judges the bodies too large for the event loop (reviewWorker.ts says which). A 3 MiB
 * review takes ~25 ms to `JSON.parse`; on the event loop every small review queued behind it would
 * wait that long. Here it runs at a lower CPU priority than the event loop, so when both want the
 * core, the scheduler gives it to the event loop's small reviews first.
 */
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { compilePolicy } from "./policy";
import { answerReview, internalError, routesOf } from "./review";
import type { ReviewDone, ReviewJob, ReviewThreadData, ReviewThreadReady } from "./reviewWorker";

const data = workerData as ReviewThreadData;
const port = parentPort;
if (port === null) throw new Error("reviewThread.ts runs as a worker thread only.");

const routes = routesOf(data.rules, data.guard);
const policy = compilePolicy(data.rules);
/**
 * Node decodes a text over ~1 MiB outside the V8 heap (an external string), and V8 collects
 * external memory only once ~64 MiB of it has piled up (its external allocation soft limit), well
 * past this thread's heap limit: 16 large reviews in a row would hold ~50 MiB of dead bodies.
 * Collecting after each one keeps one body's garbage at a time; it runs on this thread (and V8's
 * GC helpers), not on the event loop. `gc` is there when the process runs with `--expose-gc` (the
 * Deployment's NODE_OPTIONS).
 */
const collect = (globalThis as { gc?: () => void }).gc;

// Linux keeps the nice value per thread, and `setPriority(0, …)` is setpriority(2) on the calling
// thread: this lowers this thread only. Raising one's own nice value needs no privilege.
let nice: number | string = data.nice;
try {
  setPriority(0, data.nice);
} catch (err) {
  nice = `unchanged (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
}
port.postMessage({
  ready: true,
  nice,
  collects: collect !== undefined,
} satisfies ReviewThreadReady);

port.on("message", ({ id, path, body }: ReviewJob) => {
  const route = routes.get(path);
  const answer =
    route === undefined || route.kind === "health"
      ? internalError(new Error(`no review route ${path}`), path)
      : answerReview(route, body, policy, path);
  port.postMessage({ id, answer } satisfies ReviewDone);
  collect?.();
});
