/** The runtime's namespace. */
import type * as k8s from "@pulumi/kubernetes";
import type { RuntimePlan } from "./defaults";
import { POD_SECURITY_LABELS, objectMeta } from "./labels";

/**
 * The agent mounts host paths (and may share the host PID namespace), which Pod Security's
 * `baseline` forbids, so its own namespace, and only it, is `privileged`.
 */
export function buildNamespace(plan: RuntimePlan): k8s.core.v1.NamespaceArgs {
  return { metadata: objectMeta(plan, plan.namespace, POD_SECURITY_LABELS) };
}
