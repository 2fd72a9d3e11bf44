/** The agent's Kubernetes API calls, which are exactly the RBAC the component grants. */

/**
 * Every Kubernetes API call the agent makes. The component grants exactly these verbs and a
 * test checks that the agent's client uses no other, so RBAC stays least-privilege.
 */
export const AGENT_CLUSTER_RULES = [
  { apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch", "watch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
] as const;

/** Namespaced calls: the agent reads its own DaemonSets to tell a rollout from a removal. */
export const AGENT_NAMESPACE_RULES = [
  { apiGroups: ["apps"], resources: ["daemonsets"], verbs: ["get"] },
] as const;
