/**
 * The one way validation reports a problem: a `VNodeRuntimeArgsError` whose message is one
 * sentence naming the argument, the bad value and what is allowed.
 */

/** Thrown for invalid arguments; the message is meant for the user as is. */
export class VNodeRuntimeArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VNodeRuntimeArgsError";
  }
}

/** Throws `message` (a full sentence naming the argument) as a `VNodeRuntimeArgsError`. */
export function fail(message: string): never {
  throw new VNodeRuntimeArgsError(message);
}

/** Throws "`argument` must be `rule`; got `value`.", the shape of most messages. */
export function mustBe(argument: string, rule: string, value: unknown): never {
  return fail(`${argument} must be ${rule}; got ${show(value)}.`);
}

/** A short, quoted rendering of a bad value for an error message. */
export function show(value: unknown): string {
  if (value === undefined) {
    return "nothing";
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
