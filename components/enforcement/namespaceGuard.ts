/**
 * The namespace side of tenancy enforcement as Kubernetes objects: the namespace label guard and the
 * Pod Security labelling of enforced namespaces (contract/src/enforcement/namespaceGuard.ts), as a
 * ValidatingAdmissionPolicy and a MutatingAdmissionPolicy with backend `admission-policy`, or as
 * webhook configurations that route namespace CREATE/UPDATE to `vnode-agent webhook` with backend
 * `webhook`. Both judge the same table of cases (test/agent/namespace-guard.test.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import {
  guardSelector,
  LABEL_PREFIX,
  NAMESPACE_WEBHOOK_PATHS,
  type NamespaceGuard,
  namespaceGuardCel,
  namespaceWriteRules,
  podSecurityMutationCel,
  podSecuritySelector,
} from "vnode-contract";
import type { RuntimePlan } from "../defaults";
import { objectMeta, standardLabels } from "../labels";
import { namespaceWebhookName } from "../names";
import type { EnforcementPlan } from "./plan";
import { configurationMeta, WEBHOOK_SERVICE_PORT, webhookPlan } from "./webhook";

function guarded(plan: RuntimePlan): { e: EnforcementPlan; guard: NamespaceGuard } {
  const e = plan.enforcement;
  if (e?.namespaceGuard === undefined) {
    throw new Error("namespace guard builders need enforcement with the namespace label guard");
  }
  return { e, guard: e.namespaceGuard };
}

function labels(plan: RuntimePlan): Record<string, string> {
  return { ...standardLabels(plan.name), "app.kubernetes.io/component": "enforcement" };
}

/** The guard's failure policy is validation's: a guard that fails open is no guard. */
export function buildNamespaceGuardPolicy(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.ValidatingAdmissionPolicyArgs {
  const { e, guard } = guarded(plan);
  return {
    metadata: objectMeta(plan, e.namespaceGuardPolicyName, labels(plan)),
    spec: { failurePolicy: e.failurePolicy.validate, ...namespaceGuardCel(guard) },
  };
}

/** Every namespace but the exclusions, never the tenant selector (see `guardSelector`). */
export function buildNamespaceGuardPolicyBinding(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.ValidatingAdmissionPolicyBindingArgs {
  const { e, guard } = guarded(plan);
  return {
    metadata: objectMeta(plan, e.namespaceGuardPolicyName, labels(plan)),
    spec: {
      policyName: e.namespaceGuardPolicyName,
      validationActions: ["Deny"],
      matchResources: { namespaceSelector: guardSelector(guard) },
    },
  };
}

/** The Pod Security mutation; its apiVersion is set by the class of `mutatingPolicyApiVersion`. */
export function buildPodSecurityPolicy(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.MutatingAdmissionPolicyArgs {
  const { e, guard } = guarded(plan);
  return {
    metadata: objectMeta(plan, e.podSecurityPolicyName, labels(plan)),
    spec: { failurePolicy: e.failurePolicy.mutate, ...podSecurityMutationCel(guard) },
  };
}

export function buildPodSecurityPolicyBinding(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.MutatingAdmissionPolicyBindingArgs {
  const { e, guard } = guarded(plan);
  return {
    metadata: objectMeta(plan, e.podSecurityPolicyName, labels(plan)),
    spec: {
      policyName: e.podSecurityPolicyName,
      matchResources: { namespaceSelector: podSecuritySelector(guard, e.rules) },
    },
  };
}

function namespaceEntry(plan: RuntimePlan, namespace: pulumi.Input<string>, path: string) {
  const { w } = webhookPlan(plan);
  return {
    admissionReviewVersions: ["v1"],
    sideEffects: "None",
    timeoutSeconds: w.timeoutSeconds,
    matchPolicy: "Equivalent",
    rules: namespaceWriteRules().map((rule) => ({ ...rule, scope: "Cluster" })),
    clientConfig: { service: { name: w.name, namespace, path, port: WEBHOOK_SERVICE_PORT } },
  };
}

/** The guard route: namespace CREATE/UPDATE of every namespace but the exclusions. */
export function buildNamespaceValidatingWebhookConfiguration(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.admissionregistration.v1.ValidatingWebhookConfigurationArgs {
  const { e, guard } = guarded(plan);
  const { w } = webhookPlan(plan);
  return {
    metadata: { ...configurationMeta(plan, w, namespace), name: namespaceWebhookName(plan.name) },
    webhooks: [
      {
        name: `namespace-labels.validate.${LABEL_PREFIX}`,
        ...namespaceEntry(plan, namespace, NAMESPACE_WEBHOOK_PATHS.guard),
        failurePolicy: e.failurePolicy.validate,
        namespaceSelector: guardSelector(guard),
      },
    ],
  };
}

/** The Pod Security route: namespace CREATE/UPDATE of the enforced namespaces. */
export function buildNamespaceMutatingWebhookConfiguration(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.admissionregistration.v1.MutatingWebhookConfigurationArgs {
  const { e, guard } = guarded(plan);
  const { w } = webhookPlan(plan);
  return {
    metadata: { ...configurationMeta(plan, w, namespace), name: namespaceWebhookName(plan.name) },
    webhooks: [
      {
        name: `pod-security.mutate.${LABEL_PREFIX}`,
        ...namespaceEntry(plan, namespace, NAMESPACE_WEBHOOK_PATHS.podSecurity),
        failurePolicy: e.failurePolicy.mutate,
        reinvocationPolicy: "Never",
        namespaceSelector: podSecuritySelector(guard, e.rules),
      },
    ],
  };
}
