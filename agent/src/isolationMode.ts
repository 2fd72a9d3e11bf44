/**
 * vNode's node-wide isolation granularity, read from `VNODE_PER_POD` the way the DaemonSet sets
 * it, and written back in exactly the form the runtime's manager process expects.
 */
import { VNODE_PER_POD_ENV } from "../../components/contract";
import { badInput } from "./errors";

/** The two isolation modes; the values are those of the node label `<prefix>/isolation-mode`. */
export const IsolationMode = {
  PerNamespace: "per-namespace",
  PerPod: "per-pod",
} as const;
export type IsolationMode = (typeof IsolationMode)[keyof typeof IsolationMode];

/**
 * Reads `VNODE_PER_POD` from `env`: unset, empty or `false` means per-namespace, `true` means
 * per-pod; case and surrounding whitespace do not matter. Any other value throws a BadInput
 * AgentError naming the variable, the value and the allowed values, before anything is touched.
 */
export function parsePerPod(env: Readonly<Record<string, string | undefined>>): IsolationMode {
  const raw = env[VNODE_PER_POD_ENV];
  const value = (raw ?? "").trim().toLowerCase();
  if (value === "" || value === "false") return IsolationMode.PerNamespace;
  if (value === "true") return IsolationMode.PerPod;
  throw badInput(
    `${VNODE_PER_POD_ENV} must be "true" or "false" (case-insensitive) or unset; got ${JSON.stringify(raw)}.`,
  );
}

/** The `VNODE_PER_POD` value for `mode`, always explicit: `"true"` or `"false"`. */
export function perPodEnvValue(mode: IsolationMode): "true" | "false" {
  return mode === IsolationMode.PerPod ? "true" : "false";
}
