/**
 * The tenancy enforcement rules both backends enforce, the webhook (`vnode-agent webhook`) and
 * the CEL admission policies: which RuntimeClass each isolation mode puts pods into, the mode of
 * namespaces without the isolation label, and the namespaces never touched. Pure data and
 * checks, no Pulumi and no Node.js imports: the agent bundle and the component share it.
 */
import { NAMESPACE_ISOLATION_LABEL } from "../labels";
import { ISOLATION_MODES, IsolationMode, isIsolationMode } from "../modes";
import { DNS1123_LABEL, DNS1123_SUBDOMAIN } from "../names";
import { ALWAYS_EXCLUDED_NAMESPACES } from "../webhook";

export interface EnforcementRulesInput {
  /** RuntimeClass per mode the cluster offers; at least one. */
  classes: Partial<Record<IsolationMode, string>>;
  /** Mode of namespaces without (or with an unknown) isolation label. Defaults to the only mode, else `per-namespace`. */
  defaultMode?: string;
  /** Namespaces to leave alone on top of kube-system and kube-node-lease (the runtime's own). */
  excludedNamespaces?: readonly string[];
}

export interface EnforcementRules {
  classes: Partial<Record<IsolationMode, string>>;
  defaultMode: IsolationMode;
  /** Sorted, without duplicates, always including kube-system and kube-node-lease. */
  excludedNamespaces: readonly string[];
}

/** Bad rules; `field` says which input, so callers can name it as their users wrote it. */
export class EnforcementRulesError extends Error {
  constructor(
    readonly field: "classes" | "defaultMode" | "excludedNamespaces",
    message: string,
  ) {
    super(message);
    this.name = "EnforcementRulesError";
  }
}

/**
 * Checks and completes the rules. Throws an {@link EnforcementRulesError} whose message says
 * what is wrong and what is allowed; callers prefix it with their own flag or argument name.
 */
export function enforcementRules(input: EnforcementRulesInput): EnforcementRules {
  const classes: Partial<Record<IsolationMode, string>> = {};
  for (const [mode, cls] of Object.entries(input.classes)) {
    if (cls === undefined) continue;
    if (!isIsolationMode(mode)) {
      throw new EnforcementRulesError(
        "classes",
        `unknown isolation mode ${JSON.stringify(mode)}; allowed: ${ISOLATION_MODES.join(", ")}.`,
      );
    }
    if (!DNS1123_SUBDOMAIN.test(cls)) {
      throw new EnforcementRulesError(
        "classes",
        `RuntimeClass name for ${mode} must be a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", at most 253 characters); got ${JSON.stringify(cls)}.`,
      );
    }
    classes[mode] = cls;
  }
  const modes = ISOLATION_MODES.filter((m) => classes[m] !== undefined);
  if (modes.length === 0) {
    throw new EnforcementRulesError(
      "classes",
      `a RuntimeClass is needed for at least one of ${ISOLATION_MODES.join(", ")}.`,
    );
  }
  const defaultMode =
    input.defaultMode ?? (modes.length === 1 ? modes[0] : IsolationMode.PerNamespace);
  if (!isIsolationMode(defaultMode)) {
    throw new EnforcementRulesError(
      "defaultMode",
      `default mode must be one of ${ISOLATION_MODES.join(", ")}; got ${JSON.stringify(defaultMode)}.`,
    );
  }
  if (classes[defaultMode] === undefined) {
    throw new EnforcementRulesError(
      "defaultMode",
      `default mode ${defaultMode} has no RuntimeClass; classes are set for: ${modes.join(", ")}.`,
    );
  }
  for (const ns of input.excludedNamespaces ?? []) {
    if (!DNS1123_LABEL.test(ns)) {
      throw new EnforcementRulesError(
        "excludedNamespaces",
        `excluded namespace must be a namespace name (DNS-1123 label: lowercase letters, digits and "-", at most 63 characters); got ${JSON.stringify(ns)}.`,
      );
    }
  }
  const excludedNamespaces = [
    ...new Set([...ALWAYS_EXCLUDED_NAMESPACES, ...(input.excludedNamespaces ?? [])]),
  ].sort();
  return { classes, defaultMode, excludedNamespaces };
}

/** The modes that have a RuntimeClass, in {@link ISOLATION_MODES} order. */
export function configuredModes(rules: EnforcementRules): IsolationMode[] {
  return ISOLATION_MODES.filter((m) => rules.classes[m] !== undefined);
}

/** Every vNode RuntimeClass of the rules, without duplicates, in mode order. */
export function vnodeClasses(rules: EnforcementRules): string[] {
  return [...new Set(configuredModes(rules).map((m) => rules.classes[m] as string))];
}

/**
 * The mode a namespace's pods get: its isolation label when that names a configured mode,
 * else the default mode. The webhook routes (namespaceSelectors) and the CEL policies both
 * implement exactly this.
 */
export function modeForNamespace(
  rules: EnforcementRules,
  labels: Readonly<Record<string, string>> | undefined,
): IsolationMode {
  const value = labels?.[NAMESPACE_ISOLATION_LABEL];
  return value !== undefined && isIsolationMode(value) && rules.classes[value] !== undefined
    ? value
    : rules.defaultMode;
}

// Denial messages. The webhook formats them at run time, the CEL policies build the same text in
// their messageExpressions; a test holds both to the same cases.

/** "(vnode, vnode-per-pod)": the allowed classes as denial messages list them. */
export function classListText(rules: EnforcementRules): string {
  return `(${vnodeClasses(rules).join(", ")})`;
}

/**
 * Tail of the runtime-class denial, what the pod should have done, around the namespace name:
 * `pods in namespace "<ns>" must use a vNode RuntimeClass (vnode, vnode-per-pod)`.
 */
export function classRequirementParts(rules: EnforcementRules): [before: string, after: string] {
  return ['pods in namespace "', `" must use a vNode RuntimeClass ${classListText(rules)}`];
}

/** Closing words of the hostPort/hostIP denial. */
export const HOST_PORT_UNSUPPORTED = ", which vNode does not support";

/** How the messages name each container list of a pod spec. */
export const CONTAINER_LISTS = [
  { field: "containers", noun: "container" },
  { field: "initContainers", noun: "init container" },
  { field: "ephemeralContainers", noun: "ephemeral container" },
] as const;
