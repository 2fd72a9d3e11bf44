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
 * The mode a namespace's pods are mutated into: its isolation label when that names a configured
 * mode, else the default mode. The mutating webhook routes (namespaceSelectors) and the
 * MutatingAdmissionPolicy implement exactly this; a label the cluster cannot honour is left to
 * the validation ({@link namespaceIsolation}), which denies the pod with a message saying why.
 */
export function modeForNamespace(
  rules: EnforcementRules,
  labels: Readonly<Record<string, string>> | undefined,
): IsolationMode {
  const isolation = namespaceIsolation(rules, labels);
  return isolation.kind === "mode" ? isolation.mode : rules.defaultMode;
}

/**
 * What a namespace's isolation label means to the validation: unset, the default mode; a mode
 * with a RuntimeClass here, that mode; a mode without one (`unoffered`) or a value that is no
 * mode at all (`unknown`), a namespace where no pod is admitted. Never mapped to the default:
 * whoever set `per-pod` asked for an isolation this cluster cannot give, and silently giving less
 * is the wrong answer. The validating routes (namespaceSelectors) and the
 * ValidatingAdmissionPolicy implement exactly this.
 */
export type NamespaceIsolation =
  | { kind: "mode"; mode: IsolationMode }
  | { kind: "unoffered"; mode: IsolationMode }
  | { kind: "unknown" };

export function namespaceIsolation(
  rules: EnforcementRules,
  labels: Readonly<Record<string, string>> | undefined,
): NamespaceIsolation {
  const value = labels?.[NAMESPACE_ISOLATION_LABEL];
  if (value === undefined) return { kind: "mode", mode: rules.defaultMode };
  if (!isIsolationMode(value)) return { kind: "unknown" };
  return rules.classes[value] !== undefined
    ? { kind: "mode", mode: value }
    : { kind: "unoffered", mode: value };
}

// Denial messages. The webhook formats them at run time, the CEL policies build the same text in
// their messageExpressions (cel.ts fills the same functions with CEL holes); a test holds both to
// the same cases.

/** "(vnode, vnode-per-pod)": the allowed classes as denial messages list them. */
export function classListText(rules: EnforcementRules): string {
  return `(${vnodeClasses(rules).join(", ")})`;
}

/**
 * Tail of the runtime-class denial of the mode-less `/validate` path (configurations written
 * before the mode was enforced), around the namespace name:
 * `pods in namespace "<ns>" must use a vNode RuntimeClass (vnode, vnode-per-pod)`.
 */
export function classRequirementParts(rules: EnforcementRules): [before: string, after: string] {
  return ['pods in namespace "', `" must use a vNode RuntimeClass ${classListText(rules)}`];
}

/** How a runtime-class denial opens, by what the pod asked for. */
export const RUNTIME_CLASS_USED = {
  none: () => "pod has no runtimeClassName",
  notVNode: (cls: string) =>
    `pod uses runtimeClassName "${cls}", which is not a vNode RuntimeClass`,
  otherMode: (cls: string, mode: string) =>
    `pod uses runtimeClassName "${cls}", the RuntimeClass of isolation mode ${mode}`,
};

/** Tail of the runtime-class denial: what the namespace's mode requires. */
export function modeClassRequirement(namespace: string, mode: string, cls: string): string {
  return `; namespace "${namespace}" has isolation mode ${mode}, whose pods must use RuntimeClass "${cls}"`;
}

/**
 * The denial in a namespace whose isolation label the cluster cannot honour. `unofferedMode` is
 * the label's value when it names a mode without a RuntimeClass here; undefined for a value that
 * is no mode (the webhook never sees the value, so neither backend repeats it).
 */
export function isolationLabelDenial(
  rules: EnforcementRules,
  namespace: string,
  unofferedMode: string | undefined,
): string {
  const offered = configuredModes(rules);
  const head =
    unofferedMode !== undefined
      ? `namespace "${namespace}" has label ${NAMESPACE_ISOLATION_LABEL}=${unofferedMode}, an isolation mode this cluster does not offer`
      : `namespace "${namespace}" has label ${NAMESPACE_ISOLATION_LABEL} with a value that is not an isolation mode`;
  const allowed = offered.length === 1 ? offered[0] : `one of ${offered.join(", ")}`;
  return `${head}; no pod is admitted there until the label is ${allowed} or is removed (default mode ${rules.defaultMode})`;
}

/** The denial of a hostNetwork pod under a vNode class. */
export const HOST_NETWORK_UNSUPPORTED =
  "hostNetwork is not supported by vNode: the pod sets spec.hostNetwork: true (for such pods the API server also sets every port's hostPort to its containerPort)";

/** Closing words of the hostPort/hostIP denial. */
export const HOST_PORT_UNSUPPORTED = ", which vNode does not support";

/** How the messages name each container list of a pod spec. */
export const CONTAINER_LISTS = [
  { field: "containers", noun: "container" },
  { field: "initContainers", noun: "init container" },
  { field: "ephemeralContainers", noun: "ephemeral container" },
] as const;
