/**
 * Restarts of vNode's manager container, read from the agent's own pod status (kubelet's
 * `containerStatuses[].restartCount` and `lastState.terminated`). Pure: the daemon lists the pod
 * and acts on what these return. Restarting the manager restarts every vNode and workload on the
 * node (vNode's architecture page), so each restart the agent sees is counted and announced.
 */
import type { V1Pod } from "../kube/client";

/** The manager container as kubelet last reported it. */
export interface ManagerContainerState {
  /** kubelet's count; it only grows for the life of the pod. */
  restartCount: number;
  /** How the previous run ended, when kubelet still reports it. */
  lastTermination?: {
    exitCode?: number;
    signal?: number;
    reason?: string;
    finishedAt?: string;
  };
}

/** The container's state in `pod`, or undefined when the pod or its status is not there (yet). */
export function managerStateOf(
  pod: V1Pod | null,
  container: string,
): ManagerContainerState | undefined {
  const status = pod?.status?.containerStatuses?.find((c) => c.name === container);
  if (status === undefined) return undefined;
  const t = status.lastState?.terminated;
  return {
    restartCount: status.restartCount ?? 0,
    ...(t
      ? {
          lastTermination: {
            exitCode: t.exitCode,
            ...(t.signal !== undefined ? { signal: t.signal } : {}),
            ...(t.reason ? { reason: t.reason } : {}),
            ...(t.finishedAt ? { finishedAt: new Date(t.finishedAt).toISOString() } : {}),
          },
        }
      : {}),
  };
}

/**
 * Restarts since the previous look. The first look is the baseline (the agent cannot tell a
 * restart it missed while it was down from one its predecessor already reported), and a lower
 * count means another pod, so a new baseline too.
 */
export function restartsSince(previous: number | undefined, current: number): number {
  if (previous === undefined || current < previous) return 0;
  return current - previous;
}

/** The node Event's message for `count` new restarts. */
export function managerRestartMessage(
  node: string,
  container: string,
  state: ManagerContainerState,
  count: number,
): string {
  const times = count === 1 ? "" : ` ${count} times`;
  const t = state.lastTermination;
  const how =
    t === undefined
      ? ""
      : `; its last run ended with ${[
          t.exitCode !== undefined ? `exit code ${t.exitCode}` : undefined,
          t.signal !== undefined ? `signal ${t.signal}` : undefined,
          t.reason,
          t.finishedAt !== undefined ? `at ${t.finishedAt}` : undefined,
        ]
          .filter((part) => part !== undefined)
          .join(", ")}`;
  return `vNode manager restarted${times} on node ${node} (container ${container}, restart count ${state.restartCount}${how}): every vNode and workload on node ${node} restarted.`;
}
