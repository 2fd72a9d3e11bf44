/**
 * Validation of `VNodeRuntimeArgs`, before any resource is registered. Args arrive from
 * TypeScript, from YAML stack config and from other languages through the provider, so nothing is
 * trusted: every check names the argument, the bad value and what is allowed, in one sentence
 * (`./errors`). One module per subject; this one only walks the arguments. Arguments that may come
 * from another resource are checked now when known and on resolution otherwise (`./known`).
 */
import type * as pulumi from "@pulumi/pulumi";
import { CONTAINERD_DISTRIBUTIONS } from "vnode-contract";
import {
  AgentConfinement,
  ContainerdDistribution,
  IsolationMode,
  RestartStrategy,
  VNodeRuntimeArgs,
} from "../args";
import { DEFAULTS } from "../defaults";
import { checkEnforcement } from "./enforcement";
import { checkEnv } from "./env";
import { mustBe } from "./errors";
import { checkAgentImage, checkAgentImageRef, checkVNodeImage } from "./image";
import { checkAnnotations, checkLabels, checkReservedLabels } from "./labels";
import { checkManager } from "./manager";
import { checkMetrics } from "./metrics";
import { whenKnown } from "./known";
import {
  checkComponentName,
  checkDnsLabel,
  checkDnsSubdomain,
  checkNamespaceFlags,
  checkNamespaceName,
} from "./names";
import { checkQuantities, checkResources, checkTolerations } from "./podSpec";
import { checkPools } from "./pools";
import { checkRollout, checkUpdateStrategy } from "./rollout";
import {
  checkBoolean,
  checkEnum,
  checkFields,
  checkInteger,
  checkObject,
  isObject,
} from "./values";

export { VNodeRuntimeArgsError, show } from "./errors";

const TOP_LEVEL_FIELDS = [
  "agentImage",
  "vnodeImage",
  "isolationMode",
  "namespace",
  "createNamespace",
  "retainNamespace",
  "runtimeClassName",
  "perPodRuntimeClassName",
  "handler",
  "containerdDistribution",
  "restartStrategy",
  "nodeSelector",
  "tolerations",
  "affinity",
  "priorityClassName",
  "resources",
  "manager",
  "updateStrategy",
  "rollout",
  "terminationGracePeriodSeconds",
  "forceUninstall",
  "overhead",
  "runtimeClassTolerations",
  "pools",
  "env",
  "labels",
  "annotations",
  "metrics",
  "agentConfinement",
  "enforcement",
  "certManager",
];

/**
 * Throws a `VNodeRuntimeArgsError` for the first problem found in the known part of `args`, and
 * returns the args to resolve: the same values, except that each argument holding an Output is
 * replaced by an Output that checks the resolved value first (`whenKnown`).
 */
export function validateArgs(
  name: string,
  args: VNodeRuntimeArgs | undefined,
): { args: VNodeRuntimeArgs; pending: pulumi.Output<unknown>[] } {
  checkComponentName(name);
  if (!isObject(args)) {
    mustBe(
      "args",
      `an object with at least agentImage: { ref: "<image>" } or agentImage: { build: { registry, repository } }`,
      args,
    );
  }
  const a = args as unknown as Record<string, unknown>;
  checkFields("args", a, TOP_LEVEL_FIELDS);

  checkAgentImage(a.agentImage);
  checkVNodeImage(a.vnodeImage, a.agentImage);

  const checked: Record<string, unknown> = { ...a };
  const pending: pulumi.Output<unknown>[] = [];
  const known = (field: string, check: (value: unknown) => void): void => {
    if (a[field] !== undefined) {
      checked[field] = whenKnown(a[field], check, pending);
    }
  };

  const image = a.agentImage as Record<string, unknown>;
  if (image.ref !== undefined && image.ref !== null) {
    // Checked on resolution too; children do not wait for it (it often comes from an image
    // build): the objects that run the image fail with the sentence instead.
    checked.agentImage = { ...image, ref: whenKnown(image.ref, checkAgentImageRef, []) };
  }
  checkEnum("isolationMode", a.isolationMode, Object.values(IsolationMode));
  checkNamespaceFlags(a.createNamespace, a.retainNamespace);
  known("namespace", (namespace) => checkNamespaceName(namespace, a.createNamespace));
  checkDnsSubdomain("runtimeClassName", a.runtimeClassName);
  checkDnsSubdomain("perPodRuntimeClassName", a.perPodRuntimeClassName);
  checkDnsLabel("handler", a.handler);
  checkEnum(
    "containerdDistribution",
    a.containerdDistribution,
    Object.keys(CONTAINERD_DISTRIBUTIONS),
  );
  checkEnum("restartStrategy", a.restartStrategy, Object.values(RestartStrategy));
  known("tolerations", (tolerations) => checkTolerations("tolerations", tolerations));
  known("affinity", (affinity) => {
    if (affinity !== undefined && !isObject(affinity)) {
      mustBe("affinity", "a Kubernetes Affinity object", affinity);
    }
  });
  known("priorityClassName", (value) => checkDnsSubdomain("priorityClassName", value));
  known("resources", checkResources);
  checkManager(
    a.manager,
    (a.containerdDistribution as ContainerdDistribution | undefined) ??
      DEFAULTS.containerdDistribution,
    (a.restartStrategy as RestartStrategy | undefined) ?? DEFAULTS.restartStrategy,
  );
  checkUpdateStrategy(a.updateStrategy);
  checkRollout(a.rollout);
  known("terminationGracePeriodSeconds", (value) =>
    checkInteger("terminationGracePeriodSeconds", value, 1),
  );
  checkBoolean("forceUninstall", a.forceUninstall);
  if (a.overhead !== undefined) {
    const overhead = checkObject("overhead", a.overhead, ["enabled", "perNamespace", "perPod"]);
    checkBoolean("overhead.enabled", overhead.enabled);
    checkQuantities("overhead.perNamespace", overhead.perNamespace);
    checkQuantities("overhead.perPod", overhead.perPod);
  }
  known("runtimeClassTolerations", (tolerations) =>
    checkTolerations("runtimeClassTolerations", tolerations),
  );

  // The node selections of the component and its pools are checked together (no two pools may
  // select the same node), so they resolve together.
  Object.assign(checked, checkPools(name, a, pending));
  checkEnv(a.env);
  known("labels", (labels) => {
    checkLabels("labels", labels);
    checkReservedLabels("labels", labels);
  });
  known("annotations", (annotations) => checkAnnotations("annotations", annotations));
  checkMetrics(a.metrics);
  checkEnum("agentConfinement", a.agentConfinement, Object.values(AgentConfinement));
  checkEnforcement(name, a.enforcement, a.certManager);
  return { args: checked as unknown as VNodeRuntimeArgs, pending };
}
