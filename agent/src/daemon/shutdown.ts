/**
 * The decisions the daemon takes on SIGTERM, as pure functions over Kubernetes objects:
 *
 * - Is the node leaving the runtime? Only when the agent's DaemonSet is gone, being deleted, or
 *   no longer selects the node (its pod template's nodeSelector and required node affinity
 *   against the node's labels and name). Anything else, an unknown answer included, is a
 *   rolling update or a plain pod restart, and the runtime stays: uninstalling restarts
 *   containerd and with it every vNode on the node.
 *   Taints are not considered: the DaemonSet controller adds tolerations to its pods that the
 *   template does not show (not-ready, unreachable, ...), so judging taints from the template
 *   would uninstall on a node that is only briefly unhealthy.
 * - Is another agent taking the node over? When a DaemonSet is replaced by another one (a pool
 *   renamed or added, the component renamed, the namespace changed), Pulumi creates the new one
 *   before it deletes the old, so the node runs two agents for a while, sharing the host's
 *   ledger under the host lock: the new one adopts the install as a rolling update's pod would.
 *   The old agent must then leave the runtime in place; uninstalling would restart containerd
 *   under the new agent and kill every vNode on the node for nothing.
 * - Which pods on the node still use a vNode RuntimeClass. The agent may not read
 *   RuntimeClasses (its RBAC is exactly what it uses), so the classes are named by
 *   `--runtime-classes` (the component passes the ones it creates), or by default recognised
 *   by name: the handler's name itself or `<handler>-...` (`vnode`, `vnode-per-pod`).
 */
import { AGENT_APP_LABEL } from "vnode-contract";
import type { V1DaemonSet, V1Node, V1Pod } from "../kube/client";

/** A node selector requirement, the shape of `V1NodeSelectorRequirement`. */
interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface Verdict {
  leaving: boolean;
  /** One sentence for the log and the Event. */
  reason: string;
}

/** Whether `ds` (null: not found) still runs its pod on `node`. */
export function nodeLeaving(ds: V1DaemonSet | null, node: V1Node, dsName: string): Verdict {
  const nodeName = node.metadata?.name ?? "";
  if (ds === null) {
    return { leaving: true, reason: `DaemonSet ${dsName} no longer exists.` };
  }
  if (ds.metadata?.deletionTimestamp) {
    return { leaving: true, reason: `DaemonSet ${dsName} is being deleted.` };
  }
  const spec = ds.spec?.template?.spec;
  const labels = node.metadata?.labels ?? {};
  for (const [key, value] of Object.entries(spec?.nodeSelector ?? {})) {
    if (labels[key] !== value) {
      return {
        leaving: true,
        reason: `DaemonSet ${dsName} no longer selects node ${nodeName}: its nodeSelector wants ${key}=${value}, the node has ${key in labels ? `${key}=${labels[key]}` : `no label ${key}`}.`,
      };
    }
  }
  const terms =
    spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (terms !== undefined && !terms.some((t) => termMatches(t, labels, nodeName))) {
    return {
      leaving: true,
      reason: `DaemonSet ${dsName} no longer selects node ${nodeName}: no term of its required node affinity matches the node.`,
    };
  }
  return {
    leaving: false,
    reason: `DaemonSet ${dsName} still selects node ${nodeName}: a rolling update or a pod restart, so the runtime stays installed.`,
  };
}

/** A node selector term: every expression holds (an empty term matches nothing, as in k8s). */
function termMatches(
  term: { matchExpressions?: Requirement[]; matchFields?: Requirement[] },
  labels: Record<string, string>,
  nodeName: string,
): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  return (
    exprs.every((r) => requirementHolds(r, labels[r.key])) &&
    // The only field a node selector supports.
    fields.every((r) => r.key === "metadata.name" && requirementHolds(r, nodeName))
  );
}

function requirementHolds(r: Requirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      const have = parseInteger(value);
      const want = parseInteger(values[0]);
      if (have === undefined || want === undefined || values.length !== 1) return false;
      return r.operator === "Gt" ? have > want : have < want;
    }
    default:
      // An operator this code does not know: the API server would have rejected it.
      return false;
  }
}

function parseInteger(s: string | undefined): number | undefined {
  return s !== undefined && /^-?\d+$/.test(s) ? Number(s) : undefined;
}

/** Whether `runtimeClassName` is one of ours: in `classes`, or by name (see the file comment). */
export function isVNodeClass(
  runtimeClassName: string | undefined,
  handler: string,
  classes: readonly string[] | null,
): boolean {
  if (!runtimeClassName) return false;
  if (classes !== null) return classes.includes(runtimeClassName);
  return runtimeClassName === handler || runtimeClassName.startsWith(`${handler}-`);
}

/**
 * `namespace/name` of the pods that still run on a vNode RuntimeClass: not finished
 * (Succeeded/Failed). Terminating pods count: their sandboxes run until kubelet stops them.
 */
export function podsUsingRuntime(
  pods: readonly V1Pod[],
  handler: string,
  classes: readonly string[] | null,
): string[] {
  return pods
    .filter((p) => isVNodeClass(p.spec?.runtimeClassName, handler, classes))
    .filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed")
    .map((p) => `${p.metadata?.namespace ?? ""}/${p.metadata?.name ?? ""}`)
    .sort();
}

/**
 * The agent pod of another DaemonSet on the node, as `namespace/pod (DaemonSet namespace/name)`,
 * or undefined. It counts when it carries the agent label, is controlled by a DaemonSet other than
 * `own`, and is neither finished nor being deleted (a successor that is itself going away is no
 * successor). Whether it is ready yet does not matter: it installs idempotently from the ledger
 * the leaving agent keeps.
 */
export function successorOnNode(
  pods: readonly V1Pod[],
  own: { namespace: string; name: string },
): string | undefined {
  for (const pod of pods) {
    const meta = pod.metadata;
    if (meta?.labels?.[AGENT_APP_LABEL.key] !== AGENT_APP_LABEL.value) continue;
    if (meta.deletionTimestamp) continue;
    if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
    const owner = meta.ownerReferences?.find((o) => o.controller === true);
    if (owner?.kind !== "DaemonSet") continue;
    const namespace = meta.namespace ?? "";
    if (namespace === own.namespace && owner.name === own.name) continue;
    return `${namespace}/${meta.name ?? ""} (DaemonSet ${namespace}/${owner.name})`;
  }
  return undefined;
}
