import pino from "pino";

/**
 * Structured logs: one JSON object per line on stderr (stdout carries command output such as
 * `plan` diffs and `--json` documents). Every line names the node; callers add `phase`,
 * `durationMs` and, on failure, `reason`.
 */
export function createLogger(node: string, level = process.env.VNODE_AGENT_LOG_LEVEL ?? "info") {
  return pino(
    { level, base: { node }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 2, sync: true }),
  );
}
export type Logger = ReturnType<typeof createLogger>;
