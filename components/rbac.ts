/**
 * The agent's identity and permissions: exactly the API calls listed in the contract, nothing more.
 * Node, Event and Pod calls are cluster-scoped (ClusterRole); reading its own DaemonSets is
 * namespaced (Role), restricted to this component's DaemonSets by name.
 */
import type * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import {
  AGENT_CLUSTER_RULES,
  AGENT_NAMESPACE_RULES,
  agentNodePolicyCel,
  serviceAccountUsername,
} from "vnode-contract";
import { AgentConfinement } from "./args";
import type { KnownNamespacePlan, RuntimePlan } from "./defaults";
import { namespacedMeta, objectMeta } from "./labels";

const RBAC_GROUP = "rbac.authorization.k8s.io";

export function buildServiceAccount(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.core.v1.ServiceAccountArgs {
  return { metadata: namespacedMeta(plan, plan.agentName, namespace) };
}

export function buildClusterRole(plan: RuntimePlan): k8s.rbac.v1.ClusterRoleArgs {
  return {
    metadata: objectMeta(plan, plan.agentName),
    rules: AGENT_CLUSTER_RULES.map((rule) => ({
      apiGroups: [...rule.apiGroups],
      resources: [...rule.resources],
      verbs: [...rule.verbs],
    })),
  };
}

export function buildClusterRoleBinding(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.rbac.v1.ClusterRoleBindingArgs {
  return {
    metadata: objectMeta(plan, plan.agentName),
    roleRef: { apiGroup: RBAC_GROUP, kind: "ClusterRole", name: plan.agentName },
    subjects: [{ kind: "ServiceAccount", name: plan.agentName, namespace }],
  };
}

export function buildRole(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.rbac.v1.RoleArgs {
  return {
    metadata: namespacedMeta(plan, plan.agentName, namespace),
    rules: AGENT_NAMESPACE_RULES.map((rule) => ({
      apiGroups: [...rule.apiGroups],
      resources: [...rule.resources],
      resourceNames: plan.pools.map((pool) => pool.daemonSetName),
      verbs: [...rule.verbs],
    })),
  };
}

export function buildRoleBinding(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.rbac.v1.RoleBindingArgs {
  return {
    metadata: namespacedMeta(plan, plan.agentName, namespace),
    roleRef: { apiGroup: RBAC_GROUP, kind: "Role", name: plan.agentName },
    subjects: [{ kind: "ServiceAccount", name: plan.agentName, namespace }],
  };
}

/** Name of the ValidatingAdmissionPolicy (and binding) that confines the agent's node writes. */
export function agentNodePolicyName(plan: RuntimePlan): string {
  return `${plan.agentName}-node-writes`;
}

/**
 * The policy that lets the agent's ServiceAccount change only its own node's vNode labels
 * (contract/src/agentPolicy.ts); undefined with `agentConfinement: none`. `Fail`: a node write
 * by the agent that cannot be judged is refused, and the agent retries it.
 */
export function buildAgentNodePolicy(
  plan: KnownNamespacePlan,
): k8s.admissionregistration.v1.ValidatingAdmissionPolicyArgs | undefined {
  if (plan.agentConfinement === AgentConfinement.None) return undefined;
  return {
    metadata: objectMeta(plan, agentNodePolicyName(plan)),
    spec: {
      failurePolicy: "Fail",
      ...agentNodePolicyCel(
        serviceAccountUsername(plan.namespace, plan.agentName),
        plan.agentConfinement,
      ),
    },
  };
}

export function buildAgentNodePolicyBinding(
  plan: RuntimePlan,
): k8s.admissionregistration.v1.ValidatingAdmissionPolicyBindingArgs {
  const name = agentNodePolicyName(plan);
  return {
    metadata: objectMeta(plan, name),
    spec: { policyName: name, validationActions: ["Deny"] },
  };
}
