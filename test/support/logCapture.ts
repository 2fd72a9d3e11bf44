/**
 * The agent's real logger (pino, agent/src/lib/log.ts) writing into memory: each JSON line
 * parsed back into its level, message and fields.
 */
import { createLogger, type Logger } from "../../agent/src/lib/log";

export interface LogLine {
  level: string;
  msg: string;
  obj: Record<string, unknown>;
}

export function captureLogger(): { lines: LogLine[]; logger: Logger } {
  const lines: LogLine[] = [];
  const logger = createLogger("test-node", "debug", {
    write: (line: string) => {
      const obj = JSON.parse(line) as Record<string, unknown> & { level: string; msg: string };
      lines.push({ level: obj.level, msg: obj.msg, obj });
    },
  });
  return { lines, logger };
}
