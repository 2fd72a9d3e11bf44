/**
 * vNode's node-wide isolation granularity and its one encoding: the env var `VNODE_PER_POD` that
 * vNode's manager reads. The component writes it, the agent and the manager read it.
 */

/** The isolation modes; the values are those of the node label and the namespace label. */
export const IsolationMode = {
  PerNamespace: "per-namespace",
  PerPod: "per-pod",
} as const;
export type IsolationMode = (typeof IsolationMode)[keyof typeof IsolationMode];

/** Every mode, in order: per-namespace (the default) first. */
export const ISOLATION_MODES: readonly IsolationMode[] = Object.values(IsolationMode);

export const isIsolationMode = (value: unknown): value is IsolationMode =>
  (ISOLATION_MODES as readonly unknown[]).includes(value);

/** The env var that sets vNode's node-wide isolation granularity. */
export const VNODE_PER_POD_ENV = "VNODE_PER_POD";

/** The `VNODE_PER_POD` value for `mode`, always explicit: `"true"` or `"false"`. */
export function encodePerPod(mode: IsolationMode): "true" | "false" {
  return mode === IsolationMode.PerPod ? "true" : "false";
}

/**
 * Reads a `VNODE_PER_POD` value: unset, empty or `false` means per-namespace, `true` per-pod;
 * case and surrounding whitespace do not matter. Anything else is an error whose message names
 * the variable, the value and the allowed values.
 */
export function parsePerPod(raw: string | undefined): { mode: IsolationMode } | { error: string } {
  const value = (raw ?? "").trim().toLowerCase();
  if (value === "" || value === "false") return { mode: IsolationMode.PerNamespace };
  if (value === "true") return { mode: IsolationMode.PerPod };
  return {
    error: `${VNODE_PER_POD_ENV} must be "true" or "false" (case-insensitive) or unset; got ${JSON.stringify(raw)}.`,
  };
}
