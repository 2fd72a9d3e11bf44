/**
 * The daemon's decisions, as pure functions: which node labels to set, which repair a drift
 * report calls for, and whether the containerd restart budget still allows one. The daemon
 * (daemon.ts) does the I/O around them.
 */
import { ISOLATION_MODE_LABEL, RUNTIME_LABEL, type RuntimeState } from "vnode-contract";
import type { IsolationMode } from "vnode-contract";

/** The labels the node should carry while the runtime is in `state`. */
export function desiredLabels(state: RuntimeState, mode: IsolationMode): Record<string, string> {
  return { [RUNTIME_LABEL]: state, [ISOLATION_MODE_LABEL]: mode };
}

/**
 * The merge patch that turns `current` into `desired` for the keys of `desired` (`null` removes
 * a label); null when nothing differs. Other labels are never touched.
 */
export function labelPatch(
  current: Readonly<Record<string, string>> | undefined,
  desired: Readonly<Record<string, string | null>>,
): Record<string, string | null> | null {
  const patch: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(desired)) {
    const now = current?.[key];
    if (value === null ? now !== undefined : now !== value) patch[key] = value;
  }
  return Object.keys(patch).length > 0 ? patch : null;
}

/** What containerd's CRI says about the handler, in one pass. */
export type CriView =
  | { state: "live" }
  | { state: "missing"; handlers: string[] }
  | { state: "unreachable" | "not-ready"; reason: string };

/** One look at the node: what install would change in the config, and the CRI's view. */
export interface DriftReport {
  /** `path: purpose` of every config file install would change; empty when registered. */
  configChanges: string[];
  /** Payload files the ledger records that are gone from the host. */
  missingArtifacts: string[];
  cri: CriView;
  /**
   * Config files where another tool rewrote the agent's runtime table without its block (as
   * the ledger recorded it): install re-adopts them, the handler never stopped working.
   */
  rewritten?: string[];
  /**
   * Why install would refuse containerd's config as it is now (a ConfigError's sentence), e.g.
   * another tool rewrote the table and changed it. The agent then touches nothing.
   */
  configProblem?: string;
}

/**
 * - `none`: everything in place.
 * - `install`: the config or the payload lost our part; install puts it back (and restarts
 *   containerd when the config it loads changes).
 * - `restart`: the config is right but containerd runs without the handler (it was started
 *   from another config); only a restart loads it. Install would not do: it sees nothing to
 *   change, verifies, fails and rolls the config back.
 * - `wait`: containerd does not answer or is not ready. Someone else is restarting it (k3s,
 *   systemd, an admin) or it is down, which its supervisor owns; look again next time rather
 *   than race that restart.
 * - `refuse`: install would refuse the config as it is (`configProblem`): nothing is touched,
 *   the shim stays, and the node says why until someone fixes the config.
 */
export type RepairAction = "none" | "install" | "restart" | "wait" | "refuse";

export function repairFor(d: DriftReport): RepairAction {
  if (d.cri.state === "unreachable" || d.cri.state === "not-ready") return "wait";
  if (d.configProblem !== undefined) return "refuse";
  if (d.configChanges.length > 0 || d.missingArtifacts.length > 0) return "install";
  if (d.cri.state === "missing") return "restart";
  return "none";
}

/** One sentence on what drifted, for the Event and the log. */
export function describeDrift(d: DriftReport, handler: string): string {
  const parts: string[] = [];
  if (d.configProblem !== undefined) {
    parts.push(
      `containerd's config cannot take runtime handler "${handler}": ${d.configProblem.replace(/\.$/, "")}`,
    );
  } else if (d.rewritten !== undefined && d.rewritten.length > 0) {
    parts.push(
      `another tool rewrote ${d.rewritten.join(", ")} without the vnode-agent block, keeping runtime "${handler}" as the agent recorded it; re-adopting it (${d.configChanges.join("; ")})`,
    );
  } else if (d.configChanges.length > 0) {
    parts.push(
      `containerd's config lost runtime handler "${handler}" (${d.configChanges.join("; ")})`,
    );
  }
  if (d.missingArtifacts.length > 0) {
    parts.push(`payload files are missing: ${d.missingArtifacts.join(", ")}`);
  }
  if (d.cri.state === "missing") {
    parts.push(
      `the CRI does not report handler "${handler}" (it reports ${d.cri.handlers.length > 0 ? d.cri.handlers.join(", ") : "none"})`,
    );
  }
  return parts.length > 0 ? `${parts.join("; ")}.` : "no drift.";
}

/** The restart budget as a value: the limit, its window, and the restarts it counted. */
export interface RestartBudgetView {
  readonly max: number;
  readonly windowMs: number;
  /** When containerd was restarted, oldest first. */
  readonly restarts: readonly number[];
}

/** Restarts counted in the window ending at `now`. */
export function restartsInWindow(b: RestartBudgetView, now: number): number {
  return b.restarts.filter((t) => t > now - b.windowMs).length;
}

/** When the next restart is allowed again (`now` when it already is; never with max 0). */
export function nextRestartAllowedAt(b: RestartBudgetView, now: number): number {
  const recent = b.restarts.filter((t) => t > now - b.windowMs);
  if (recent.length < b.max) return now;
  if (b.max === 0) return Infinity;
  return recent[recent.length - b.max] + b.windowMs;
}

/**
 * At most `max` containerd restarts in any `windowMs`: a repair that keeps failing, or an
 * admin tool that keeps removing the handler, ends in `failed` instead of a restart loop that
 * restarts every container's runtime on the node. Old entries age out, so the budget refills.
 */
export class RestartBudget {
  private times: number[] = [];

  constructor(
    readonly max: number,
    readonly windowMs: number,
  ) {
    if (!Number.isInteger(max) || max < 0) {
      throw new Error(`restart budget max must be an integer >= 0; got ${max}.`);
    }
    if (!(windowMs > 0)) throw new Error(`restart budget window must be > 0 ms; got ${windowMs}.`);
  }

  /** The budget as a value at `now`; entries that aged out are dropped for good. */
  view(now: number): RestartBudgetView {
    this.times = this.times.filter((t) => t > now - this.windowMs);
    return { max: this.max, windowMs: this.windowMs, restarts: [...this.times] };
  }

  /** Restarts counted in the window ending at `now`. */
  used(now: number): number {
    return restartsInWindow(this.view(now), now);
  }

  allows(now: number): boolean {
    return this.used(now) < this.max;
  }

  record(now: number): void {
    this.times.push(now);
  }

  /** When the next restart is allowed again (`now` when it already is). */
  nextAllowedAt(now: number): number {
    return nextRestartAllowedAt(this.view(now), now);
  }
}
