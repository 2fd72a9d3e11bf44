/**
 * Validation of `VNodeRuntimeArgs`, before any resource is registered. Args arrive from
 * TypeScript, from YAML stack config and from other languages through the provider, so nothing is
 * trusted: every check names the argument, the bad value and what is allowed, in one sentence
 * (`./errors`). One module per subject; this one only walks the arguments.
 */
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
import { checkAgentImage, checkVNodeImage } from "./image";
import { checkAnnotations, checkLabels, checkReservedLabels } from "./labels";
import { checkManager } from "./manager";
import { checkMetrics } from "./metrics";
import { checkComponentName, checkDnsLabel, checkDnsSubdomain, checkNamespace } from "./names";
import { checkQuantities, checkTolerations } from "./podSpec";
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

/** Throws a `VNodeRuntimeArgsError` for the first problem found in `args`. */
export function validateArgs(name: string, args: VNodeRuntimeArgs | undefined): void {
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

  checkEnum("isolationMode", a.isolationMode, Object.values(IsolationMode));
  checkNamespace(a.namespace, a.createNamespace, a.retainNamespace);
  checkDnsSubdomain("runtimeClassName", a.runtimeClassName);
  checkDnsSubdomain("perPodRuntimeClassName", a.perPodRuntimeClassName);
  checkDnsLabel("handler", a.handler);
  checkEnum(
    "containerdDistribution",
    a.containerdDistribution,
    Object.keys(CONTAINERD_DISTRIBUTIONS),
  );
  checkEnum("restartStrategy", a.restartStrategy, Object.values(RestartStrategy));
  checkLabels("nodeSelector", a.nodeSelector);
  checkTolerations("tolerations", a.tolerations);
  if (a.affinity !== undefined && !isObject(a.affinity)) {
    mustBe("affinity", "a Kubernetes Affinity object", a.affinity);
  }
  checkDnsSubdomain("priorityClassName", a.priorityClassName);
  if (a.resources !== undefined) {
    const resources = checkObject("resources", a.resources, ["requests", "limits"]);
    checkQuantities("resources.requests", resources.requests);
    checkQuantities("resources.limits", resources.limits);
  }
  checkManager(
    a.manager,
    (a.containerdDistribution as ContainerdDistribution | undefined) ??
      DEFAULTS.containerdDistribution,
    (a.restartStrategy as RestartStrategy | undefined) ?? DEFAULTS.restartStrategy,
  );
  checkUpdateStrategy(a.updateStrategy);
  checkRollout(a.rollout);
  checkInteger("terminationGracePeriodSeconds", a.terminationGracePeriodSeconds, 1);
  checkBoolean("forceUninstall", a.forceUninstall);
  if (a.overhead !== undefined) {
    const overhead = checkObject("overhead", a.overhead, ["enabled", "perNamespace", "perPod"]);
    checkBoolean("overhead.enabled", overhead.enabled);
    checkQuantities("overhead.perNamespace", overhead.perNamespace);
    checkQuantities("overhead.perPod", overhead.perPod);
  }
  checkTolerations("runtimeClassTolerations", a.runtimeClassTolerations);

  checkPools(name, a);
  checkEnv(a.env);
  checkLabels("labels", a.labels);
  checkReservedLabels("labels", a.labels);
  checkAnnotations("annotations", a.annotations);
  checkMetrics(a.metrics);
  checkEnum("agentConfinement", a.agentConfinement, Object.values(AgentConfinement));
  checkEnforcement(name, a.enforcement, a.certManager);
}
