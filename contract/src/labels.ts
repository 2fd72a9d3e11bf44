/** Node and namespace labels the agent sets and the component selects on. */

/** Prefix of every node label and annotation the agent owns. */
export const LABEL_PREFIX = "vnode.loft.sh";

/** Node label with the runtime's state on that node; see {@link RuntimeState}. */
export const RUNTIME_LABEL = `${LABEL_PREFIX}/runtime`;

/** Node label with the node's isolation mode (`per-namespace` or `per-pod`). */
export const ISOLATION_MODE_LABEL = `${LABEL_PREFIX}/isolation-mode`;

/** Values of {@link RUNTIME_LABEL}. Only `ready` admits vNode pods. */
export const RuntimeState = {
  Installing: "installing",
  Ready: "ready",
  Failed: "failed",
  Uninstalling: "uninstalling",
} as const;
export type RuntimeState = (typeof RuntimeState)[keyof typeof RuntimeState];

/**
 * Namespace label that picks the isolation mode (`per-namespace` or `per-pod`) of a tenant
 * namespace's pods under tenancy enforcement. Unset or another value: the default mode.
 */
export const NAMESPACE_ISOLATION_LABEL = `${LABEL_PREFIX}/isolation`;

/**
 * Namespace label that exempts a namespace from tenancy enforcement under the scope
 * `all-except-exempt` (value `true`; any other value is enforced). Only the platform groups of the
 * namespace label guard may set it.
 */
export const ENFORCEMENT_EXEMPT_LABEL = `${LABEL_PREFIX}/enforcement-exempt`;

/**
 * The label every agent pod carries (with every object of the component). An agent that leaves a
 * node looks for another agent pod with it there, to hand the runtime over instead of
 * uninstalling it (agent/src/daemon/shutdown.ts `successorOnNode`).
 */
export const AGENT_APP_LABEL = { key: "app.kubernetes.io/name", value: "vnode-agent" } as const;
