/** How Prometheus finds the agent's metrics: pod annotations or a Prometheus Operator PodMonitor. */
import type * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import { AGENT_HTTP } from "vnode-contract";
import { MetricsMode } from "./args";
import type { RuntimePlan } from "./defaults";
import { namespacedMeta, selectorLabels } from "./labels";

/** Pod annotations for annotation-based scraping (empty unless the mode is `annotations`). */
export function scrapeAnnotations(plan: RuntimePlan): Record<string, string> {
  if (plan.metrics.mode !== MetricsMode.Annotations) {
    return {};
  }
  return {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": String(AGENT_HTTP.port),
    "prometheus.io/path": AGENT_HTTP.metrics,
  };
}

/** One PodMonitor selecting the agent pods of every pool. */
export function buildPodMonitor(
  plan: RuntimePlan,
  namespace: pulumi.Input<string>,
): k8s.apiextensions.CustomResourceArgs {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PodMonitor",
    metadata: namespacedMeta(plan, plan.agentName, namespace, plan.metrics.podMonitorLabels),
    spec: {
      selector: { matchLabels: selectorLabels(plan.name) },
      podMetricsEndpoints: [
        { port: AGENT_HTTP.portName, path: AGENT_HTTP.metrics, interval: plan.metrics.interval },
      ],
    },
  };
}
