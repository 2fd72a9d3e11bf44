// Loaded into the webhook server by `npm run bench:webhook -- --hostile` (node --require), never
// by the product: measures the server's event-loop delay, i.e. how long a review that has arrived
// waits before the server gets to it. On SIGUSR2 it writes the histogram since the last signal, in
// ms, to the file named by VNODE_BENCH_LOOP_FILE, and starts a new one.
const { monitorEventLoopDelay } = require("node:perf_hooks");
const { renameSync, writeFileSync } = require("node:fs");

const file = process.env.VNODE_BENCH_LOOP_FILE;
if (file) {
  // A 1 ms timer: each sample is the time between its firings, so 1 ms is "no delay".
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  process.on("SIGUSR2", () => {
    const ms = (ns) => ns / 1e6;
    const p99 = ms(histogram.percentile(99));
    writeFileSync(`${file}.tmp`, JSON.stringify({ p99, max: ms(histogram.max) }));
    renameSync(`${file}.tmp`, file);
    histogram.reset();
  });
}
