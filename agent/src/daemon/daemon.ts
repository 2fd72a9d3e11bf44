/**
 * `vnode-agent run`, the DaemonSet's entrypoint. Phases, each a function below:
 *
 * 1. start: HTTP (/healthz, /readyz, /metrics), then the node labels `installing` + mode, an
 *    Event, and a Warning when the node's mode label (else the ledger) had the other mode;
 * 2. install: preflight (verdicts per check into metrics), install, verify; `ready` or `failed`;
 *    then the runtime's manager process is supervised (when `--manager-command` is set);
 *    throughout, vNode's manager socket is probed for /readyz (`--manager-socket`) and the
 *    manager container's restarts are read from the agent's own pod (`--manager-container`);
 * 3. reconcile every `--interval`: labels re-applied when something dropped them, drift (the
 *    handler gone from containerd's config or CRI, payload files gone) repaired, at most
 *    `--max-restarts` containerd restarts per `--restart-window`, then `failed`;
 * 4. shutdown on SIGTERM: a rolling update leaves the runtime installed; a node leaving the
 *    runtime gets `uninstalling`, waits for vNode pods to go (or refuses), uninstalls and
 *    removes the labels.
 *
 * A bad flag or env value (VNODE_PER_POD) is reported on the Node (`failed` + Event) and exits
 * non-zero before the host is touched: see {@link runAgent}.
 */
import {
  encodePerPod,
  ISOLATION_MODE_LABEL,
  ISOLATION_MODES,
  type IsolationMode,
  RUNTIME_LABEL,
  type RunOptions,
  RuntimeState,
  VNODE_PER_POD_ENV,
} from "vnode-contract";
import { type DaemonOptions, daemonOptions, kubeServerOf, nodeNameOf } from "./options";
import { DriftChecker, type NodeLook, restartForDrift } from "./drift";
import { sleep } from "../lib/backoff";
import { formatDuration } from "../lib/duration";
import { AgentError, ExitCode, messageOf } from "../lib/errors";
import { HealthState, startHealthServer, type HealthServer } from "./health";
import {
  install,
  type InstallerOptions,
  preflight,
  recordedRuntime,
  uninstall,
} from "../installer/installer";
import type { AdoptedRuntime } from "../containerd/config/plan";
import { createKubeClient, type EventType, type KubeClient } from "../kube/client";
import { type Ledger, loadLedger } from "../host/ledger";
import { createLogger, type Logger } from "../lib/log";
import { type AgentMetrics, createMetrics } from "./metrics";
import { desiredLabels, labelPatch, RestartBudget } from "./reconcile";
import { type RepairStep, repairStep } from "./repairPolicy";
import { nodeLeaving, podsUsingRuntime, successorOnNode, type Verdict } from "./shutdown";
import { describeExit, exitMetricLabels, ManagerSupervisor } from "./supervisor";
import { NodeWatch } from "../kube/nodeWatch";
import { hostPath } from "../host/paths";
import { MANAGER_PROBE_INTERVAL_MS, probeUnixSocket, type SocketVerdict } from "./managerSocket";
import { managerRestartMessage, managerStateOf, restartsSince } from "./managerRestarts";

/**
 * The longest step between two heartbeats besides the interval itself: an install or repair
 * waiting for the host lock (60 s), restarting containerd (up to 120 s) and verifying (10 s).
 * /healthz fails only after that, so kubelet never kills the agent in the middle of a restart.
 */
const LONGEST_STEP_MS = 240_000;
/**
 * The manager container's status is read on every 10th reconcile pass (5 minutes at the default
 * 30 s: at 5,000 nodes ~17 small lists a second, from the watch cache) and at once when its
 * socket answers again after a failure, which is how most restarts show. A quick restart between
 * two socket probes is reported by the next periodic look.
 */
const MANAGER_LOOK_PASSES = 10;
/** Between two looks at the pods on the node while waiting for vNode pods to go. */
const POD_POLL_MS = 2000;

/** The daemon's state, passed to every phase. */
interface Daemon {
  readonly o: DaemonOptions;
  readonly kube: KubeClient;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  readonly health: HealthState;
  readonly budget: RestartBudget;
  readonly drift: DriftChecker;
  readonly stop: StopSignal;
  /** What the runtime label says (or will say once the patch lands). */
  state: RuntimeState;
  /** The CRI reported the handler at the last look. */
  verified: boolean;
  /** The node's labels as last read or patched; undefined before the first read. */
  nodeLabels: Record<string, string> | undefined;
  /** The agent's Node, kept current by a watch (kube/nodeWatch): no GET per pass. */
  nodeWatch: NodeWatch;
  /** The node carries the labels of `state`. */
  labelsOk: boolean;
  /** The runtime was ready once: a later repair is a drift repair. */
  everReady: boolean;
  /** Why /readyz fails, when the labels and the handler do not say it already. */
  notReady: string | undefined;
  /** Payload files the ledger records (host paths), for the drift check. */
  artifacts: string[];
  /** The runtime table the ledger records, so drift repair re-adopts it as install does. */
  recorded: AdoptedRuntime | undefined;
  /** Reason of the last Warning; a failure that repeats each pass is not re-announced. */
  lastWarning: string | undefined;
  /** Failures so far; a reconcile pass that adds one counts as a reconcile error. */
  failures: number;
  manager: ManagerSupervisor | null;
  /** The last probe of the manager's socket; undefined before the first. */
  managerSocket: SocketVerdict | undefined;
  /** kubelet's restart count of the manager container at the last look. */
  managerRestartCount: number | undefined;
  /** Looks at the manager container, one at a time (two at once would count a restart twice). */
  managerLook: Promise<void>;
  /** Reconcile passes so far: the manager's pod status is read every MANAGER_LOOK_PASSES-th. */
  passes: number;
}

/**
 * The `run` command: validates flags and env with the Kubernetes client already in hand, so a
 * bad value (VNODE_PER_POD=yes, a missing --restart-command) is reported on the Node as `failed`
 * with an Event before the AgentError ends the process (exit 2). Resolves with the exit code.
 */
export async function runAgent(
  flags: RunOptions,
  installerOptions: () => InstallerOptions,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  // Every local input is checked before anything needs the API server, and each problem is
  // named: outside a cluster "cannot reach the Kubernetes API" must not hide VNODE_PER_POD=yes.
  const problems: AgentError[] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof AgentError)) throw err;
      if (!problems.some((p) => p.message === err.message)) problems.push(err);
      return undefined;
    }
  };
  const node = attempt(() => nodeNameOf(env));
  const installer = attempt(installerOptions);
  const o = installer && attempt(() => daemonOptions(flags, env, installer));
  const log = createLogger(node ?? "(NODE_NAME unset)");
  const local = problems.length;
  const kube = attempt(() =>
    createKubeClient({
      server: kubeServerOf(flags),
      onRetry: (err, attempt, delayMs) =>
        log.warn(
          { phase: "labels", attempt, delayMs, reason: err.message },
          "retrying label patch",
        ),
    }),
  );
  if (problems.length > 0 || o === undefined) {
    const err =
      problems.length === 1
        ? problems[0]
        : new AgentError(
            `vnode-agent run found ${problems.length} problems: ${problems.map((p, i) => `(${i + 1}) ${p.message}`).join(" ")}`,
            ExitCode.BadInput,
          );
    // The node learns of a bad flag or env value when the API server is reachable.
    if (local > 0 && kube !== undefined && node !== undefined)
      await reportInvalidConfig(kube, log, node, err);
    throw err;
  }
  return runDaemon(o, { kube: kube!, log });
}

async function reportInvalidConfig(
  kube: KubeClient,
  log: Logger,
  node: string,
  err: AgentError,
): Promise<void> {
  log.error({ phase: "config", reason: err.message }, "invalid configuration; host untouched");
  try {
    await kube.patchNodeLabels(node, { [RUNTIME_LABEL]: RuntimeState.Failed });
  } catch (e) {
    log.warn({ phase: "labels", reason: messageOf(e) }, "could not label the node failed");
  }
  await recordEvent(kube, log, node, {
    type: "Warning",
    reason: "InvalidConfiguration",
    message: `${err.message} The agent stopped without touching the host.`,
    action: "Configure",
  });
}

export interface DaemonDeps {
  kube: KubeClient;
  log: Logger;
  metrics?: AgentMetrics;
}

/** Runs the phases until SIGTERM/SIGINT and the shutdown are done; resolves with the exit code. */
export async function runDaemon(o: DaemonOptions, deps: DaemonDeps): Promise<number> {
  const d: Daemon = {
    o,
    kube: deps.kube,
    log: deps.log,
    metrics: deps.metrics ?? createMetrics(),
    health: new HealthState(2 * o.intervalMs + LONGEST_STEP_MS),
    budget: new RestartBudget(o.maxRestarts, o.restartWindowMs),
    drift: new DriftChecker(o.installer),
    stop: new StopSignal(),
    state: RuntimeState.Installing,
    verified: false,
    nodeLabels: undefined,
    nodeWatch: new NodeWatch(deps.kube, o.node, deps.log),
    labelsOk: false,
    everReady: false,
    notReady: "starting",
    artifacts: [],
    recorded: undefined,
    lastWarning: undefined,
    failures: 0,
    manager: null,
    managerSocket: undefined,
    managerRestartCount: undefined,
    managerLook: Promise.resolve(),
    passes: 0,
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (d.stop.requested) {
      d.log.warn({ phase: "shutdown", signal }, "already stopping");
      return;
    }
    d.log.info({ phase: "shutdown", signal }, `received ${signal}`);
    d.stop.request();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  let server: HealthServer | undefined;
  let probing: Promise<void> | undefined;
  try {
    server = await startHttp(d);
    d.nodeWatch.start();
    probing = probeManagerLoop(d);
    await announce(d);
    if (!d.stop.requested) await installPhase(d);
    while (!d.stop.requested) {
      await d.stop.sleep(o.intervalMs);
      if (!d.stop.requested) await reconcilePhase(d);
    }
    return await shutdownPhase(d);
  } finally {
    d.stop.request();
    await probing;
    await d.managerLook;
    d.drift.close();
    await d.nodeWatch.stop();
    await d.manager?.stop();
    await server?.close();
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

// ---- phase 1: start ---------------------------------------------------------------------------

async function startHttp(d: Daemon): Promise<HealthServer> {
  d.metrics.setIsolationMode(d.o.installer.isolationMode);
  const server = await startHealthServer({
    listen: d.o.listen,
    state: d.health,
    registry: d.metrics.registry,
  });
  d.log.info({ phase: "http", url: server.url }, "serving /healthz, /readyz and /metrics");
  return server;
}

async function announce(d: Daemon): Promise<void> {
  const mode = d.o.installer.isolationMode;
  const ledger = await loadLedger(loc(d)).catch((err: Error) => {
    // install reports a broken ledger with its own error; here it only hides the mode.
    d.log.warn({ phase: "ledger", reason: err.message }, "cannot read the ledger");
    return null;
  });
  remember(d, ledger);
  const previous = await previousMode(d, ledger);
  await setState(d, RuntimeState.Installing, "installing");
  if (previous !== undefined && previous !== mode) {
    // Once per change: the label is set to the new mode just above, so the next start (a crash,
    // a rolling update of the same mode) finds no difference.
    await event(
      d,
      "Warning",
      "IsolationModeChanged",
      `The isolation mode of node ${d.o.node} changes from ${previous} to ${mode}: the vNode manager restarts with ${VNODE_PER_POD_ENV}=${encodePerPod(mode)}, and every vNode and workload on the node restarts.`,
      "Install",
    );
  }
  await event(
    d,
    "Normal",
    "Installing",
    `Installing runtime handler "${d.o.installer.handler.name}" in containerd (${mode}).`,
    "Install",
  );
}

/**
 * The mode the node ran before this agent: its mode label (set by the previous agent), or the
 * ledger's when the label is gone; undefined on a first install. Read once, before the labels
 * are patched.
 */
async function previousMode(d: Daemon, ledger: Ledger | null): Promise<IsolationMode | undefined> {
  try {
    d.nodeLabels ??= d.nodeWatch.labels ?? (await d.kube.getNode(d.o.node)).metadata?.labels ?? {};
  } catch (err) {
    d.log.warn({ phase: "labels", reason: messageOf(err) }, "cannot read the node's mode label");
  }
  const label = d.nodeLabels?.[ISOLATION_MODE_LABEL];
  if ((ISOLATION_MODES as readonly string[]).includes(label ?? "")) return label as IsolationMode;
  return ledger?.isolationMode;
}

// ---- phase 2: install -------------------------------------------------------------------------

/**
 * Preflight, then install. Preflight runs on its own first so each failed check is counted by
 * name and named in the Event. Returns whether the handler is live; on failure the node is
 * `failed` with a Warning.
 */
async function installPhase(d: Daemon, reason: "install" | "drift" = "install"): Promise<boolean> {
  const o = d.o.installer;
  const t0 = Date.now();
  try {
    const checks = await preflight(o);
    const failed = checks.filter((c) => !c.ok);
    if (failed.length > 0) {
      for (const c of failed) d.metrics.preflightFailures.inc({ check: c.name });
      await fail(
        d,
        "PreflightFailed",
        `Preflight failed on node ${d.o.node}: ${failed.map((c) => `${c.name}: ${c.detail}`).join("; ")}.`,
      );
      return false;
    }
    const r = await install(o, d.log);
    const seconds = (Date.now() - t0) / 1000;
    d.metrics.installDuration.observe({ result: "success" }, seconds);
    if (r.restart?.restarted) {
      d.budget.record(Date.now());
      d.metrics.containerdRestarts.inc({ reason });
    }
    remember(d, await loadLedger(loc(d)).catch(() => null));
    if (r.plan.restart && !r.restart?.restarted) {
      // --restart none: written, but live only once someone restarts containerd.
      d.verified = false;
      d.notReady = "waiting for containerd to be restarted (--restart none) to load the handler";
      d.log.warn({ phase: "install", durationMs: Date.now() - t0 }, d.notReady);
      updateReadiness(d);
      return false;
    }
    d.log.info(
      { phase: "install", durationMs: Date.now() - t0, restarted: r.restart?.restarted ?? false },
      "runtime handler installed",
    );
    if (reason === "install") {
      await event(
        d,
        "Normal",
        "RuntimeReady",
        `Runtime handler "${o.handler.name}" is live in containerd (${o.isolationMode}); ${r.restart?.restarted ? "containerd was restarted" : "no containerd restart was needed"}; took ${seconds.toFixed(1)} s.`,
        "Install",
      );
    }
    await becomeReady(d);
    return true;
  } catch (err) {
    d.metrics.installDuration.observe({ result: "failure" }, (Date.now() - t0) / 1000);
    // Exit 4: containerd was restarted and the change rolled back, another restart.
    if (err instanceof AgentError && err.exitCode === ExitCode.VerificationFailed) {
      d.budget.record(Date.now());
    }
    await fail(d, "InstallFailed", `Install failed on node ${d.o.node}: ${messageOf(err)}`);
    return false;
  }
}

async function becomeReady(d: Daemon): Promise<void> {
  d.verified = true;
  d.everReady = true;
  d.lastWarning = undefined;
  await setState(d, RuntimeState.Ready, undefined);
  d.metrics.lastSuccessfulReconcile.set(Date.now() / 1000);
  startManager(d);
}

/**
 * What the drift check needs from the ledger: the payload files and role links it records (a
 * missing one is restored) and the runtime table (a copy another tool rewrote is re-adopted).
 */
function remember(d: Daemon, ledger: Ledger | null): void {
  d.artifacts = [...(ledger?.artifacts ?? []), ...(ledger?.links ?? [])].map((a) => a.path);
  d.recorded = recordedRuntime(ledger);
}

function loc(d: Daemon): { hostRoot: string; stateDir: string } {
  return { hostRoot: d.o.installer.hostRoot, stateDir: d.o.installer.stateDir };
}

function startManager(d: Daemon): void {
  const command = d.o.managerCommand;
  if (command === null || d.manager !== null) return;
  d.manager = new ManagerSupervisor({
    command,
    mode: d.o.installer.isolationMode,
    logger: d.log,
    onStart: (pid, starts) => {
      d.log.info({ phase: "manager", pid, starts }, "vNode manager started");
      if (starts > 1) d.metrics.managerRestarts.inc();
    },
    onExit: (exit) => {
      d.metrics.managerExits.inc(exitMetricLabels(exit));
      const message = describeExit(exit);
      d.log.warn({ phase: "manager", reason: message }, "vNode manager exited");
      if (exit.restartInMs !== null)
        void event(d, "Warning", "ManagerExited", message, "Supervise");
    },
  });
  d.manager.start();
}

/**
 * Probes the manager's socket every few seconds (at most every --interval) until the daemon
 * stops, and updates /readyz. When the socket answers again after a failure, the manager
 * probably restarted: its container's status is read at once rather than at the next pass.
 */
async function probeManagerLoop(d: Daemon): Promise<void> {
  const socket = d.o.managerSocket;
  if (socket === null) return;
  const inAgent = hostPath(d.o.installer.hostRoot, socket);
  while (!d.stop.requested) {
    const verdict = await probeUnixSocket(inAgent, undefined, socket);
    const before = d.managerSocket;
    d.managerSocket = verdict;
    if (!verdict.ok && before?.ok !== false) {
      d.log.warn({ phase: "manager", reason: verdict.reason }, "vNode manager not answering");
    } else if (verdict.ok && before?.ok !== true) {
      d.log.info({ phase: "manager", socket }, "vNode manager answers on its socket");
      if (before !== undefined) lookAtManager(d);
    }
    updateReadiness(d);
    await d.stop.sleep(Math.min(d.o.intervalMs, MANAGER_PROBE_INTERVAL_MS));
  }
}

/** Queues one look at the manager container (see {@link observeManager}). */
function lookAtManager(d: Daemon): Promise<void> {
  d.managerLook = d.managerLook.then(() => observeManager(d));
  return d.managerLook;
}

/**
 * Reads the agent's own pod and reports new restarts of the manager container: the counter, the
 * gauge of kubelet's count, a log line and one Warning Event per look that found any.
 */
async function observeManager(d: Daemon): Promise<void> {
  const m = d.o.managerContainer;
  if (m === null) return;
  let state;
  try {
    state = managerStateOf(await d.kube.getPodOnNode(d.o.node, m.namespace, m.pod), m.container);
  } catch (err) {
    d.log.warn({ phase: "manager", reason: messageOf(err) }, "cannot read the manager's status");
    return;
  }
  if (state === undefined) {
    d.log.debug({ phase: "manager", pod: `${m.namespace}/${m.pod}` }, "no manager status yet");
    return;
  }
  d.metrics.managerContainerRestarts.set(state.restartCount);
  const count = restartsSince(d.managerRestartCount, state.restartCount);
  d.managerRestartCount = state.restartCount;
  if (count === 0) return;
  d.metrics.managerRestarts.inc(count);
  const message = managerRestartMessage(d.o.node, m.container, state, count);
  d.log.warn({ phase: "manager", restarts: state.restartCount }, message);
  await event(d, "Warning", "ManagerRestarted", message, "Observe");
}

// ---- phase 3: reconcile -----------------------------------------------------------------------

/** One pass: labels, then drift. Errors are counted and logged; the loop goes on. */
async function reconcilePhase(d: Daemon): Promise<void> {
  const t0 = Date.now();
  const failuresBefore = d.failures;
  let error: string | undefined;
  try {
    await recheckLabels(d);
    if (d.passes++ % MANAGER_LOOK_PASSES === 0) await lookAtManager(d);
    const report = await d.drift.check(d.artifacts, d.recorded);
    await act(d, report);
  } catch (err) {
    error = messageOf(err);
    d.log.error({ phase: "reconcile", reason: error }, "reconcile pass failed");
  } finally {
    if (error !== undefined || d.failures > failuresBefore) d.metrics.reconcileErrors.inc();
    d.health.beat();
    updateReadiness(d);
    d.log.debug({ phase: "reconcile", durationMs: Date.now() - t0 }, "reconciled");
  }
}

/** kubelet restarts on k3s/rke2 can drop labels it does not own: put ours back. */
async function recheckLabels(d: Daemon): Promise<void> {
  const labels = d.nodeWatch.labels;
  if (labels === undefined) {
    d.log.warn({ phase: "labels" }, "the node watch has not seen the node yet");
    d.failures++;
    return;
  }
  d.nodeLabels = labels;
  const wasOk = d.labelsOk;
  const patch = await applyLabels(d);
  if (patch !== null && wasOk) {
    const what = Object.entries(patch)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ");
    d.log.warn({ phase: "labels", patch }, "node labels were changed or dropped; restored");
    await event(
      d,
      "Normal",
      "LabelsRestored",
      `Node labels were changed or dropped (a kubelet restart?); restored ${what}.`,
      "Reconcile",
    );
  }
}

/** Decides on the look (repairPolicy.ts) and takes the step. */
async function act(d: Daemon, look: NodeLook): Promise<void> {
  const o = d.o.installer;
  const decide = (report: NodeLook, secondLook: boolean) =>
    repairStep({
      state: d.state,
      everReady: d.everReady,
      report,
      secondLook,
      restartStrategy: o.restart.strategy,
      handler: o.handler.name,
      budget: d.budget.view(Date.now()),
      now: Date.now(),
    });
  let report = look;
  let step = decide(report, false);
  if (step.step === "look-again") {
    report = await d.drift.check(d.artifacts, d.recorded);
    step = decide(report, true);
  }
  switch (step.step) {
    case "look-again":
      throw new Error("the repair policy asked for a third look at the node");
    case "wait":
      d.verified = false;
      d.notReady = step.reason;
      d.log.warn(
        { phase: "reconcile", reason: d.notReady },
        "containerd is not answering; waiting",
      );
      return;
    case "in-place":
      d.verified = true;
      if (step.becomeReady) {
        // Live without us: e.g. an operator restarted containerd after install with --restart none.
        await event(
          d,
          "Normal",
          "RuntimeReady",
          `Runtime handler "${o.handler.name}" is live in containerd.`,
          "Reconcile",
        );
        await becomeReady(d);
      }
      d.metrics.lastSuccessfulReconcile.set(Date.now() / 1000);
      return;
    case "hold":
      d.verified = false;
      if (step.failure !== null) await fail(d, step.failure.reason, step.failure.message);
      return;
    case "repair":
      await repair(d, step, report);
  }
}

async function repair(
  d: Daemon,
  step: Extract<RepairStep, { step: "repair" }>,
  report: NodeLook,
): Promise<void> {
  const { how, what, drift } = step;
  d.log.warn(
    { phase: "repair", action: how, reason: what },
    drift ? "drift detected" : "installing again",
  );
  if (step.announce) {
    await event(d, "Warning", "DriftDetected", `${what} Repairing.`, "Repair");
  }
  const t0 = Date.now();
  // A re-adoption only puts the block's markers back around a table containerd still runs
  // with: the handler never stopped working, so the node keeps its ready label meanwhile.
  const readoptOnly =
    (report.rewritten?.length ?? 0) > 0 &&
    report.missingArtifacts.length === 0 &&
    report.cri.state === "live";
  if (!readoptOnly) await setState(d, RuntimeState.Installing, "repairing");
  const ok =
    how === "install"
      ? await installPhase(d, drift ? "drift" : "install")
      : await restartPhase(d, report);
  if (ok && drift) {
    d.metrics.driftRepairs.inc();
    const ms = Date.now() - t0;
    d.log.info({ phase: "repair", action: how, durationMs: ms }, "drift repaired");
    await event(
      d,
      "Normal",
      "DriftRepaired",
      `${what} Repaired in ${(ms / 1000).toFixed(1)} s.`,
      "Repair",
    );
  }
}

async function restartPhase(d: Daemon, report: NodeLook): Promise<boolean> {
  try {
    await restartForDrift(d.o.installer, report.layout, d.log);
    d.budget.record(Date.now());
    d.metrics.containerdRestarts.inc({ reason: "drift" });
    await becomeReady(d);
    return true;
  } catch (err) {
    if (err instanceof AgentError && err.exitCode === ExitCode.VerificationFailed) {
      d.budget.record(Date.now());
      d.metrics.containerdRestarts.inc({ reason: "drift" });
    }
    await fail(d, "RepairFailed", `Repair failed on node ${d.o.node}: ${messageOf(err)}`);
    return false;
  }
}

// ---- phase 4: shutdown ------------------------------------------------------------------------

async function shutdownPhase(d: Daemon): Promise<number> {
  const t0 = Date.now();
  const verdict = await leavingVerdict(d);
  d.log.info({ phase: "shutdown", leaving: verdict.leaving, reason: verdict.reason }, "deciding");
  if (!verdict.leaving) {
    await d.manager?.stop();
    await event(d, "Normal", "RuntimeKept", verdict.reason, "Shutdown");
    d.log.info({ phase: "shutdown", durationMs: Date.now() - t0 }, "stopped; runtime kept");
    return ExitCode.Ok;
  }
  const successor = await successorAgent(d);
  if (successor !== undefined) {
    await d.manager?.stop();
    const reason = `${verdict.reason} The agent ${successor} runs on node ${d.o.node} and takes the runtime over, so it stays installed.`;
    await event(d, "Normal", "RuntimeHandedOver", reason, "Shutdown");
    d.log.info({ phase: "shutdown", durationMs: Date.now() - t0, successor }, "handed over");
    return ExitCode.Ok;
  }
  // First, so the scheduler places no new vNode pod here while the runtime goes.
  await setState(d, RuntimeState.Uninstalling, "uninstalling");
  await event(
    d,
    "Normal",
    "Uninstalling",
    `${verdict.reason} Uninstalling the runtime.`,
    "Uninstall",
  );

  const busy = await vnodePodsLeft(d);
  if (busy.length > 0 && !d.o.forceUninstall) {
    await d.manager?.stop();
    const message = `Not uninstalling: pods still use a vNode RuntimeClass on node ${d.o.node} after ${formatDuration(d.o.uninstallPodWaitMs)}: ${busy.join(", ")}. The runtime stays installed and the node keeps ${RUNTIME_LABEL}=${RuntimeState.Uninstalling} so no new vNode pod lands; delete those pods and uninstall with vnode-agent uninstall, or redeploy with --force-uninstall.`;
    d.log.error({ phase: "shutdown", reason: message }, "uninstall refused");
    await event(d, "Warning", "UninstallRefused", message, "Uninstall");
    return ExitCode.Failure;
  }
  if (busy.length > 0) {
    d.log.warn(
      { phase: "shutdown", pods: busy },
      "--force-uninstall: uninstalling under running vNode pods",
    );
  }
  await d.manager?.stop();
  try {
    const r = await uninstall(d.o.installer, d.log);
    if (r.restart?.restarted) d.metrics.containerdRestarts.inc({ reason: "uninstall" });
  } catch (err) {
    const message = `Uninstall failed on node ${d.o.node}: ${messageOf(err)}`;
    d.log.error({ phase: "uninstall", reason: message }, "uninstall failed");
    await event(d, "Warning", "UninstallFailed", message, "Uninstall");
    return ExitCode.Failure;
  }
  try {
    await d.kube.patchNodeLabels(d.o.node, { [RUNTIME_LABEL]: null, [ISOLATION_MODE_LABEL]: null });
  } catch (err) {
    d.log.warn({ phase: "labels", reason: messageOf(err) }, "could not remove the node labels");
  }
  const ms = Date.now() - t0;
  await event(
    d,
    "Normal",
    "RuntimeUninstalled",
    `Runtime handler "${d.o.installer.handler.name}" removed, containerd's config restored; took ${(ms / 1000).toFixed(1)} s.`,
    "Uninstall",
  );
  d.log.info({ phase: "shutdown", durationMs: ms }, "runtime uninstalled");
  return ExitCode.Ok;
}

async function leavingVerdict(d: Daemon): Promise<Verdict> {
  const ds = d.o.daemonSet;
  if (ds === null) {
    return {
      leaving: false,
      reason:
        "No --daemonset given, so a removal cannot be told from a rolling update; the runtime stays installed.",
    };
  }
  try {
    const [set, node] = await Promise.all([
      d.kube.getDaemonSet(ds.namespace, ds.name),
      d.kube.getNode(d.o.node),
    ]);
    return nodeLeaving(set, node, `${ds.namespace}/${ds.name}`);
  } catch (err) {
    return {
      leaving: false,
      reason: `Cannot tell whether node ${d.o.node} is leaving the runtime (${messageOf(err).replace(/\.$/, "")}); the runtime stays installed.`,
    };
  }
}

/**
 * Another DaemonSet's agent on the node (see shutdown.ts), or undefined. Unknown (the pods cannot
 * be listed) is "none": the uninstall path then lists the pods again and refuses if it still
 * cannot, unless --force-uninstall.
 */
async function successorAgent(d: Daemon): Promise<string | undefined> {
  const own = d.o.daemonSet;
  if (own === null) return undefined;
  try {
    return successorOnNode(await d.kube.listPodsOnNode(d.o.node), own);
  } catch (err) {
    d.log.warn({ phase: "shutdown", reason: messageOf(err) }, "could not look for a successor");
    return undefined;
  }
}

/** vNode pods still on the node, after waiting up to --uninstall-pod-wait for them to go. */
async function vnodePodsLeft(d: Daemon): Promise<string[]> {
  const deadline = Date.now() + d.o.uninstallPodWaitMs;
  const { handler } = d.o.installer;
  for (;;) {
    let pods: string[];
    try {
      pods = podsUsingRuntime(
        await d.kube.listPodsOnNode(d.o.node),
        handler.name,
        d.o.runtimeClasses,
      );
    } catch (err) {
      // Unknown is not "none": without --force-uninstall this refuses.
      return [`(pods on the node could not be listed: ${messageOf(err)})`];
    }
    const left = deadline - Date.now();
    if (pods.length === 0 || d.o.forceUninstall || left <= 0) return pods;
    d.log.info({ phase: "shutdown", pods }, "waiting for vNode pods to go");
    await sleep(Math.min(POD_POLL_MS, left));
  }
}

// ---- labels, events, readiness ----------------------------------------------------------------

/** Sets the runtime state, patches the labels when they differ, updates /readyz. */
async function setState(
  d: Daemon,
  state: RuntimeState,
  notReady: string | undefined,
): Promise<void> {
  d.state = state;
  d.notReady = notReady;
  await applyLabels(d);
  updateReadiness(d);
}

/** Patches the labels that differ from the state's; returns the patch sent (null: none). */
async function applyLabels(d: Daemon): Promise<Record<string, string | null> | null> {
  try {
    d.nodeLabels ??= d.nodeWatch.labels ?? (await d.kube.getNode(d.o.node)).metadata?.labels ?? {};
    const patch = labelPatch(d.nodeLabels, desiredLabels(d.state, d.o.installer.isolationMode));
    if (patch !== null) {
      const node = await d.kube.patchNodeLabels(d.o.node, patch);
      d.nodeWatch.offer(node);
      d.nodeLabels = node.metadata?.labels ?? {};
      d.log.info({ phase: "labels", patch }, "node labels set");
    }
    d.labelsOk = true;
    return patch;
  } catch (err) {
    d.labelsOk = false;
    d.failures++;
    d.log.error({ phase: "labels", reason: messageOf(err) }, "cannot label the node");
    return null;
  }
}

function updateReadiness(d: Daemon): void {
  const ready = d.state === RuntimeState.Ready;
  const socket = d.o.managerSocket;
  d.health.setReadiness({
    handlerVerified: d.verified,
    labelsSet: d.labelsOk && ready,
    reason: !ready || !d.verified ? d.notReady || `runtime ${d.state}` : undefined,
    managerDown:
      socket === null || d.managerSocket?.ok === true
        ? undefined
        : d.managerSocket === undefined
          ? `vNode manager socket ${socket}: not probed yet`
          : d.managerSocket.reason,
  });
}

/** The node goes `failed` with a Warning (once per reason until it is ready again). */
async function fail(d: Daemon, reason: string, message: string): Promise<void> {
  d.failures++;
  d.verified = false;
  d.log.error({ phase: "install", reason: message }, reason);
  await setState(d, RuntimeState.Failed, message);
  if (d.lastWarning !== reason) {
    d.lastWarning = reason;
    await event(d, "Warning", reason, message, "Install");
  }
}

function event(
  d: Daemon,
  type: EventType,
  reason: string,
  message: string,
  action: string,
): Promise<void> {
  return recordEvent(d.kube, d.log, d.o.node, { type, reason, message, action });
}

/** Events are best effort: a failure is logged, never fatal. */
async function recordEvent(
  kube: KubeClient,
  log: Logger,
  node: string,
  e: { type: EventType; reason: string; message: string; action: string },
): Promise<void> {
  try {
    await kube.createNodeEvent(node, e);
  } catch (err) {
    log.warn({ phase: "event", event: e.reason, reason: messageOf(err) }, "could not record event");
  }
}

/** SIGTERM's flag, and a sleep it cuts short. */
class StopSignal {
  private readonly controller = new AbortController();

  get requested(): boolean {
    return this.controller.signal.aborted;
  }

  request(): void {
    this.controller.abort();
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms, this.controller.signal);
  }
}
