/**
 * The agent's one logger: pino, one JSON object per line on stderr (stdout carries command output
 * such as `plan` diffs and `--json` documents). Every line names the node; callers add `phase`,
 * `durationMs` and, on failure, `reason`. Modules that log take a `Logger` (the daemon's, the
 * CLI's); code that runs without one uses `defaultLogger()`.
 */
import * as os from "node:os";
import pino from "pino";
import { NODE_NAME_ENV } from "vnode-contract";

/** `destination` is stderr unless a test collects the lines. */
export function createLogger(
  node: string,
  level = process.env.VNODE_AGENT_LOG_LEVEL ?? "info",
  destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true }),
) {
  return pino({ level, base: { node }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
export type Logger = ReturnType<typeof createLogger>;

let fallback: Logger | undefined;

/** The logger of code called without one: the node from the downward API, else the host name. */
export function defaultLogger(): Logger {
  return (fallback ??= createLogger(process.env[NODE_NAME_ENV] ?? os.hostname()));
}
