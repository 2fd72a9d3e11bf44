/**
 * The AdmissionPolicy backend of tenancy enforcement: the CEL of cel.ts as a
 * ValidatingAdmissionPolicy (`admissionregistration.k8s.io/v1`, Kubernetes >= 1.30) and a
 * MutatingAdmissionPolicy (`v1` from Kubernetes 1.36; `v1beta1` on 1.34-1.35 and `v1alpha1` on
 * 1.32-1.33, each behind the kube-apiserver feature gate `MutatingAdmissionPolicy` and its
 * `--runtime-config`), each with a binding whose namespaceSelector is the tenant selector minus the
 * exclusions. No server, no certificate.
 */
import type * as k8s from "@pulumi/kubernetes";
import { MutatingPolicyApiVersion } from "../args";
import type { RuntimePlan } from "../defaults";
import { objectMeta, standardLabels } from "../labels";
import { mutatingPolicyCel, tenantNamespaceSelector, validatingPolicyCel } from "vnode-contract";
import type { EnforcementPlan } from "./plan";

function enforcement(plan: RuntimePlan): EnforcementPlan {
  if (plan.enforcement === undefined) {
    throw new Error("policy builders need enforcement");
  }
  return plan.enforcement;
}

function labels(plan: RuntimePlan): Record<string, string> {
  return { ...standardLabels(plan.name), "app.kubernetes.io/component": "enforcement" };
}

export function buildValidatingAdmissionPolicy(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.ValidatingAdmissionPolicyArgs {
  const e = enforcement(plan);
  return {
    metadata: objectMeta(plan, e.policyName, labels(plan)),
    spec: { failurePolicy: e.failurePolicy.validate, ...validatingPolicyCel(e.rules) },
  };
}

/** `Deny`: a failed validation rejects the pod (not only a warning or an audit annotation). */
export function buildValidatingAdmissionPolicyBinding(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.ValidatingAdmissionPolicyBindingArgs {
  const e = enforcement(plan);
  return {
    metadata: objectMeta(plan, e.policyName, labels(plan)),
    spec: {
      policyName: e.policyName,
      validationActions: ["Deny"],
      matchResources: { namespaceSelector: tenantNamespaceSelector(e.rules, e.tenantSelector) },
    },
  };
}

/** The policy's args; its apiVersion is set by the Pulumi class of `mutatingPolicyApiVersion`. */
export function buildMutatingAdmissionPolicy(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.MutatingAdmissionPolicyArgs {
  const e = enforcement(plan);
  return {
    metadata: objectMeta(plan, e.policyName, labels(plan)),
    spec: { failurePolicy: e.failurePolicy.mutate, ...mutatingPolicyCel(e.rules) },
  };
}

/** One binding: the policy's CEL reads the namespace's isolation label itself. */
export function buildMutatingAdmissionPolicyBinding(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.MutatingAdmissionPolicyBindingArgs {
  const e = enforcement(plan);
  return {
    metadata: objectMeta(plan, e.policyName, labels(plan)),
    spec: {
      policyName: e.policyName,
      matchResources: { namespaceSelector: tenantNamespaceSelector(e.rules, e.tenantSelector) },
    },
  };
}

/** The Pulumi classes of the MutatingAdmissionPolicy and its binding for an API version. */
export function mutatingPolicyClasses(
  k8sModule: typeof k8s,
  version: MutatingPolicyApiVersion,
): {
  Policy: typeof k8s.admissionregistration.v1.MutatingAdmissionPolicy;
  Binding: typeof k8s.admissionregistration.v1.MutatingAdmissionPolicyBinding;
} {
  // The three versions share the spec's shape; only apiVersion differs.
  const group = {
    [MutatingPolicyApiVersion.V1]: k8sModule.admissionregistration.v1,
    [MutatingPolicyApiVersion.V1beta1]: k8sModule.admissionregistration.v1beta1,
    [MutatingPolicyApiVersion.V1alpha1]: k8sModule.admissionregistration.v1alpha1,
  }[version] as unknown as typeof k8s.admissionregistration.v1;
  return { Policy: group.MutatingAdmissionPolicy, Binding: group.MutatingAdmissionPolicyBinding };
}
