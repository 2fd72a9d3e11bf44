/**
 * The agent's one logger: pino, one JSON object per line on stderr (stdout carries command output
 * such as `plan` diffs and `--json` documents). Every line names the node; callers add `phase`,
 * `durationMs` and, on failure, `reason`. Modules that log take a `Logger` (the daemon's, the
 * CLI's); code that runs without one uses `defaultLogger()`.
 */
import * as os from "node:os";
import pino from "pino";
import { NODE_NAME_ENV } from "vnode-contract";
import { badInput } from "./errors";

/** The env var that sets the log level (pino's levels, or `silent`). */
export const LOG_LEVEL_ENV = "VNODE_AGENT_LOG_LEVEL";

/** `VNODE_AGENT_LOG_LEVEL`, checked: pino would throw a bare "unknown level" at the first log. */
export function logLevelOf(env: Readonly<Record<string, string | undefined>>): string {
  const value = env[LOG_LEVEL_ENV];
  if (value === undefined || value === "") return "info";
  const allowed = [...Object.keys(pino.levels.values), "silent"];
  if (!allowed.includes(value)) {
    throw badInput(
      `${LOG_LEVEL_ENV} must be one of ${allowed.join(", ")}; got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

/** `destination` is stderr unless a test collects the lines. */
export function createLogger(
  node: string,
  level = logLevelOf(process.env),
  destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true }),
) {
  return pino(
    {
      level,
      base: { node },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "warn", not 40: log pipelines and people read the level by name.
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
export type Logger = ReturnType<typeof createLogger>;

let fallback: Logger | undefined;

/** The logger of code called without one: the node from the downward API, else the host name. */
export function defaultLogger(): Logger {
  return (fallback ??= createLogger(process.env[NODE_NAME_ENV] ?? os.hostname()));
}
