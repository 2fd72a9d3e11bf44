/**
 * The daemon's repair policy (agent/src/daemon/repairPolicy.ts), as a table: node state, drift
 * report, restart budget and clock in, the step out. No API server, no containerd.
 */
import {
  type Failure,
  type RepairInput,
  type RepairStep,
  repairStep,
} from "../../agent/src/daemon/repairPolicy";
import type { DriftReport } from "../../agent/src/daemon/reconcile";

const NOW = Date.parse("2026-11-29T12:00:00.000Z");
const MIN = 60_000;

const clean: DriftReport = { configChanges: [], missingArtifacts: [], cri: { state: "live" } };
const criMissing: DriftReport = { ...clean, cri: { state: "missing", handlers: ["runc"] } };
const configLost: DriftReport = {
  ...clean,
  configChanges: ["/etc/containerd/config.toml: register handler"],
};
const MISSING_WHAT = 'the CRI does not report handler "vnode" (it reports runc).';
const CONFIG_WHAT =
  'containerd\'s config lost runtime handler "vnode" (/etc/containerd/config.toml: register handler).';

const input = (over: Partial<RepairInput>): RepairInput => ({
  state: "ready",
  everReady: true,
  report: clean,
  secondLook: false,
  restartStrategy: "systemd",
  handler: "vnode",
  budget: { max: 3, windowMs: 10 * MIN, restarts: [] },
  now: NOW,
  ...over,
});
const limit = (message: string): RepairStep => ({
  step: "hold",
  failure: { reason: "RestartLimitReached", message } satisfies Failure,
});

test.each<[string, Partial<RepairInput>, RepairStep]>([
  [
    "containerd unreachable: wait",
    { report: { ...configLost, cri: { state: "unreachable", reason: "connect ENOENT" } } },
    { step: "wait", reason: "connect ENOENT" },
  ],
  [
    "containerd not ready: wait, even with the config lost",
    { report: { ...configLost, cri: { state: "not-ready", reason: "runtime not ready" } } },
    { step: "wait", reason: "runtime not ready" },
  ],
  ["no drift, ready: nothing", {}, { step: "in-place", becomeReady: false }],
  [
    "no drift while installing (--restart none, an operator restarted containerd): ready",
    { state: "installing", everReady: false, restartStrategy: "none" },
    { step: "in-place", becomeReady: true },
  ],
  [
    "no drift after a failure: ready again",
    { state: "failed" },
    { step: "in-place", becomeReady: true },
  ],
  [
    "handler missing from the CRI, first look: look again",
    { report: criMissing },
    { step: "look-again" },
  ],
  [
    "handler missing, second look: restart, announced",
    { report: criMissing, secondLook: true },
    { step: "repair", how: "restart", what: MISSING_WHAT, drift: true, announce: true },
  ],
  [
    "handler missing, --restart none, ready: hold and fail",
    { report: criMissing, secondLook: true, restartStrategy: "none" },
    {
      step: "hold",
      failure: {
        reason: "DriftNotRepaired",
        message: `${MISSING_WHAT} With --restart none the agent does not restart containerd; restart it to load the handler.`,
      },
    },
  ],
  [
    "handler missing, --restart none, already failed: hold quietly",
    { report: criMissing, secondLook: true, restartStrategy: "none", state: "failed" },
    { step: "hold", failure: null },
  ],
  [
    "config lost: install at once (no second look needed)",
    { report: configLost },
    { step: "repair", how: "install", what: CONFIG_WHAT, drift: true, announce: true },
  ],
  [
    "config lost and the CRI misses it: install, which restarts",
    { report: { ...configLost, cri: criMissing.cri } },
    {
      step: "repair",
      how: "install",
      what: `${CONFIG_WHAT.slice(0, -1)}; ${MISSING_WHAT}`,
      drift: true,
      announce: true,
    },
  ],
  [
    "payload gone before the runtime was ever ready: install again, no drift Event",
    {
      report: { ...clean, missingArtifacts: ["/opt/vnode/bin/vnode-manager"] },
      state: "failed",
      everReady: false,
    },
    {
      step: "repair",
      how: "install",
      what: "payload files are missing: /opt/vnode/bin/vnode-manager.",
      drift: false,
      announce: false,
    },
  ],
  [
    "drift after a failure: a drift repair, but the node already has its Warning",
    { report: configLost, state: "failed" },
    { step: "repair", how: "install", what: CONFIG_WHAT, drift: true, announce: false },
  ],
  [
    "budget spent: hold and fail, saying when it refills",
    {
      report: configLost,
      budget: { max: 3, windowMs: 10 * MIN, restarts: [NOW - 9 * MIN, NOW - 5 * MIN, NOW - MIN] },
    },
    limit(
      `${CONFIG_WHAT} Not repairing: the agent restarted containerd 3 time(s) in the last 10m (--max-restarts 3); it tries again after 2026-11-29T12:01:00.000Z.`,
    ),
  ],
  [
    "a restart exactly one window ago no longer counts",
    {
      report: configLost,
      budget: { max: 2, windowMs: 10 * MIN, restarts: [NOW - 10 * MIN, NOW - MIN] },
    },
    { step: "repair", how: "install", what: CONFIG_WHAT, drift: true, announce: true },
  ],
  [
    "--max-restarts 0: never",
    { report: criMissing, secondLook: true, budget: { max: 0, windowMs: MIN, restarts: [] } },
    limit(
      `${MISSING_WHAT} Not repairing: the agent restarted containerd 0 time(s) in the last 1m (--max-restarts 0); it never restarts containerd.`,
    ),
  ],
  [
    "a config install would refuse (another tool changed the agent's table): hold and fail, touch nothing",
    { report: { ...clean, configProblem: "/etc/containerd/config.toml defines runtime X." } },
    {
      step: "hold",
      failure: {
        reason: "DriftNotRepaired",
        message:
          "containerd's config cannot take runtime handler \"vnode\": /etc/containerd/config.toml defines runtime X. Not repairing: the agent leaves containerd's config, the shim and its ledger as they are until the config is fixed.",
      },
    },
  ],
  [
    "the same while containerd restarts: wait first",
    {
      report: {
        ...clean,
        configProblem: "bad.",
        cri: { state: "unreachable", reason: "connect ENOENT" },
      },
    },
    { step: "wait", reason: "connect ENOENT" },
  ],
  [
    "the agent's table rewritten without its block: re-adopted by install, announced",
    {
      report: {
        ...configLost,
        rewritten: ["/etc/containerd/config.toml"],
      },
    },
    {
      step: "repair",
      how: "install",
      what: 'another tool rewrote /etc/containerd/config.toml without the vnode-agent block, keeping runtime "vnode" as the agent recorded it; re-adopting it (/etc/containerd/config.toml: register handler).',
      drift: true,
      announce: true,
    },
  ],
])("%s", (_what, over, expected) => {
  expect(repairStep(input(over))).toEqual(expected);
});
