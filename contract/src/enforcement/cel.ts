/**
 * The AdmissionPolicy backend of tenancy enforcement: the CEL of a ValidatingAdmissionPolicy
 * (admissionregistration.k8s.io/v1, Kubernetes >= 1.30) and a MutatingAdmissionPolicy
 * (Kubernetes >= 1.32 where enabled) that enforce the same rules as `vnode-agent webhook`,
 * with the same denial messages. Plain data builders: no Pulumi and no Node.js imports, so the
 * agent's tests evaluate these expressions against the webhook's cases.
 *
 * The component adds the policy names, `failurePolicy`, and the bindings (whose
 * `matchResources.namespaceSelector` is the tenant selector from webhookRoutes.ts).
 */
import { NAMESPACE_ISOLATION_LABEL } from "../labels";
import { ISOLATION_MODES } from "../modes";
import {
  CONTAINER_LISTS,
  configuredModes,
  type EnforcementRules,
  HOST_NETWORK_UNSUPPORTED,
  HOST_PORT_UNSUPPORTED,
  isolationLabelDenial,
  modeClassRequirement,
  RUNTIME_CLASS_USED,
  vnodeClasses,
} from "./rules";

export interface CelMatchCondition {
  name: string;
  expression: string;
}
export interface CelVariable {
  name: string;
  expression: string;
}
export interface CelValidation {
  expression: string;
  /** Fallback when messageExpression fails to evaluate. */
  message: string;
  messageExpression: string;
  reason: "Forbidden";
}
export interface CelMutation {
  patchType: "ApplyConfiguration";
  applyConfiguration: { expression: string };
}
export interface ResourceRule {
  apiGroups: string[];
  apiVersions: string[];
  operations: string[];
  resources: string[];
}

/**
 * Only pod CREATE: every field the rules read (runtimeClassName, ports) is immutable once the
 * pod exists, and judging UPDATEs would block label or finalizer changes on pods that predate
 * the enforcement. `pods` without a subresource, so bindings and evictions never match.
 */
export function podCreateRules(): ResourceRule[] {
  return [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }];
}

/** A CEL string literal for `s`: JSON's escapes are a subset of CEL's. */
export function celString(s: string): string {
  return JSON.stringify(s);
}

function celStringList(items: readonly string[]): string {
  return `[${items.map(celString).join(", ")}]`;
}

/** A hole for a CEL expression in a message built by one of rules.ts's functions. */
const hole = (expression: string) => `\u0000${expression}\u0000`;

/**
 * CEL that builds `text` (a rules.ts message with {@link hole}s): the same function gives the
 * webhook's message and the policy's, so the two cannot drift apart.
 */
function celText(text: string): string {
  return text
    .split("\u0000")
    .map((part, i) => (i % 2 === 0 ? celString(part) : `(${part})`))
    .filter((part) => part !== '""')
    .join(" + ");
}

/** Match condition that skips the excluded namespaces (also left out by the bindings' selector). */
function notExcluded(rules: EnforcementRules): CelMatchCondition {
  return {
    name: "not-excluded-namespace",
    expression: `!(request.namespace in ${celStringList(rules.excludedNamespaces)})`,
  };
}

const RUNTIME_CLASS_VARIABLE: CelVariable = {
  name: "runtimeClass",
  expression: `has(object.spec.runtimeClassName) ? object.spec.runtimeClassName : ""`,
};

const USES_HOST = (p: string) =>
  `(has(${p}.hostPort) && ${p}.hostPort != 0) || (has(${p}.hostIP) && ${p}.hostIP != "")`;
const HAS_HOST_IP = (p: string) => `has(${p}.hostIP) && ${p}.hostIP != ""`;

/**
 * "hostPort 8080 on hostIP 10.0.0.1 in container \"web\"" for every port of one container list
 * that uses the host network namespace, one string per container (its ports joined by " and ").
 */
function hostPortUsesOf(field: string, noun: string): string {
  const list = `(has(object.spec.${field}) ? object.spec.${field} : [])`;
  const describe =
    `(has(p.hostPort) && p.hostPort != 0 ? "hostPort " + string(p.hostPort) + ` +
    `(${HAS_HOST_IP("p")} ? " on hostIP " + p.hostIP : "") : "hostIP " + p.hostIP)`;
  return (
    `${list}.filter(c, has(c.ports) && c.ports.exists(p, ${USES_HOST("p")}))` +
    `.map(c, c.ports.filter(p, ${USES_HOST("p")})` +
    `.map(p, ${describe} + ${celString(` in ${noun} "`)} + c.name + "\\"").join(" and "))`
  );
}

export interface ValidatingPolicyCel {
  matchConstraints: { resourceRules: ResourceRule[] };
  matchConditions: CelMatchCondition[];
  variables: CelVariable[];
  validations: CelValidation[];
}

/**
 * The ValidatingAdmissionPolicy spec (without failurePolicy), in the order the webhook checks:
 * deny every pod of a namespace whose isolation label the cluster cannot honour (a mode it does
 * not offer, or no mode); deny a pod whose runtimeClassName is not the class of its namespace's
 * mode; deny a pod of that class with hostNetwork, or with hostPort or hostIP in any container,
 * init container or ephemeral container. Each validation passes whenever an earlier one fails,
 * so at most one fails for a pod: whatever the API server makes of several failures, the
 * message is exactly the webhook's.
 */
export function validatingPolicyCel(rules: EnforcementRules): ValidatingPolicyCel {
  const labels = "namespaceObject.metadata.labels";
  const key = celString(NAMESPACE_ISOLATION_LABEL);
  const modes = configuredModes(rules);
  const expectedClass = modes.reduceRight(
    (otherwise, m) =>
      `variables.isolation == ${celString(m)} ? ${celString(rules.classes[m] as string)} : ${otherwise}`,
    '""',
  );
  // Each vNode class with its mode (the first mode of a class two modes share).
  const modeOfClass = `{${vnodeClasses(rules)
    .map(
      (c) => `${celString(c)}: ${celString(modes.find((m) => rules.classes[m] === c) as string)}`,
    )
    .join(", ")}}`;
  const hostPortLists = CONTAINER_LISTS.map(({ field, noun }) => hostPortUsesOf(field, noun));
  const ns = hole("request.namespace");
  return {
    matchConstraints: { resourceRules: podCreateRules() },
    matchConditions: [notExcluded(rules)],
    variables: [
      RUNTIME_CLASS_VARIABLE,
      {
        name: "isolation",
        expression: `has(${labels}) && ${key} in ${labels} ? ${labels}[${key}] : ${celString(rules.defaultMode)}`,
      },
      { name: "expectedClass", expression: expectedClass },
      {
        name: "classOk",
        expression: `variables.expectedClass != "" && variables.runtimeClass == variables.expectedClass`,
      },
      {
        name: "hostNetwork",
        expression: "has(object.spec.hostNetwork) && object.spec.hostNetwork",
      },
      { name: "hostPortUses", expression: hostPortLists.join(" + ") },
    ],
    validations: [
      {
        expression: `variables.expectedClass != ""`,
        message: `no pod is admitted in a namespace whose ${NAMESPACE_ISOLATION_LABEL} label names an isolation mode this cluster does not offer`,
        messageExpression:
          `variables.isolation in ${celStringList(ISOLATION_MODES)} ? ` +
          `${celText(isolationLabelDenial(rules, ns, hole("variables.isolation")))} : ` +
          celText(isolationLabelDenial(rules, ns, undefined)),
        reason: "Forbidden",
      },
      {
        expression: `variables.expectedClass == "" || variables.classOk`,
        message: `pods must use the RuntimeClass of their namespace's isolation mode`,
        messageExpression:
          `(variables.runtimeClass == "" ? ${celText(RUNTIME_CLASS_USED.none())} : ` +
          `variables.runtimeClass in ${modeOfClass} ? ` +
          `${celText(RUNTIME_CLASS_USED.otherMode(hole("variables.runtimeClass"), hole(`${modeOfClass}[variables.runtimeClass]`)))} : ` +
          `${celText(RUNTIME_CLASS_USED.notVNode(hole("variables.runtimeClass")))}) + ` +
          celText(
            modeClassRequirement(ns, hole("variables.isolation"), hole("variables.expectedClass")),
          ),
        reason: "Forbidden",
      },
      {
        expression: "!variables.classOk || !variables.hostNetwork",
        message: HOST_NETWORK_UNSUPPORTED,
        messageExpression: celString(HOST_NETWORK_UNSUPPORTED),
        reason: "Forbidden",
      },
      {
        expression:
          "!variables.classOk || variables.hostNetwork || size(variables.hostPortUses) == 0",
        message: `pods under a vNode RuntimeClass must not use hostPort or hostIP`,
        messageExpression:
          `"pod uses " + variables.hostPortUses.join(" and ") + ` +
          celString(HOST_PORT_UNSUPPORTED),
        reason: "Forbidden",
      },
    ],
  };
}

export interface MutatingPolicyCel {
  matchConstraints: { resourceRules: ResourceRule[] };
  matchConditions: CelMatchCondition[];
  variables: CelVariable[];
  mutations: CelMutation[];
  reinvocationPolicy: "Never";
}

/**
 * The MutatingAdmissionPolicy spec (without failurePolicy): set runtimeClassName on tenant pods
 * that have none, to the class of the namespace's mode (its isolation label, else the default).
 */
export function mutatingPolicyCel(rules: EnforcementRules): MutatingPolicyCel {
  const labels = "namespaceObject.metadata.labels";
  const key = celString(NAMESPACE_ISOLATION_LABEL);
  // Non-default modes first, each for its own label value; everything else is the default.
  const cls = configuredModes(rules)
    .filter((m) => m !== rules.defaultMode)
    .reduceRight(
      (otherwise, m) =>
        `variables.isolation == ${celString(m)} ? ${celString(rules.classes[m] as string)} : ${otherwise}`,
      celString(rules.classes[rules.defaultMode] as string),
    );
  return {
    matchConstraints: { resourceRules: podCreateRules() },
    matchConditions: [
      notExcluded(rules),
      {
        name: "runtime-class-unset",
        expression: `!has(object.spec.runtimeClassName) || object.spec.runtimeClassName == ""`,
      },
    ],
    variables: [
      {
        name: "isolation",
        expression: `has(${labels}) && ${key} in ${labels} ? ${labels}[${key}] : ""`,
      },
      { name: "runtimeClass", expression: cls },
    ],
    mutations: [
      {
        patchType: "ApplyConfiguration",
        applyConfiguration: {
          expression: "Object{spec: Object.spec{runtimeClassName: variables.runtimeClass}}",
        },
      },
    ],
    reinvocationPolicy: "Never",
  };
}
