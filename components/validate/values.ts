/** Shape checks shared by every subject: objects and their fields, enums, booleans, integers. */
import * as pulumi from "@pulumi/pulumi";
import { fail, mustBe, show } from "./errors";

export function checkObject(
  argument: string,
  value: unknown,
  fields: string[],
): Record<string, unknown> {
  if (!isObject(value)) {
    mustBe(argument, `an object with fields ${fields.join(", ")}`, value);
  }
  const record = value as Record<string, unknown>;
  checkFields(argument, record, fields);
  return record;
}

export function checkFields(
  argument: string,
  record: Record<string, unknown>,
  fields: string[],
): void {
  for (const key of Object.keys(record)) {
    if (!fields.includes(key) && record[key] !== undefined) {
      fail(`${argument} has an unknown field ${show(key)}; allowed: ${fields.join(", ")}.`);
    }
  }
}

export function checkEnum(argument: string, value: unknown, allowed: readonly string[]): void {
  if (value !== undefined && !allowed.includes(value as string)) {
    mustBe(argument, `one of ${allowed.join(", ")}`, value);
  }
}

export function checkBoolean(argument: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean") {
    mustBe(argument, "true or false", value);
  }
}

export function checkInteger(argument: string, value: unknown, min: number, max?: number): void {
  if (
    value !== undefined &&
    (typeof value !== "number" ||
      !Number.isInteger(value) ||
      value < min ||
      (max !== undefined && value > max))
  ) {
    mustBe(
      argument,
      max === undefined ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`,
      value,
    );
  }
}

export function isObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An Output or Promise: known at deploy time only, so its content is not checked here. */
export function isInputValue(value: unknown): boolean {
  return pulumi.Output.isInstance(value) || value instanceof Promise;
}
