/** The node's isolation mode as the agent reads it: `VNODE_PER_POD`, decoded by the contract. */
import { type IsolationMode, VNODE_PER_POD_ENV, parsePerPod } from "vnode-contract";
import { badInput } from "./errors";

/** Reads `VNODE_PER_POD` from `env`; a bad value is a BadInput error, before anything is touched. */
export function modeFromEnv(env: Readonly<Record<string, string | undefined>>): IsolationMode {
  const parsed = parsePerPod(env[VNODE_PER_POD_ENV]);
  if ("error" in parsed) throw badInput(parsed.error);
  return parsed.mode;
}
