/**
 * The daemon's repair policy as one pure function: what the node looks like (the runtime state
 * the agent last set, whether the runtime was ever ready, a drift report), the containerd restart
 * budget and the clock in; the step to take out. daemon.ts only looks, takes the step and records
 * what happened. The drift report's own verdict (`repairFor`) and its sentence (`describeDrift`)
 * come from reconcile.ts.
 */
import { RESTART_STRATEGIES, RuntimeState } from "vnode-contract";
import { formatDuration } from "../lib/duration";
import {
  describeDrift,
  type DriftReport,
  nextRestartAllowedAt,
  repairFor,
  type RestartBudgetView,
  restartsInWindow,
} from "./reconcile";

export interface RepairInput {
  /** The runtime state the node's label says (or will say once the patch lands). */
  state: RuntimeState;
  /** The runtime was ready once since the agent started: a repair now is a drift repair. */
  everReady: boolean;
  report: DriftReport;
  /**
   * The report is a second look, taken right after one that called for a restart. Config and
   * CRI are read moments apart: a containerd restarted in between from a config without the
   * handler (k3s re-rendering it) looks like a stale containerd, and a second look tells the two
   * apart before containerd, and every container on the node, is restarted for nothing.
   */
  secondLook: boolean;
  /** `--restart`: with `none` the agent never restarts containerd. */
  restartStrategy: (typeof RESTART_STRATEGIES)[number];
  handler: string;
  budget: RestartBudgetView;
  now: number;
}

/** A Warning the node gets, with the `failed` state. */
export interface Failure {
  reason: "DriftNotRepaired" | "RestartLimitReached";
  message: string;
}

export type RepairStep =
  /** containerd does not answer or is not ready: not ready, look again next pass. */
  | { step: "wait"; reason: string }
  /** A restart looks needed: read the node again and decide on that report. */
  | { step: "look-again" }
  /** Everything in place; `becomeReady` when the state does not say `ready` yet. */
  | { step: "in-place"; becomeReady: boolean }
  /** Not repairable by the agent: the handler is not verified; `failure` when it was ready. */
  | { step: "hold"; failure: Failure | null }
  /**
   * Repair by `install` (config or payload lost our part) or `restart` (containerd runs without
   * the handler its config registers). `drift` when the runtime was ready before (metrics,
   * Events); `announce` when a DriftDetected Warning is due (the node still says ready).
   */
  | { step: "repair"; how: "install" | "restart"; what: string; drift: boolean; announce: boolean };

export function repairStep(i: RepairInput): RepairStep {
  const action = repairFor(i.report);
  if (action === "wait") {
    const cri = i.report.cri;
    return { step: "wait", reason: "reason" in cri ? cri.reason : "containerd is not answering" };
  }
  if (action === "none") return { step: "in-place", becomeReady: i.state !== RuntimeState.Ready };
  if (action === "refuse") {
    // Like install: the agent does not edit a config it cannot recognise as its own, and the
    // shim stays for the handler that may still point at it. It cannot vouch for that handler.
    return {
      step: "hold",
      failure: {
        reason: "DriftNotRepaired",
        message: `${describeDrift(i.report, i.handler)} Not repairing: the agent leaves containerd's config, the shim and its ledger as they are until the config is fixed.`,
      },
    };
  }
  if (action === "restart" && !i.secondLook) return { step: "look-again" };
  const what = describeDrift(i.report, i.handler);
  if (action === "restart" && i.restartStrategy === "none") {
    return {
      step: "hold",
      failure:
        i.state === RuntimeState.Ready
          ? {
              reason: "DriftNotRepaired",
              message: `${what} With --restart none the agent does not restart containerd; restart it to load the handler.`,
            }
          : null,
    };
  }
  // Install counts too: it restarts containerd whenever the config it loads changes.
  const used = restartsInWindow(i.budget, i.now);
  if (used >= i.budget.max) {
    const next = new Date(nextRestartAllowedAt(i.budget, i.now));
    return {
      step: "hold",
      failure: {
        reason: "RestartLimitReached",
        message: `${what} Not repairing: the agent restarted containerd ${used} time(s) in the last ${formatDuration(i.budget.windowMs)} (--max-restarts ${i.budget.max}); ${i.budget.max === 0 ? "it never restarts containerd" : `it tries again after ${next.toISOString()}`}.`,
      },
    };
  }
  return {
    step: "repair",
    how: action,
    what,
    drift: i.everReady,
    announce: i.everReady && i.state === RuntimeState.Ready,
  };
}
