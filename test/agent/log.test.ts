/** The agent's one logger (agent/src/lib/log.ts): its level from the env, its line shape. */
import { AgentError, ExitCode } from "../../agent/src/lib/errors";
import { logLevelOf } from "../../agent/src/lib/log";
import { captureLogger } from "../support/logCapture";

test.each([
  [{}, "info"],
  [{ VNODE_AGENT_LOG_LEVEL: "" }, "info"],
  [{ VNODE_AGENT_LOG_LEVEL: "debug" }, "debug"],
  [{ VNODE_AGENT_LOG_LEVEL: "silent" }, "silent"],
])("level from %j: %s", (env, level) => {
  expect(logLevelOf(env)).toBe(level);
});

test("a level pino does not know is bad input naming the variable", () => {
  let err: unknown;
  try {
    logLevelOf({ VNODE_AGENT_LOG_LEVEL: "verbose" });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AgentError);
  expect([(err as AgentError).exitCode, (err as AgentError).message]).toEqual([
    ExitCode.BadInput,
    'VNODE_AGENT_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent; got "verbose".',
  ]);
});

test("one JSON object per line, naming the node, with the caller's fields", () => {
  const { lines, logger } = captureLogger();
  logger.warn({ phase: "repair", reason: "drift" }, "drift detected");
  expect(lines).toHaveLength(1);
  // base { node } replaces pino's pid and hostname: the node is what an operator searches by.
  const { time, ...rest } = lines[0].obj;
  expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect([lines[0].level, rest]).toEqual([
    "warn",
    { level: "warn", node: "test-node", phase: "repair", reason: "drift", msg: "drift detected" },
  ]);
});
