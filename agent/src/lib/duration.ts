/**
 * Durations on the command line (`--interval 30s`, `--restart-window 10m`), in the shape
 * Kubernetes users know from Go: one or more `<number><unit>` parts, unit ms, s, m or h.
 */
import { formatDuration } from "vnode-contract";
import { badInput } from "./errors";

/** The inverse of parseDuration, from the contract (the component writes durations with it). */
export { formatDuration };

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/**
 * Parses `value` into milliseconds; `flag` names the input in the error. `min` (ms, inclusive)
 * rejects values a loop cannot sensibly use, such as a zero interval.
 */
export function parseDuration(flag: string, value: string, min = 0): number {
  const fail = (why: string) =>
    badInput(
      `${flag} must be a duration such as 500ms, 30s, 10m, 1h or 1m30s; got ${JSON.stringify(value)} (${why}).`,
    );
  const text = value.trim();
  if (text === "") throw fail("empty");
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const m = PART.exec(text);
    if (!m) throw fail(`cannot read ${JSON.stringify(text.slice(at))}`);
    ms += Number(m[1]) * UNIT_MS[m[2]];
  }
  ms = Math.round(ms);
  if (ms < min) throw fail(`at least ${formatDuration(min)}`);
  return ms;
}
