/** Label and annotation maps, label selectors, and the label keys the component owns. */
import { ISOLATION_MODE_LABEL, RUNTIME_LABEL, isDnsSubdomain } from "vnode-contract";
import { LabelSelectorOperator } from "../args";
import { RESERVED_LABEL_KEYS } from "../labels";
import { fail, mustBe, show } from "./errors";
import { checkEnum, checkObject, isObject } from "./values";

const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function checkNamespaceSelector(argument: string, value: unknown): void {
  if (value === undefined) {
    fail(
      `${argument} is required: the labels of the tenant namespaces, e.g. { matchLabels: { tenant: "true" } }.`,
    );
  }
  const selector = checkObject(argument, value, ["matchLabels", "matchExpressions"]);
  checkLabels(`${argument}.matchLabels`, selector.matchLabels);
  const expressions = selector.matchExpressions;
  if (expressions !== undefined && !Array.isArray(expressions)) {
    fail(
      `${argument}.matchExpressions must be a list of { key, operator, values }; got ${show(expressions)}.`,
    );
  }
  const operators: string[] = Object.values(LabelSelectorOperator);
  ((expressions as unknown[] | undefined) ?? []).forEach((expression, i) => {
    const at = `${argument}.matchExpressions[${i}]`;
    const r = checkObject(at, expression, ["key", "operator", "values"]);
    if (typeof r.key !== "string" || !isLabelKey(r.key)) {
      fail(
        `${at}.key must be a label key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_" and "."); got ${show(r.key)}.`,
      );
    }
    if (r.operator === undefined) {
      fail(`${at}.operator is required: one of ${operators.join(", ")}.`);
    }
    checkEnum(`${at}.operator`, r.operator, operators);
    if (r.values !== undefined && !Array.isArray(r.values)) {
      fail(`${at}.values must be a list of label values; got ${show(r.values)}.`);
    }
    const values = (r.values as unknown[] | undefined) ?? [];
    values.forEach((v, j) => {
      if (typeof v !== "string" || !isLabelValue(v)) {
        fail(
          `${at}.values[${j}] must be a label value (at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit); got ${show(v)}.`,
        );
      }
    });
    const setBased =
      r.operator === LabelSelectorOperator.In || r.operator === LabelSelectorOperator.NotIn;
    if (setBased && values.length === 0) {
      fail(`${at}.values must not be empty with operator ${r.operator as string}.`);
    }
    if (!setBased && values.length > 0) {
      fail(
        `${at}.values must be empty with operator ${r.operator as string}; got ${show(values)}.`,
      );
    }
  });
  const labels = Object.keys((selector.matchLabels as object | undefined) ?? {}).length;
  if (labels === 0 && ((expressions as unknown[] | undefined) ?? []).length === 0) {
    fail(
      `${argument} must name at least one label in matchLabels or matchExpressions: an empty selector would enforce vNode on every namespace but kube-system, kube-node-lease and the runtime's.`,
    );
  }
}

export function checkLabels(argument: string, labels: unknown): void {
  if (labels === undefined) {
    return;
  }
  if (!isObject(labels)) {
    mustBe(argument, "a map of label keys to values", labels);
  }
  for (const [key, value] of Object.entries(labels as object)) {
    if (!isLabelKey(key)) {
      fail(
        `${argument} key ${show(key)} must be a label key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_" and ".").`,
      );
    }
    if (typeof value !== "string" || !isLabelValue(value)) {
      fail(
        `${argument}[${show(key)}] must be a label value (at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit); got ${show(value)}.`,
      );
    }
  }
}

export function checkReservedLabels(argument: string, labels: unknown): void {
  for (const key of Object.keys((labels as object | undefined) ?? {})) {
    if (
      RESERVED_LABEL_KEYS.includes(key) ||
      key === RUNTIME_LABEL ||
      key === ISOLATION_MODE_LABEL
    ) {
      fail(`${argument}[${show(key)}] is set by the component; remove it.`);
    }
  }
}

export function checkAnnotations(argument: string, annotations: unknown): void {
  if (annotations === undefined) {
    return;
  }
  if (!isObject(annotations)) {
    mustBe(argument, "a map of annotation keys to string values", annotations);
  }
  for (const [key, value] of Object.entries(annotations as object)) {
    if (!isLabelKey(key)) {
      fail(
        `${argument} key ${show(key)} must be an annotation key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_" and ".").`,
      );
    }
    if (typeof value !== "string") {
      fail(`${argument}[${show(key)}] must be a string; got ${show(value)}.`);
    }
  }
}

export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !isDnsSubdomain(prefix)) {
    return false;
  }
  return name.length <= 63 && LABEL_NAME.test(name);
}

export function isLabelValue(value: string): boolean {
  return value === "" || (value.length <= 63 && LABEL_NAME.test(value));
}
