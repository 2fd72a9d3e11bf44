/** Labels and annotations the component puts on what it creates. */
import type * as pulumi from "@pulumi/pulumi";
import { AGENT_APP_LABEL, LABEL_PREFIX } from "vnode-contract";
import type { RuntimePlan } from "./defaults";
import { mergeMaps } from "./validate/known";

/** Pod label with the agent's pool; part of each DaemonSet's selector. */
export const POOL_LABEL = `${LABEL_PREFIX}/pool`;

/** Pod Security Admission labels of the runtime namespace: the agent mounts host paths. */
export const POD_SECURITY_LABELS: Record<string, string> = {
  "pod-security.kubernetes.io/enforce": "privileged",
  "pod-security.kubernetes.io/audit": "privileged",
  "pod-security.kubernetes.io/warn": "privileged",
};

/** Labels on every object of a component named `name`. */
export function standardLabels(name: string): Record<string, string> {
  return {
    [AGENT_APP_LABEL.key]: AGENT_APP_LABEL.value,
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/part-of": "vnode",
    "app.kubernetes.io/managed-by": "pulumi",
  };
}

/** The immutable selector of a pool's DaemonSet (and of the PodMonitor, without the pool). */
export function selectorLabels(name: string, pool?: string): Record<string, string> {
  const labels: Record<string, string> = {
    [AGENT_APP_LABEL.key]: AGENT_APP_LABEL.value,
    "app.kubernetes.io/instance": name,
  };
  if (pool !== undefined) {
    labels[POOL_LABEL] = pool;
  }
  return labels;
}

/** Keys the user's `labels` must not override. */
export const RESERVED_LABEL_KEYS: readonly string[] = [
  ...Object.keys(standardLabels("x")),
  POOL_LABEL,
];

/**
 * The user's labels under the component's own (`own` goes last, so it wins): plain when every map
 * is known, an Output otherwise.
 */
export function withUserLabels(
  plan: Pick<RuntimePlan, "labels">,
  own: Record<string, string>,
): pulumi.Input<Record<string, string>> {
  return mergeMaps(plan.labels, own) as pulumi.Input<Record<string, string>>;
}

/** The user's annotations and `extra`, or undefined when both are empty. */
export function withUserAnnotations(
  plan: Pick<RuntimePlan, "annotations">,
  extra: Record<string, string> = {},
): pulumi.Input<Record<string, string>> | undefined {
  return mergeMaps(plan.annotations, extra) as pulumi.Input<Record<string, string>> | undefined;
}

/** `metadata` of a cluster-scoped object: the user's labels/annotations under the component's own. */
export function objectMeta(
  plan: Pick<RuntimePlan, "name" | "labels" | "annotations">,
  objectName: pulumi.Input<string>,
  extraLabels: Record<string, string> = {},
): ObjectMeta {
  const meta: ObjectMeta = {
    name: objectName,
    labels: withUserLabels(plan, { ...standardLabels(plan.name), ...extraLabels }),
  };
  const annotations = withUserAnnotations(plan);
  if (annotations !== undefined) {
    meta.annotations = annotations;
  }
  return meta;
}

/** `metadata` of a namespaced object. */
export function namespacedMeta(
  plan: Pick<RuntimePlan, "name" | "labels" | "annotations">,
  objectName: string,
  namespace: pulumi.Input<string>,
  extraLabels: Record<string, string> = {},
): ObjectMeta & { namespace: pulumi.Input<string> } {
  const { name, ...rest } = objectMeta(plan, objectName, extraLabels);
  return { name, namespace, ...rest };
}

/** The metadata fields the builders set; labels and annotations may come from other resources. */
export interface ObjectMeta {
  name: pulumi.Input<string>;
  labels: pulumi.Input<Record<string, string>>;
  annotations?: pulumi.Input<Record<string, string>>;
}
