/**
 * The agent's commander options, built from the contract's flag description (one per flag:
 * name, choices, default), with one parser per kind of value. Commands get typed options
 * (`FlagValues`): numbers, durations in ms, lists and addresses already parsed and checked, so
 * the code behind a command only checks how flags combine. Light on purpose (commander and pure
 * modules only): main.ts imports it eagerly for `--help`.
 */
import { type Command, Option } from "commander";
import {
  type FlagSet,
  type FlagSpec,
  flagName,
  formatDuration,
  formatListen,
} from "vnode-contract";
import { parseListen } from "../daemon/health";
import { parseDuration } from "../lib/duration";
import { badInput } from "../lib/errors";

/** A value with no visible character is never meant: `--handler ""` is a templating accident. */
function nonBlank(flag: string, value: string): string {
  if (value.trim() === "") throw badInput(`${flag} must not be empty.`);
  return value;
}

function parseInteger(flag: string, value: string, min: number): number {
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw badInput(`${flag} must be an integer >= ${min}; got ${JSON.stringify(value)}.`);
  }
  return n;
}

function parseList(flag: string, value: string): string[] {
  const items = value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  if (items.length === 0) throw badInput(`${flag} must list at least one name.`);
  return items;
}

function parseKeyed(
  flag: string,
  spec: Extract<FlagSpec, { kind: "keyed" }>,
  value: string,
  previous: Readonly<Record<string, string>>,
): Record<string, string> {
  const m = value.match(/^([^=]*)=(.+)$/);
  if (!m)
    throw badInput(`${flag} must be ${spec.arg.toUpperCase()}; got ${JSON.stringify(value)}.`);
  const [, key, item] = m;
  if (!spec.keys.includes(key)) {
    throw badInput(
      `${flag} must start with one of ${spec.keys.join(", ")}; got ${JSON.stringify(key)} in ${JSON.stringify(value)}.`,
    );
  }
  if (previous[key] !== undefined) {
    throw badInput(`${flag} ${key} is given twice (${previous[key]} and ${item}); give it once.`);
  }
  return { ...previous, [key]: item };
}

/** The commander option of one described flag. */
export function optionOf(key: string, spec: FlagSpec): Option {
  const flag = flagName(key);
  if (spec.kind === "switch") return new Option(flag, spec.help).default(false);
  const option = new Option(`${flag} <${spec.arg}>`, spec.help);
  switch (spec.kind) {
    case "string":
      option.argParser((v: string) => nonBlank(flag, v));
      if (spec.required) option.makeOptionMandatory();
      return spec.default === undefined ? option : option.default(spec.default);
    case "choice":
      option.choices(spec.choices);
      return spec.default === undefined ? option : option.default(spec.default);
    case "int":
      option.argParser((v: string) => parseInteger(flag, v, spec.min));
      return spec.default === undefined ? option : option.default(spec.default);
    case "duration":
      option.argParser((v: string) => parseDuration(flag, v, spec.minMs));
      return spec.default === undefined
        ? option
        : option.default(spec.default, formatDuration(spec.default));
    case "list":
      return option.argParser((v: string) => parseList(flag, v));
    case "address":
      return option
        .argParser((v: string) => parseListen(v))
        .default({ ...spec.default }, formatListen(spec.default));
    case "repeated":
      return option
        .argParser((v: string, previous: string[]) => [...previous, nonBlank(flag, v)])
        .default([]);
    case "keyed":
      return option
        .argParser((v: string, previous: Record<string, string>) =>
          parseKeyed(flag, spec, v, previous),
        )
        .default({});
  }
}

/**
 * Adds every flag of `flags` to `cmd`, in the description's order. The command's action then
 * receives `FlagValues<typeof flags>`: each option is built from its spec, and each kind's parser
 * returns that kind's type.
 */
export function withFlags(cmd: Command, flags: FlagSet): Command {
  for (const [key, spec] of Object.entries(flags)) cmd.addOption(optionOf(key, spec));
  return cmd;
}
