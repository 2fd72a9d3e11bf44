/**
 * Which webhook path serves which namespaces. A webhook never sees namespace labels, so the
 * component registers one mutating entry per configured mode, each with a namespaceSelector, and
 * the path tells `vnode-agent webhook` the RuntimeClass. Together the selectors implement
 * `modeForNamespace` (rules.ts): a namespace labelled with a configured mode goes to that mode's
 * entry, every other tenant namespace to the default mode's. Pure data, no Pulumi imports.
 */
import { NAMESPACE_ISOLATION_LABEL } from "../labels";
import { WEBHOOK_HTTPS } from "../webhook";
import type { IsolationMode } from "../modes";
import { configuredModes, type EnforcementRules } from "./rules";

/** A Kubernetes LabelSelector (meta/v1), as plain data. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}
export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

/** The label every namespace carries with its own name (Kubernetes >= 1.21). */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** The webhook path that puts pods into `mode`'s RuntimeClass. */
export function mutatePath(mode: IsolationMode): string {
  return `${WEBHOOK_HTTPS.mutate}/${mode}`;
}

export interface MutatingRoute {
  mode: IsolationMode;
  /** Path on the webhook Service, e.g. `/mutate/per-pod`. */
  path: string;
  namespaceSelector: LabelSelector;
}

/**
 * The tenant selector narrowed to the namespaces enforcement may touch: the user's selector
 * plus `kubernetes.io/metadata.name NotIn <excluded>`. The handler re-checks the exclusions.
 */
export function tenantNamespaceSelector(
  rules: EnforcementRules,
  tenantSelector: LabelSelector = {},
): LabelSelector {
  return {
    ...(tenantSelector.matchLabels ? { matchLabels: { ...tenantSelector.matchLabels } } : {}),
    matchExpressions: [
      ...(tenantSelector.matchExpressions ?? []).map((e) => ({
        ...e,
        ...(e.values ? { values: [...e.values] } : {}),
      })),
      { key: NAMESPACE_NAME_LABEL, operator: "NotIn", values: [...rules.excludedNamespaces] },
    ],
  };
}

/** One mutating webhook entry per configured mode, in mode order. */
export function mutatingRoutes(
  rules: EnforcementRules,
  tenantSelector: LabelSelector = {},
): MutatingRoute[] {
  const modes = configuredModes(rules);
  return modes.map((mode) => {
    const base = tenantNamespaceSelector(rules, tenantSelector);
    const others = modes.filter((m) => m !== rules.defaultMode);
    // The default mode takes every namespace not labelled with another configured mode
    // (NotIn also matches namespaces without the label); each other mode only its own label.
    const isolation: LabelSelectorRequirement | undefined =
      mode === rules.defaultMode
        ? others.length > 0
          ? { key: NAMESPACE_ISOLATION_LABEL, operator: "NotIn", values: others }
          : undefined
        : { key: NAMESPACE_ISOLATION_LABEL, operator: "In", values: [mode] };
    return {
      mode,
      path: mutatePath(mode),
      namespaceSelector: {
        ...base,
        matchExpressions: [...(base.matchExpressions ?? []), ...(isolation ? [isolation] : [])],
      },
    };
  });
}

/** The validating entry: every tenant namespace, whatever its mode. */
export function validatingRoute(
  rules: EnforcementRules,
  tenantSelector: LabelSelector = {},
): { path: string; namespaceSelector: LabelSelector } {
  return {
    path: WEBHOOK_HTTPS.validate,
    namespaceSelector: tenantNamespaceSelector(rules, tenantSelector),
  };
}

/** Whether `selector` selects an object with `labels` (LabelSelector semantics). */
export function selectorMatches(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key]);
    const ok =
      e.operator === "In"
        ? inValues
        : e.operator === "NotIn"
          ? !inValues
          : e.operator === "Exists"
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}
