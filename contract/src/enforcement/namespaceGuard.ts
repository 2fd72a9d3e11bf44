/**
 * The namespace side of tenancy enforcement. Enforcement selects tenant namespaces by their labels,
 * so those labels are its trust anchor: whoever may relabel a namespace may switch enforcement off
 * (remove the selector's label), exempt it, or move it to another isolation mode. This module holds
 * what both backends need to guard them, as pure data and checks:
 *
 * - the scope: `selected` (the user's selector, opt-in) or `all-except-exempt` (every namespace
 *   unless labelled {@link ENFORCEMENT_EXEMPT_LABEL}=true);
 * - the namespace label guard: only members of the platform groups (and `system:masters`) may add,
 *   change or remove the guarded label keys on CREATE/UPDATE of a namespace;
 * - the optional Pod Security level set on the namespaces enforcement enforces.
 *
 * The webhook (`vnode-agent webhook`, routes under `/namespaces/`) evaluates it in TypeScript, the
 * AdmissionPolicy backend through the CEL built here; test/agent/namespace-guard.test.ts holds both
 * to one table of cases. No Pulumi and no Node.js imports.
 */
import { ENFORCEMENT_EXEMPT_LABEL, NAMESPACE_ISOLATION_LABEL } from "../labels";
import {
  type CelMatchCondition,
  type CelMutation,
  type CelValidation,
  type CelVariable,
  celString,
  type ResourceRule,
} from "./cel";
import type { EnforcementRules } from "./rules";
import {
  type LabelSelector,
  NAMESPACE_NAME_LABEL,
  selectorMatches,
  tenantNamespaceSelector,
} from "./webhookRoutes";

/** Which namespaces tenancy enforcement applies to. */
export const EnforcementScope = {
  /** The namespaces the user's `namespaceSelector` selects (opt-in). */
  Selected: "selected",
  /** Every namespace, unless labelled `vnode.loft.sh/enforcement-exempt=true` (opt-out). */
  AllExceptExempt: "all-except-exempt",
} as const;
export type EnforcementScope = (typeof EnforcementScope)[keyof typeof EnforcementScope];
export const ENFORCEMENT_SCOPES: readonly EnforcementScope[] = Object.values(EnforcementScope);

/** Pod Security Standards levels worth enforcing as defence in depth (`privileged` enforces nothing). */
export const PodSecurityLevel = {
  Baseline: "baseline",
  Restricted: "restricted",
} as const;
export type PodSecurityLevel = (typeof PodSecurityLevel)[keyof typeof PodSecurityLevel];
export const POD_SECURITY_LEVELS: readonly PodSecurityLevel[] = Object.values(PodSecurityLevel);

/** The Pod Security admission labels that decide what it enforces on a namespace. */
export const POD_SECURITY_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce";
export const POD_SECURITY_ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version";

/**
 * Groups always allowed to change guarded labels: admission policies and webhooks judge
 * `system:masters` like anyone else (only RBAC is bypassed), and a cluster's break-glass identity
 * must not be locked out.
 */
export const ALWAYS_PLATFORM_GROUPS = ["system:masters"] as const;

/**
 * Groups every authenticated user or every ServiceAccount is in: naming one as a platform group
 * would let everybody through, so they are refused.
 */
export const UNIVERSAL_GROUPS = [
  "system:authenticated",
  "system:unauthenticated",
  "system:serviceaccounts",
] as const;

/** Paths of the namespace routes on the webhook server. */
export const NAMESPACE_WEBHOOK_PATHS = {
  /** Validating: the label guard. */
  guard: "/namespaces/validate",
  /** Mutating: sets the Pod Security level on enforced namespaces. */
  podSecurity: "/namespaces/mutate",
} as const;

/**
 * The selector of the namespaces enforcement applies to, before the exclusions: the user's with
 * `selected`, "not labelled exempt" with `all-except-exempt` (NotIn also matches namespaces without
 * the label, so new namespaces are enforced by default).
 */
export function scopeSelector(
  scope: EnforcementScope,
  selector: LabelSelector = {},
): LabelSelector {
  if (scope === EnforcementScope.AllExceptExempt) {
    return {
      matchExpressions: [{ key: ENFORCEMENT_EXEMPT_LABEL, operator: "NotIn", values: ["true"] }],
    };
  }
  return selector;
}

export interface NamespaceGuardInput {
  /** The tenant selector in effect ({@link scopeSelector}), without the exclusions. */
  tenantSelector: LabelSelector;
  /** Groups whose members may change the guarded labels, on top of {@link ALWAYS_PLATFORM_GROUPS}. */
  platformGroups?: readonly string[];
  /** Pod Security level set on enforced namespaces and guarded there; none by default. */
  podSecurityLevel?: string;
}

export interface NamespaceGuard {
  tenantSelector: LabelSelector;
  /** Sorted, without duplicates, starting from {@link ALWAYS_PLATFORM_GROUPS}. */
  platformGroups: readonly string[];
  /** Label keys guarded on every namespace, sorted. */
  guardedLabels: readonly string[];
  podSecurityLevel: PodSecurityLevel | undefined;
  /** The rules' exclusions: never enforced, never given a Pod Security level. */
  excludedNamespaces: readonly string[];
}

/** Bad guard input; `field` says which, so callers can name it as their users wrote it. */
export class NamespaceGuardError extends Error {
  constructor(
    readonly field: "platformGroups" | "podSecurityLevel",
    message: string,
  ) {
    super(message);
    this.name = "NamespaceGuardError";
  }
}

/** Throws a {@link NamespaceGuardError} for a group that is blank or that everyone is in. */
export function checkPlatformGroups(groups: readonly unknown[]): void {
  for (const g of groups) {
    if (
      typeof g !== "string" ||
      g.trim() !== g ||
      g === "" ||
      [...g].some((ch) => ch.charCodeAt(0) < 0x20)
    ) {
      throw new NamespaceGuardError(
        "platformGroups",
        `a platform group must be a non-blank group name without surrounding spaces or control characters; got ${JSON.stringify(g)}.`,
      );
    }
    if ((UNIVERSAL_GROUPS as readonly string[]).includes(g)) {
      throw new NamespaceGuardError(
        "platformGroups",
        `${JSON.stringify(g)} cannot be a platform group: every ${g === "system:serviceaccounts" ? "ServiceAccount" : "user"} is in it, so the guard would let everyone relabel namespaces.`,
      );
    }
  }
}

/** Every label key a selector reads, in order of appearance, without duplicates. */
export function selectorKeys(selector: LabelSelector): string[] {
  return [
    ...new Set([
      ...Object.keys(selector.matchLabels ?? {}),
      ...(selector.matchExpressions ?? []).map((e) => e.key),
    ]),
  ];
}

/**
 * Checks and completes the guard. Guarded on every namespace: the tenant selector's keys, the
 * isolation label and the exempt label, in either scope: an exempt label a tenant could set under
 * `selected` would be honoured the day the platform switches to `all-except-exempt`. Never
 * `kubernetes.io/metadata.name`, which the API server itself sets to the name on every namespace
 * (KEP-2161), so it cannot be relabelled and a guard on it would deny every namespace CREATE.
 */
export function namespaceGuard(
  input: NamespaceGuardInput,
  rules: EnforcementRules,
): NamespaceGuard {
  const groups = input.platformGroups ?? [];
  checkPlatformGroups(groups);
  const level = input.podSecurityLevel;
  if (level !== undefined && !(POD_SECURITY_LEVELS as readonly string[]).includes(level)) {
    throw new NamespaceGuardError(
      "podSecurityLevel",
      `Pod Security level must be one of ${POD_SECURITY_LEVELS.join(", ")}; got ${JSON.stringify(level)}.`,
    );
  }
  const guardedLabels = [
    ...new Set([
      ...selectorKeys(input.tenantSelector),
      NAMESPACE_ISOLATION_LABEL,
      ENFORCEMENT_EXEMPT_LABEL,
    ]),
  ]
    .filter((k) => k !== NAMESPACE_NAME_LABEL)
    .sort();
  return {
    tenantSelector: input.tenantSelector,
    platformGroups: [...new Set([...ALWAYS_PLATFORM_GROUPS, ...groups])].sort(),
    guardedLabels,
    podSecurityLevel: level as PodSecurityLevel | undefined,
    excludedNamespaces: rules.excludedNamespaces,
  };
}

type Labels = Readonly<Record<string, string>>;

/** Whether enforcement applies to the namespace `name` with `labels` (its labels after the request). */
export function enforcesNamespace(guard: NamespaceGuard, name: string, labels: Labels): boolean {
  return !guard.excludedNamespaces.includes(name) && selectorMatches(guard.tenantSelector, labels);
}

/** Whether one of `groups` may change guarded labels. */
export function isPlatformUser(guard: NamespaceGuard, groups: readonly string[]): boolean {
  return groups.some((g) => guard.platformGroups.includes(g));
}

/** The keys a request adds, changes or removes among `keys`, in the order of `keys`. */
function changedAmong(keys: readonly string[], before: Labels, after: Labels): string[] {
  const has = (l: Labels, k: string) => Object.prototype.hasOwnProperty.call(l, k);
  return keys.filter(
    (k) => has(before, k) !== has(after, k) || (has(after, k) && before[k] !== after[k]),
  );
}

/**
 * The guarded labels a request changes, for a user outside the platform groups: the guarded keys,
 * then, on an enforced namespace with a Pod Security level, the Pod Security enforce label (unless
 * set to exactly the level: what the mutation itself adds) and its version label. `before` is
 * empty for a CREATE.
 */
export function guardedLabelChanges(
  guard: NamespaceGuard,
  name: string,
  before: Labels,
  after: Labels,
): string[] {
  const changed = changedAmong(guard.guardedLabels, before, after);
  if (guard.podSecurityLevel !== undefined && enforcesNamespace(guard, name, after)) {
    const level = guard.podSecurityLevel;
    changed.push(
      ...changedAmong(
        [POD_SECURITY_ENFORCE_LABEL, POD_SECURITY_ENFORCE_VERSION_LABEL],
        before,
        after,
      ).filter((k) => !(k === POD_SECURITY_ENFORCE_LABEL && after[k] === level)),
    );
  }
  return changed;
}

/** The denial; the CEL policy builds the same text. */
export function guardDenial(
  guard: NamespaceGuard,
  name: string,
  username: string,
  changed: readonly string[],
): string {
  return (
    `user "${username}" may not add, change or remove ${changed.length === 1 ? "label" : "labels"} ` +
    `${changed.join(", ")} on namespace "${name}"${guardReason(guard)}`
  );
}

function guardReason(guard: NamespaceGuard): string {
  return `: the labels that decide vNode enforcement are reserved to the groups ${guard.platformGroups.join(", ")}`;
}

/**
 * The JSONPatch that gives an enforced namespace the Pod Security level, or undefined when it
 * needs none (no level configured, not enforced, or the enforce label already set: a value other
 * than the level can only have been set by a platform group, and is left to them).
 */
export function podSecurityPatch(
  guard: NamespaceGuard,
  name: string,
  labels: Labels | undefined,
): { op: "add"; path: string; value: unknown }[] | undefined {
  const level = guard.podSecurityLevel;
  if (level === undefined || !enforcesNamespace(guard, name, labels ?? {})) return undefined;
  if (labels !== undefined && POD_SECURITY_ENFORCE_LABEL in labels) return undefined;
  if (labels === undefined) {
    return [
      { op: "add", path: "/metadata/labels", value: { [POD_SECURITY_ENFORCE_LABEL]: level } },
    ];
  }
  // RFC 6901: "/" in a key is written "~1".
  const key = POD_SECURITY_ENFORCE_LABEL.replace(/~/g, "~0").replace(/\//g, "~1");
  return [{ op: "add", path: `/metadata/labels/${key}`, value: level }];
}

// ---- CEL (the AdmissionPolicy backend) ----

/** Namespace CREATE and UPDATE; `namespaces` without a subresource (not finalize or status). */
export function namespaceWriteRules(): ResourceRule[] {
  return [
    {
      apiGroups: [""],
      apiVersions: ["v1"],
      operations: ["CREATE", "UPDATE"],
      resources: ["namespaces"],
    },
  ];
}

const list = (items: readonly string[]) => `[${items.map(celString).join(", ")}]`;

/** CEL that is true when `selector` selects the labels map `labels` (LabelSelector semantics). */
export function labelSelectorCel(selector: LabelSelector, labels: string): string {
  const terms: string[] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    terms.push(`(${celString(k)} in ${labels} && ${labels}[${celString(k)}] == ${celString(v)})`);
  }
  for (const e of selector.matchExpressions ?? []) {
    const k = celString(e.key);
    const inValues = `(${k} in ${labels} && ${labels}[${k}] in ${list(e.values ?? [])})`;
    terms.push(
      e.operator === "In"
        ? inValues
        : e.operator === "NotIn"
          ? `!${inValues}`
          : e.operator === "Exists"
            ? `(${k} in ${labels})`
            : `!(${k} in ${labels})`,
    );
  }
  return terms.length === 0 ? "true" : terms.join(" && ");
}

const NAME = `(has(object.metadata.name) ? object.metadata.name : "")`;
const NEW_LABELS: CelVariable = {
  name: "newLabels",
  expression: "has(object.metadata.labels) ? object.metadata.labels : {}",
};
/** `oldObject` is null on CREATE. */
const OLD_LABELS: CelVariable = {
  name: "oldLabels",
  expression:
    "oldObject != null && has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}",
};

function changedCel(keys: readonly string[]): string {
  const n = "variables.newLabels";
  const o = "variables.oldLabels";
  return `${list(keys)}.filter(k, (k in ${n}) != (k in ${o}) || (k in ${n} && ${n}[k] != ${o}[k]))`;
}

export interface NamespaceGuardCel {
  matchConstraints: { resourceRules: ResourceRule[] };
  matchConditions: CelMatchCondition[];
  variables: CelVariable[];
  validations: CelValidation[];
}

/**
 * The ValidatingAdmissionPolicy spec (without failurePolicy) of the guard. Its binding selects
 * {@link guardSelector}, never the tenant selector: a binding's namespaceSelector is matched
 * against a Namespace's labels after the request, so a tenant selector would let a request that
 * removes the tenant label slip past.
 */
export function namespaceGuardCel(guard: NamespaceGuard): NamespaceGuardCel {
  const variables: CelVariable[] = [NEW_LABELS, OLD_LABELS];
  let changed = changedCel(guard.guardedLabels);
  if (guard.podSecurityLevel !== undefined) {
    variables.push({
      name: "enforced",
      expression: `!(${NAME} in ${list(guard.excludedNamespaces)}) && ${labelSelectorCel(guard.tenantSelector, "variables.newLabels")}`,
    });
    const pss = changedCel([POD_SECURITY_ENFORCE_LABEL, POD_SECURITY_ENFORCE_VERSION_LABEL]);
    const enforce = celString(POD_SECURITY_ENFORCE_LABEL);
    changed +=
      ` + (variables.enforced ? ${pss}.filter(k, !(k == ${enforce} && k in variables.newLabels && ` +
      `variables.newLabels[k] == ${celString(guard.podSecurityLevel)})) : [])`;
  }
  variables.push({ name: "changed", expression: changed });
  return {
    matchConstraints: { resourceRules: namespaceWriteRules() },
    matchConditions: [
      {
        name: "not-a-platform-group",
        expression: `!(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in ${list(guard.platformGroups)}))`,
      },
    ],
    variables,
    validations: [
      {
        expression: "size(variables.changed) == 0",
        message: `only the groups ${guard.platformGroups.join(", ")} may change the namespace labels ${guard.guardedLabels.join(", ")}`,
        messageExpression:
          `"user \\"" + request.userInfo.username + "\\" may not add, change or remove " + ` +
          `(size(variables.changed) == 1 ? "label " : "labels ") + variables.changed.join(", ") + ` +
          `" on namespace \\"" + ${NAME} + "\\"" + ${celString(guardReason(guard))}`,
        reason: "Forbidden",
      },
    ],
  };
}

export interface PodSecurityMutationCel {
  matchConstraints: { resourceRules: ResourceRule[] };
  matchConditions: CelMatchCondition[];
  mutations: CelMutation[];
  reinvocationPolicy: "Never";
}

/**
 * The MutatingAdmissionPolicy spec (without failurePolicy) that adds the Pod Security enforce
 * label to enforced namespaces that have none. Its binding selects the enforced namespaces
 * ({@link podSecuritySelector}); the name is checked again here because on CREATE the
 * `kubernetes.io/metadata.name` label the selector's exclusion reads is set after mutation.
 */
export function podSecurityMutationCel(guard: NamespaceGuard): PodSecurityMutationCel {
  if (guard.podSecurityLevel === undefined) {
    throw new Error("podSecurityMutationCel needs a Pod Security level");
  }
  const key = celString(POD_SECURITY_ENFORCE_LABEL);
  return {
    matchConstraints: { resourceRules: namespaceWriteRules() },
    matchConditions: [
      {
        name: "not-excluded-namespace",
        expression: `!(${NAME} in ${list(guard.excludedNamespaces)})`,
      },
      {
        name: "pod-security-unset",
        expression: `!has(object.metadata.labels) || !(${key} in object.metadata.labels)`,
      },
    ],
    mutations: [
      {
        patchType: "ApplyConfiguration",
        applyConfiguration: {
          expression: `Object{metadata: Object.metadata{labels: {${key}: ${celString(guard.podSecurityLevel)}}}}`,
        },
      },
    ],
    reinvocationPolicy: "Never",
  };
}

/**
 * The namespaces the guard judges (its webhook's and its policy binding's namespaceSelector):
 * every one but the exclusions, whose enforcement no label changes. Matched against the
 * Namespace's labels at validation, which carry `kubernetes.io/metadata.name` by then.
 */
export function guardSelector(guard: NamespaceGuard): LabelSelector {
  return {
    matchExpressions: [
      { key: NAMESPACE_NAME_LABEL, operator: "NotIn", values: [...guard.excludedNamespaces] },
    ],
  };
}

/** The namespaces that get the Pod Security level: the enforced ones (tenant selector minus exclusions). */
export function podSecuritySelector(guard: NamespaceGuard, rules: EnforcementRules): LabelSelector {
  return tenantNamespaceSelector(rules, guard.tenantSelector);
}
