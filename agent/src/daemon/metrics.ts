/**
 * The agent's Prometheus metrics, served on `/metrics`. A private registry (not prom-client's
 * global one), so tests and several agents in one process do not share counters. Every name is
 * prefixed `vnode_agent_`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { IsolationMode } from "vnode-contract";

export const METRIC_PREFIX = "vnode_agent_";

export interface AgentMetrics {
  registry: Registry;
  /** Wall time of each install (preflight to verified), by `result` (`success`, `failure`). */
  installDuration: Histogram<"result">;
  /** containerd restarts the agent caused, by `reason` (`install`, `drift`, `uninstall`). */
  containerdRestarts: Counter<"reason">;
  /** Times the handler had vanished from containerd's config or CRI and was put back. */
  driftRepairs: Counter;
  /** Reconcile passes that ended in an error. */
  reconcileErrors: Counter;
  /** Unix time (seconds) of the last reconcile pass that found everything in place. */
  lastSuccessfulReconcile: Gauge;
  /** 1 for the node's current mode (`per-namespace` or `per-pod`); only that series exists. */
  isolationMode: Gauge<"mode">;
  /** Failed preflight checks, by `check` (kernel, cgroup, containerd version, ...). */
  preflightFailures: Counter<"check">;
  /** Exits of the supervised manager process, by exit `code` or `signal` (the other is ""). */
  managerExits: Counter<"code" | "signal">;
  /**
   * Restarts of vNode's manager this agent observed: of the supervised process
   * (`--manager-command`), or of the manager container (`--manager-container`).
   */
  managerRestarts: Counter;
  /** kubelet's restart count of the manager container (`--manager-container`). */
  managerContainerRestarts: Gauge;
  /** Sets {@link isolationMode} to `mode`, dropping the other mode's series. */
  setIsolationMode(mode: IsolationMode): void;
}

export interface MetricsOptions {
  /**
   * Also export Node.js process metrics (`vnode_agent_process_resident_memory_bytes`, CPU
   * seconds, event loop lag, ...), which the benchmark and dashboards read. Defaults to true.
   */
  processMetrics?: boolean;
}

/** Event loop delay sampling period: lag worth alerting on is far above 100 ms. */
const EVENT_LOOP_PRECISION_MS = 100;

/** Install runs from a second (all in place) to minutes (payload copy, slow containerd). */
const INSTALL_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

export function createMetrics(opts: MetricsOptions = {}): AgentMetrics {
  const registry = new Registry();
  if (opts.processMetrics ?? true) {
    collectDefaultMetrics({
      register: registry,
      prefix: METRIC_PREFIX,
      // prom-client samples event loop delay every 10 ms by default: 100 wakeups a second,
      // measured at 0.6 % of a core on an idle agent, most of the daemon's budget (bench:agent).
      eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS,
    });
  }
  const registers = [registry];
  const isolationMode = new Gauge({
    name: `${METRIC_PREFIX}isolation_mode`,
    help: "1 for the isolation mode vNode runs in on this node (VNODE_PER_POD).",
    labelNames: ["mode"] as const,
    registers,
  });
  return {
    registry,
    installDuration: new Histogram({
      name: `${METRIC_PREFIX}install_duration_seconds`,
      help: "Time from preflight to a verified runtime handler (or the failure), per install.",
      labelNames: ["result"] as const,
      buckets: INSTALL_BUCKETS,
      registers,
    }),
    containerdRestarts: new Counter({
      name: `${METRIC_PREFIX}containerd_restarts_total`,
      help: "containerd restarts caused by the agent, by reason.",
      labelNames: ["reason"] as const,
      registers,
    }),
    driftRepairs: new Counter({
      name: `${METRIC_PREFIX}drift_repairs_total`,
      help: "Times the runtime handler had vanished from containerd and was restored.",
      registers,
    }),
    reconcileErrors: new Counter({
      name: `${METRIC_PREFIX}reconcile_errors_total`,
      help: "Reconcile passes that ended in an error.",
      registers,
    }),
    lastSuccessfulReconcile: new Gauge({
      name: `${METRIC_PREFIX}last_successful_reconcile_timestamp_seconds`,
      help: "Unix time of the last reconcile pass that found the runtime in place.",
      registers,
    }),
    isolationMode,
    preflightFailures: new Counter({
      name: `${METRIC_PREFIX}preflight_failures_total`,
      help: "Failed preflight checks, by check.",
      labelNames: ["check"] as const,
      registers,
    }),
    managerExits: new Counter({
      name: `${METRIC_PREFIX}manager_exits_total`,
      help: "Exits of the supervised runtime manager process, by exit code or signal.",
      labelNames: ["code", "signal"] as const,
      registers,
    }),
    managerRestarts: new Counter({
      name: `${METRIC_PREFIX}manager_restarts_total`,
      help: "Restarts of vNode's manager observed by this agent (each restarts every vNode on the node).",
      registers,
    }),
    managerContainerRestarts: new Gauge({
      name: `${METRIC_PREFIX}manager_container_restarts`,
      help: "kubelet's restart count of the vNode manager container in the agent's pod.",
      registers,
    }),
    setIsolationMode(mode) {
      isolationMode.reset();
      isolationMode.set({ mode }, 1);
    },
  };
}
