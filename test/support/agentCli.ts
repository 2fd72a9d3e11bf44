/**
 * The agent's real commander program (agent/src/cli/main.ts `buildProgram`), with each command's
 * action swapped for one that records the parsed options: what a command line means to the agent,
 * without running it. Errors (bad flags) reject as they do in the CLI, nothing is printed.
 */
import { CommanderError } from "commander";
import { buildProgram } from "../../agent/src/cli/main";

export interface Parsed {
  command: string;
  options: Record<string, unknown>;
}

export async function parseAgentArgv(argv: readonly string[]): Promise<Parsed> {
  const program = buildProgram();
  let parsed: Parsed | undefined;
  for (const cmd of [program, ...program.commands]) {
    cmd.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  }
  for (const cmd of program.commands) {
    cmd.action((options: Record<string, unknown>) => {
      parsed = { command: cmd.name(), options };
    });
  }
  await program.parseAsync([...argv], { from: "user" });
  if (parsed === undefined) throw new Error(`no command ran for ${JSON.stringify(argv)}`);
  return parsed;
}

/** The error a command line gets from the agent's parser, as `[kind, message]`. */
export async function agentArgvError(argv: readonly string[]): Promise<[string, string]> {
  try {
    await parseAgentArgv(argv);
  } catch (err) {
    const kind = err instanceof CommanderError ? "commander" : (err as Error).name;
    return [kind, (err as Error).message];
  }
  throw new Error(`the agent accepted ${JSON.stringify(argv)}`);
}
