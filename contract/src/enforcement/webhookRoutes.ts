/**
 * Which webhook path serves which namespaces. A webhook never sees namespace labels, so the
 * component registers one entry per case, each with a namespaceSelector, and the path tells
 * `vnode-agent webhook` what the namespace's label means. The API server evaluates an entry's
 * namespaceSelector against the namespace's live labels on every request (the same object a
 * policy's `namespaceObject` is), so a path is as current as the label; no API call, RBAC or
 * cache in the webhook. Mutating entries implement `modeForNamespace`, validating entries
 * `namespaceIsolation` (rules.ts). Pure data, no Pulumi imports.
 */
import { NAMESPACE_ISOLATION_LABEL } from "../labels";
import { WEBHOOK_HTTPS } from "../webhook";
import { ISOLATION_MODES, type IsolationMode } from "../modes";
import { configuredModes, type EnforcementRules, type NamespaceIsolation } from "./rules";

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

/** Path segment of the validating entry for namespaces whose label names no mode. */
export const UNKNOWN_ISOLATION = "unknown-isolation";

/** The webhook path that validates pods of namespaces labelled (or defaulting to) `target`. */
export function validatePath(target: IsolationMode | typeof UNKNOWN_ISOLATION): string {
  return `${WEBHOOK_HTTPS.validate}/${target}`;
}

export interface ValidatingRoute {
  /** Short name of the entry, unique in the configuration: `unlabelled`, a mode, `unknown-isolation`. */
  name: string;
  /** Path on the webhook Service, e.g. `/validate/per-pod`. */
  path: string;
  /** What the namespaces this entry selects mean to the validation. */
  isolation: NamespaceIsolation;
  namespaceSelector: LabelSelector;
}

/**
 * The validating entries: unlabelled namespaces (the default mode), one per isolation mode (a
 * mode without a RuntimeClass here is `unoffered`: the webhook denies every pod there), and any
 * other label value (`unknown`). LabelSelectors have no "or", hence two entries for the default
 * mode; the selectors never overlap and together cover every tenant namespace, so each pod
 * CREATE is judged by exactly one entry.
 */
export function validatingRoutes(
  rules: EnforcementRules,
  tenantSelector: LabelSelector = {},
): ValidatingRoute[] {
  const base = tenantNamespaceSelector(rules, tenantSelector);
  const entry = (
    name: string,
    target: IsolationMode | typeof UNKNOWN_ISOLATION,
    isolation: NamespaceIsolation,
    ...isolationLabel: LabelSelectorRequirement[]
  ): ValidatingRoute => ({
    name,
    path: validatePath(target),
    isolation,
    namespaceSelector: {
      ...base,
      matchExpressions: [...(base.matchExpressions ?? []), ...isolationLabel],
    },
  });
  const key = NAMESPACE_ISOLATION_LABEL;
  return [
    entry(
      "unlabelled",
      rules.defaultMode,
      { kind: "mode", mode: rules.defaultMode },
      { key, operator: "DoesNotExist" },
    ),
    ...ISOLATION_MODES.map((mode) =>
      entry(
        mode,
        mode,
        rules.classes[mode] !== undefined ? { kind: "mode", mode } : { kind: "unoffered", mode },
        { key, operator: "In", values: [mode] },
      ),
    ),
    entry(
      UNKNOWN_ISOLATION,
      UNKNOWN_ISOLATION,
      { kind: "unknown" },
      { key, operator: "Exists" },
      { key, operator: "NotIn", values: [...ISOLATION_MODES] },
    ),
  ];
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
