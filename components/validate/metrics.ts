/** `metrics`: how Prometheus finds the agent. */
import { MetricsMode } from "../args";
import { DEFAULTS } from "../defaults";
import { fail, mustBe } from "./errors";
import { checkLabels, checkReservedLabels } from "./labels";
import { checkEnum, checkObject } from "./values";

const DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/;

export function checkMetrics(metrics: unknown): void {
  if (metrics === undefined) {
    return;
  }
  const m = checkObject("metrics", metrics, ["mode", "interval", "podMonitorLabels"]);
  checkEnum("metrics.mode", m.mode, Object.values(MetricsMode));
  const mode = (m.mode as MetricsMode | undefined) ?? DEFAULTS.metricsMode;
  for (const field of ["interval", "podMonitorLabels"]) {
    if (m[field] !== undefined && mode !== MetricsMode.PodMonitor) {
      fail(
        `metrics.${field} only applies when metrics.mode is ${MetricsMode.PodMonitor}; metrics.mode is ${mode}.`,
      );
    }
  }
  if (m.interval !== undefined && (typeof m.interval !== "string" || !DURATION.test(m.interval))) {
    mustBe("metrics.interval", `a Prometheus duration such as "30s" or "1m"`, m.interval);
  }
  checkLabels("metrics.podMonitorLabels", m.podMonitorLabels);
  checkReservedLabels("metrics.podMonitorLabels", m.podMonitorLabels);
}
