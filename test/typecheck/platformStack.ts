/**
 * Not a test suite: a program written the way a platform stack uses the component, type-checked
 * by `npm run lint` (tsconfig includes test/). It fails the lint if enum-like inputs stop
 * accepting the plain strings stack configs hold, or the exported constants stop matching them.
 */
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
  // The constants are the string values, usable wherever a string is.
  const mode: "per-pod" = IsolationMode.PerPod;
  const strategies: string[] = [RestartStrategy.Kill, MetricsMode.None, RolloutWait.None, mode];
  pulumi.log.debug(strategies.join(","));
  return new VNodeRuntime("platform-vnode", args);
}
