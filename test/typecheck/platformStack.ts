/**
 * Not a test suite: a program written the way a platform stack uses the component, type-checked
 * by `npm run lint` (tsconfig includes test/). It fails the lint if enum-like inputs stop
 * accepting the plain strings stack configs hold, or the exported constants stop matching them,
 * or an argument that can come from another resource stops accepting an Output.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  IsolationMode,
  MetricsMode,
  RestartStrategy,
  RolloutWait,
  VNodeRuntime,
  VNodeRuntimeArgs,
} from "../../components/index";

export function platformStack(config: pulumi.Config, image: pulumi.Output<string>): VNodeRuntime {
  const args: VNodeRuntimeArgs = {
    // An Output from another resource (e.g. an image build in another component).
    agentImage: { ref: image },
    // Plain strings, as YAML stack config holds them...
    isolationMode: "per-pod",
    restartStrategy: "systemd",
    containerdDistribution: "k3s",
    rollout: { wait: "ready", timeoutSeconds: 1800 },
    updateStrategy: { maxUnavailablePercent: 10 },
    metrics: { mode: "pod-monitor", interval: "30s" },
    pools: [
      // ...and the exported constants, which are the same values.
      { name: "builds", isolationMode: IsolationMode.PerPod, nodeSelector: { pool: "builds" } },
      { name: "tenants", isolationMode: "per-namespace", nodeSelector: { pool: "tenants" } },
    ],
    enforcement: {
      namespaceSelector: { matchExpressions: [{ key: "tenant", operator: "Exists" }] },
      mode: "mutate-and-validate",
      backend: "admission-policy",
      scope: "selected",
      namespaceLabelGuard: { platformGroups: ["platform-admins"] },
      podSecurityLevel: "restricted",
    },
    forceUninstall: config.getBoolean("forceUninstall") ?? false,
  };
  // The platform's own resources feed the rest: a namespace, node labels and taints of a node
  // group, sizing and scheduling settings published by another stack.
  const ns = new k8s.core.v1.Namespace("sandbox", { metadata: { name: "sandbox" } });
  const platform = new pulumi.StackReference("acme/platform/prod");
  const nodeGroup = {
    labels: platform.requireOutput("sandboxLabels") as pulumi.Output<{ [key: string]: string }>,
    taint: platform.requireOutput("sandboxTaint") as pulumi.Output<string>,
  };
  const toleration: k8s.types.input.core.v1.Toleration = {
    key: nodeGroup.taint,
    operator: "Exists",
  };
  const fromResources: VNodeRuntimeArgs = {
    ...args,
    namespace: ns.metadata.name,
    createNamespace: false,
    labels: ns.metadata.labels,
    annotations: { "example.com/owner": platform.requireOutput("owner") as pulumi.Output<string> },
    nodeSelector: nodeGroup.labels,
    tolerations: [toleration, { operator: "Exists", effect: "NoExecute" }],
    affinity: platform.requireOutput(
      "agentAffinity",
    ) as pulumi.Output<k8s.types.input.core.v1.Affinity>,
    resources: {
      requests: { cpu: config.require("agentCpu"), memory: nodeGroup.taint.apply(() => "64Mi") },
    },
    priorityClassName: new k8s.scheduling.v1.PriorityClass("agents", { value: 1_000_000 }).metadata
      .name,
    terminationGracePeriodSeconds: pulumi.output(300),
    runtimeClassTolerations: pulumi.output([toleration]),
    pools: [
      {
        name: "builds",
        isolationMode: "per-pod",
        nodeSelector: nodeGroup.labels,
        tolerations: [toleration],
      },
      {
        name: "tenants",
        nodeSelector: { pool: platform.requireOutput("tenantPool") as pulumi.Output<string> },
      },
    ],
  };
  new VNodeRuntime("platform-vnode-sandbox", fromResources);
  // The constants are the string values, usable wherever a string is.
  const mode: "per-pod" = IsolationMode.PerPod;
  const strategies: string[] = [RestartStrategy.Kill, MetricsMode.None, RolloutWait.None, mode];
  pulumi.log.debug(strategies.join(","));
  return new VNodeRuntime("platform-vnode", args);
}
