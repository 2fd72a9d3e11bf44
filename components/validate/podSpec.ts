/** Fields of the agent pods and RuntimeClasses: tolerations and resource quantities. */
import { fail, mustBe, show } from "./errors";
import { isLabelKey, isLabelValue } from "./labels";
import { checkEnum, checkInteger, checkObject, isObject } from "./values";

// Kubernetes quantity: a decimal number with an optional binary/decimal suffix or exponent.
const QUANTITY = /^([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][-+]?[0-9]+)?$/;

export function checkTolerations(argument: string, tolerations: unknown): void {
  if (tolerations === undefined) {
    return;
  }
  if (!Array.isArray(tolerations)) {
    mustBe(argument, "a list of tolerations", tolerations);
  }
  (tolerations as unknown[]).forEach((toleration, i) => {
    const at = `${argument}[${i}]`;
    const t = checkObject(at, toleration, [
      "key",
      "operator",
      "value",
      "effect",
      "tolerationSeconds",
    ]);
    checkEnum(`${at}.operator`, t.operator, ["Exists", "Equal"]);
    checkEnum(`${at}.effect`, t.effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]);
    if (t.key !== undefined && (typeof t.key !== "string" || !isLabelKey(t.key))) {
      fail(`${at}.key must be a label key; got ${show(t.key)}.`);
    }
    if (t.value !== undefined && (typeof t.value !== "string" || !isLabelValue(t.value))) {
      fail(`${at}.value must be a label value; got ${show(t.value)}.`);
    }
    if (t.operator === "Exists" && t.value !== undefined && t.value !== "") {
      fail(`${at}.value must be empty with operator Exists; got ${show(t.value)}.`);
    }
    if ((t.operator ?? "Equal") === "Equal" && (t.key === undefined || t.key === "")) {
      fail(
        `${at}.key is required with operator Equal; use operator Exists to tolerate every taint.`,
      );
    }
    if (t.tolerationSeconds !== undefined) {
      checkInteger(`${at}.tolerationSeconds`, t.tolerationSeconds, 0);
      if (t.effect !== "NoExecute") {
        fail(
          `${at}.tolerationSeconds only applies with effect NoExecute; got effect ${show(t.effect)}.`,
        );
      }
    }
  });
}

/**
 * The agent container's `resources` (core/v1 ResourceRequirements): `requests` and `limits`, maps
 * of resource names to quantities. `claims` needs the pod's `resourceClaims`, which the component
 * does not set, so it is refused.
 */
export function checkResources(value: unknown): void {
  if (value === undefined) {
    return;
  }
  const resources = checkObject("resources", value, ["requests", "limits"]);
  for (const field of ["requests", "limits"]) {
    const at = `resources.${field}`;
    const quantities = resources[field];
    if (quantities === undefined) {
      continue;
    }
    if (!isObject(quantities)) {
      mustBe(
        at,
        'a map of resource names to quantities, e.g. { cpu: "100m", memory: "128Mi" }',
        quantities,
      );
    }
    for (const [resource, quantity] of Object.entries(quantities as object)) {
      if (resource === "cpu" || resource === "memory") {
        checkQuantity(`${at}.${resource}`, resource, quantity);
      } else if (!isLabelKey(resource)) {
        fail(
          `${at} key ${show(resource)} must be a resource name such as cpu, memory or ephemeral-storage.`,
        );
      } else {
        checkQuantity(`${at}[${show(resource)}]`, resource, quantity);
      }
    }
  }
}

function checkQuantity(argument: string, resource: string, quantity: unknown): void {
  if (quantity !== undefined && (typeof quantity !== "string" || !QUANTITY.test(quantity))) {
    fail(
      `${argument} must be a Kubernetes quantity such as ${resource === "cpu" ? '"100m" or "1"' : '"128Mi" or "1Gi"'}; got ${show(quantity)}.`,
    );
  }
}

export function checkQuantities(argument: string, value: unknown): void {
  if (value === undefined) {
    return;
  }
  const q = checkObject(argument, value, ["cpu", "memory"]);
  for (const field of ["cpu", "memory"]) {
    const quantity = q[field];
    if (quantity !== undefined && (typeof quantity !== "string" || !QUANTITY.test(quantity))) {
      fail(
        `${argument}.${field} must be a Kubernetes quantity such as ${field === "cpu" ? '"100m" or "1"' : '"128Mi" or "1Gi"'}; got ${show(quantity)}.`,
      );
    }
  }
}
