/**
 * One table of namespace cases for both backends of the namespace label guard and the Pod Security
 * labelling: the webhook's `/namespaces/mutate` then `/namespaces/validate`, and the CEL
 * MutatingAdmissionPolicy then ValidatingAdmissionPolicy (test/agent/namespace-guard.test.ts).
 * Each case gives who asks (username, groups), the namespace's labels before (none for a CREATE)
 * and as sent, and expects exactly the Pod Security value the mutation adds and the denial.
 *
 * Labels as the API server has them at validation time: on CREATE and UPDATE it sets
 * `kubernetes.io/metadata.name` to the name itself (KEP-2161), after mutating admission and before
 * validating admission, so the cases' validated objects carry it.
 */
import type { EnforcementRulesInput, LabelSelector } from "vnode-contract";

export const GUARD_RULES: EnforcementRulesInput = {
  classes: { "per-namespace": "vnode", "per-pod": "vnode-per-pod" },
  defaultMode: "per-namespace",
  excludedNamespaces: ["vnode-runtime"],
};

export interface GuardSetup {
  scope: "selected" | "all-except-exempt";
  selector?: LabelSelector;
  platformGroups: string[];
  podSecurityLevel?: string;
}

export interface NamespaceCase {
  name: string;
  setup?: Partial<GuardSetup>;
  namespace: string;
  operation?: "CREATE" | "UPDATE";
  subResource?: string;
  user: { username: string; groups?: string[] };
  /** Labels before an UPDATE (without kubernetes.io/metadata.name). */
  before?: Record<string, string>;
  /** Labels as sent (without kubernetes.io/metadata.name); undefined: no labels field. */
  after?: Record<string, string>;
  /** The Pod Security enforce value the mutation adds, or null. */
  podSecurityAdded: string | null;
  /** The exact denial, or null. */
  denied: string | null;
}

export const BASE_SETUP: GuardSetup = {
  scope: "selected",
  selector: { matchLabels: { tenant: "true" } },
  platformGroups: ["platform-admins"],
};

const ALICE = {
  username: "alice",
  groups: ["tenants", "system:authenticated"],
};
const PLATFORM = { username: "bob", groups: ["platform-admins", "system:authenticated"] };
const MASTERS = {
  username: "kubernetes-admin",
  groups: ["system:masters", "system:authenticated"],
};
const PULUMI = { username: "pulumi-deployer", groups: ["system:authenticated"] };
const reserved =
  ": the labels that decide vNode enforcement are reserved to the groups platform-admins, system:masters";
const PSS = "pod-security.kubernetes.io/enforce";
const PSS_VERSION = "pod-security.kubernetes.io/enforce-version";
const ISO = "vnode.loft.sh/isolation";
const EXEMPT = "vnode.loft.sh/enforcement-exempt";
const restricted = { podSecurityLevel: "restricted" };

export const NAMESPACE_CASES: NamespaceCase[] = [
  {
    name: "a tenant removes the selector's label: denied",
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true", owner: "alice" },
    after: { owner: "alice" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label tenant on namespace "team-a"${reserved}`,
  },
  {
    name: "a tenant sets the isolation label of a shared per-pod namespace: denied",
    namespace: "ci-builds",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true", [ISO]: "per-pod" },
    after: { tenant: "true", [ISO]: "per-namespace" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label ${ISO} on namespace "ci-builds"${reserved}`,
  },
  {
    name: "a tenant changes two guarded labels: both named, in key order",
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true" },
    after: { tenant: "false", [ISO]: "per-pod" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove labels tenant, ${ISO} on namespace "team-a"${reserved}`,
  },
  {
    name: "a tenant changes an unrelated label: allowed",
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true", owner: "alice" },
    after: { tenant: "true", owner: "carol" },
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "a platform group member removes the selector's label: allowed",
    namespace: "team-a",
    operation: "UPDATE",
    user: PLATFORM,
    before: { tenant: "true" },
    after: {},
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "system:masters changes the isolation label: allowed",
    namespace: "team-a",
    operation: "UPDATE",
    user: MASTERS,
    before: { tenant: "true" },
    after: { tenant: "true", [ISO]: "per-pod" },
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "a tenant creates a namespace with the selector's label: denied (platform enrols)",
    namespace: "team-new",
    user: ALICE,
    after: { tenant: "true" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label tenant on namespace "team-new"${reserved}`,
  },
  {
    name: "a tenant creates a namespace without guarded labels (the API server's name label is no change): allowed",
    namespace: "scratch",
    user: ALICE,
    after: { owner: "alice" },
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "a user without any group: judged like a tenant",
    namespace: "team-a",
    operation: "UPDATE",
    user: { username: "system:anonymous" },
    before: { tenant: "true" },
    after: {},
    podSecurityAdded: null,
    denied: `user "system:anonymous" may not add, change or remove label tenant on namespace "team-a"${reserved}`,
  },
  {
    name: "the status subresource is not judged",
    namespace: "team-a",
    operation: "UPDATE",
    subResource: "status",
    user: ALICE,
    before: { tenant: "true" },
    after: {},
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "an excluded namespace is not judged: its labels decide nothing",
    namespace: "kube-system",
    operation: "UPDATE",
    user: {
      username: "system:serviceaccount:kube-system:labeller",
      groups: ["system:serviceaccounts"],
    },
    before: {},
    after: { tenant: "true" },
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "selected: a tenant pre-sets the exempt label: denied (a later switch to all-except-exempt would honour it)",
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true" },
    after: { tenant: "true", [EXEMPT]: "true" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label ${EXEMPT} on namespace "team-a"${reserved}`,
  },
  {
    name: "all-except-exempt: a tenant exempts a namespace at creation: denied",
    setup: { scope: "all-except-exempt", selector: undefined },
    namespace: "sneaky",
    user: ALICE,
    after: { [EXEMPT]: "true" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label ${EXEMPT} on namespace "sneaky"${reserved}`,
  },
  {
    name: "all-except-exempt: the old selector key is not guarded any more",
    setup: { scope: "all-except-exempt", selector: undefined },
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true" },
    after: {},
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "all-except-exempt + restricted: a tenant's new namespace is enforced and labelled",
    setup: { scope: "all-except-exempt", selector: undefined, ...restricted },
    namespace: "fresh",
    user: ALICE,
    after: { owner: "alice" },
    podSecurityAdded: "restricted",
    denied: null,
  },
  {
    name: "all-except-exempt + restricted: a platform-exempted namespace is not labelled",
    setup: { scope: "all-except-exempt", selector: undefined, ...restricted },
    namespace: "ingress-nginx",
    user: PLATFORM,
    after: { [EXEMPT]: "true" },
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "restricted: a tenant updates an unlabelled enforced namespace; the label is added",
    setup: restricted,
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true" },
    after: { tenant: "true", owner: "alice" },
    podSecurityAdded: "restricted",
    denied: null,
  },
  {
    name: "restricted: a tenant lowers the level to privileged: denied",
    setup: restricted,
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true", [PSS]: "restricted" },
    after: { tenant: "true", [PSS]: "privileged" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label ${PSS} on namespace "team-a"${reserved}`,
  },
  {
    name: "restricted: a tenant removes the level; the mutation puts it back: allowed",
    setup: restricted,
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true", [PSS]: "restricted" },
    after: { tenant: "true" },
    podSecurityAdded: "restricted",
    denied: null,
  },
  {
    name: "restricted: a tenant pins an older profile version: denied",
    setup: restricted,
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true", [PSS]: "restricted" },
    after: { tenant: "true", [PSS]: "restricted", [PSS_VERSION]: "v1.22" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label ${PSS_VERSION} on namespace "team-a"${reserved}`,
  },
  {
    name: "restricted: baseline set by a tenant: denied",
    setup: restricted,
    namespace: "team-a",
    operation: "UPDATE",
    user: ALICE,
    before: { tenant: "true" },
    after: { tenant: "true", [PSS]: "baseline" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label ${PSS} on namespace "team-a"${reserved}`,
  },
  {
    name: "restricted: a platform member sets privileged on an enforced namespace: kept",
    setup: restricted,
    namespace: "team-gpu",
    operation: "UPDATE",
    user: PLATFORM,
    before: { tenant: "true", [PSS]: "restricted" },
    after: { tenant: "true", [PSS]: "privileged" },
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "restricted: Pod Security labels of a namespace that is not enforced are not guarded",
    setup: restricted,
    namespace: "monitoring",
    operation: "UPDATE",
    user: ALICE,
    before: {},
    after: { [PSS]: "privileged" },
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "restricted: the runtime's namespace (excluded) is created privileged by the deployer",
    setup: restricted,
    namespace: "vnode-runtime",
    user: PULUMI,
    after: { [PSS]: "privileged", "pod-security.kubernetes.io/audit": "privileged" },
    podSecurityAdded: null,
    denied: null,
  },
  {
    name: "restricted: a namespace created without any labels field gets one",
    setup: { ...restricted, scope: "all-except-exempt", selector: undefined },
    namespace: "bare",
    user: ALICE,
    after: undefined,
    podSecurityAdded: "restricted",
    denied: null,
  },
  {
    name: "baseline, set-based selector: In and DoesNotExist both hold",
    setup: {
      podSecurityLevel: "baseline",
      selector: {
        matchExpressions: [
          { key: "tier", operator: "In", values: ["gold", "silver"] },
          { key: "legacy", operator: "DoesNotExist" },
        ],
      },
    },
    namespace: "shop",
    operation: "UPDATE",
    user: ALICE,
    before: { tier: "gold" },
    after: { tier: "gold", owner: "alice" },
    podSecurityAdded: "baseline",
    denied: null,
  },
  {
    name: "baseline, set-based selector: a tenant adds the DoesNotExist key: denied, not labelled",
    setup: {
      podSecurityLevel: "baseline",
      selector: {
        matchExpressions: [
          { key: "tier", operator: "In", values: ["gold", "silver"] },
          { key: "legacy", operator: "DoesNotExist" },
        ],
      },
    },
    namespace: "shop",
    operation: "UPDATE",
    user: ALICE,
    before: { tier: "gold", [PSS]: "baseline" },
    after: { tier: "gold", legacy: "yes", [PSS]: "baseline" },
    podSecurityAdded: null,
    denied: `user "alice" may not add, change or remove label legacy on namespace "shop"${reserved}`,
  },
];

/** The Namespace object as the API server has it; `withNameLabel` once past mutating admission. */
export function namespaceObject(
  name: string,
  labels: Record<string, string> | undefined,
  withNameLabel: boolean,
) {
  const all =
    labels === undefined && !withNameLabel
      ? undefined
      : { ...(labels ?? {}), ...(withNameLabel ? { "kubernetes.io/metadata.name": name } : {}) };
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, ...(all !== undefined ? { labels: all } : {}) },
    spec: { finalizers: ["kubernetes"] },
    status: { phase: "Active" },
  };
}

/** The AdmissionReview v1 the API server sends for the case, with `object` as given. */
export function namespaceReview(c: NamespaceCase, object: unknown, oldObject: unknown) {
  const operation = c.operation ?? "CREATE";
  const resource = { group: "", version: "v1", resource: "namespaces" };
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "2b9f5a1e-0c3d-4e5f-8a7b-6c5d4e3f2a10",
      kind: { group: "", version: "v1", kind: "Namespace" },
      resource,
      ...(c.subResource ? { subResource: c.subResource } : {}),
      requestKind: { group: "", version: "v1", kind: "Namespace" },
      requestResource: resource,
      name: c.namespace,
      namespace: c.namespace,
      operation,
      userInfo: {
        username: c.user.username,
        uid: "5c0e2f4a-1b3d-4c5e-9f7a-8b6c4d2e0f13",
        ...(c.user.groups ? { groups: c.user.groups } : {}),
      },
      object,
      oldObject,
      dryRun: false,
      options: {
        apiVersion: "meta.k8s.io/v1",
        kind: operation === "UPDATE" ? "UpdateOptions" : "CreateOptions",
      },
    },
  };
}
