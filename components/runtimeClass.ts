/** The RuntimeClasses pods select vNode with, one per isolation mode in use. */
import type * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import { ISOLATION_MODE_LABEL, RUNTIME_LABEL, RuntimeState } from "vnode-contract";
import type { RuntimeClassPlan, RuntimePlan } from "./defaults";
import { objectMeta } from "./labels";
import { deriveInput } from "./validate/known";

/**
 * `scheduling.nodeSelector` requires the label the agent sets once it verified the handler live on
 * a node, and the node's mode, so a pod never lands on a node without a working runtime nor on a
 * node of the other mode. The scheduler merges it into every pod using the class.
 */
export function buildRuntimeClass(
  plan: RuntimePlan,
  runtimeClass: RuntimeClassPlan,
): k8s.node.v1.RuntimeClassArgs {
  const args: k8s.node.v1.RuntimeClassArgs = {
    metadata: objectMeta(plan, runtimeClass.name, {
      [ISOLATION_MODE_LABEL]: runtimeClass.isolationMode,
    }),
    handler: plan.handler,
    scheduling: {
      nodeSelector: {
        [RUNTIME_LABEL]: RuntimeState.Ready,
        [ISOLATION_MODE_LABEL]: runtimeClass.isolationMode,
      },
      ...tolerationsField(runtimeClass.tolerations),
    },
  };
  if (runtimeClass.podFixed !== undefined) {
    args.overhead = { podFixed: { ...runtimeClass.podFixed } };
  }
  return args;
}

/** `tolerations` when there are any (known now, or once they resolve), else nothing. */
function tolerationsField(tolerations: pulumi.Input<k8s.types.input.core.v1.Toleration[]>): {
  tolerations?: pulumi.Input<k8s.types.input.core.v1.Toleration[]>;
} {
  const some = deriveInput(tolerations, (list) => (list.length > 0 ? list : undefined));
  return some === undefined
    ? {}
    : { tolerations: some as pulumi.Input<k8s.types.input.core.v1.Toleration[]> };
}
