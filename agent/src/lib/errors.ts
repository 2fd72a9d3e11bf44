/** Exit codes of `vnode-agent`, part of its CLI contract. */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  BadInput: 2,
  PreflightFailed: 3,
  VerificationFailed: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error the CLI reports as one sentence and maps to an exit code. Anything else that
 * escapes is a bug and exits 1 with its stack in the log.
 */
export class AgentError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = "AgentError";
  }
}

export const badInput = (message: string) => new AgentError(message, ExitCode.BadInput);

/**
 * The message of anything thrown: an Error's message, else the value as text. Duck-typed, since
 * an error from another realm (a vm context, jest's sandbox) is not `instanceof Error`.
 */
export function messageOf(err: unknown): string {
  const message = (err as { message?: unknown } | null | undefined)?.message;
  return typeof message === "string" ? message : String(err);
}
