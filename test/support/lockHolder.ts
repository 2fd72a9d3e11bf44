/**
 * A child process that takes the host lock: `node --import tsx lockHolder.ts HOST_ROOT LOG ID
 * HOLD_MS`. While holding it appends `start ID` and, HOLD_MS later, `end ID` to LOG, so a test
 * can see whether two holders overlapped. HOLD_MS `forever` holds until killed and prints
 * `acquired` on stdout once it holds the lock; `until:FILE` holds until FILE exists.
 */
import * as fs from "node:fs";
import { withHostLock } from "../../agent/src/host/lock";

async function main(): Promise<void> {
  const [hostRoot, log, id, hold] = process.argv.slice(2);
  await withHostLock(
    hostRoot,
    async () => {
      fs.appendFileSync(log, `start ${id}\n`);
      if (hold === "forever") {
        process.stdout.write("acquired\n");
        await new Promise(() => setInterval(() => undefined, 1000));
      }
      if (hold.startsWith("until:")) {
        while (!fs.existsSync(hold.slice("until:".length)))
          await new Promise((r) => setTimeout(r, 20));
      } else {
        await new Promise((resolve) => setTimeout(resolve, Number(hold)));
      }
      fs.appendFileSync(log, `end ${id}\n`);
    },
    { timeoutMs: 20000, pollMs: 10 },
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
