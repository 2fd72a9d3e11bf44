/**
 * The installer: plan, install, uninstall and status of the vNode runtime handler on one
 * node. It only wires the modules that own each concern (config planning, ledger, lock,
 * artifacts, restart, CRI), in the order that keeps the host recoverable at every step:
 * intent in the ledger before a host file changes, restart only when the config changed,
 * verify through the CRI, roll back when the handler does not come up.
 */
import { accessSync, constants as fsConstants, existsSync } from "node:fs";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { createTwoFilesPatch } from "diff";
import { PAYLOAD_ROLES, VNODE_CNI_CONF_DIR } from "vnode-contract";
import { activeConfFile, chainedConfList, cniSettings, VNODE_CONFLIST } from "../containerd/cni";
import { applyLinks, inspectLinks, type LinkPlanItem, planLinks, removeLinks } from "../host/links";
import { readPayloadRoles, roleLinks, shimPath } from "../host/payload";
import {
  installArtifacts,
  planArtifactsOnHost,
  removeArtifacts,
  type ArtifactPlanItem,
} from "../host/artifacts";
import {
  type ConfigVersion,
  type HandlerSpec,
  readConfigVersion,
  runtimeTable,
} from "../containerd/config/config";
import {
  effectiveConfig,
  type EffectiveConfig,
  mainConfigText,
  registeredHandler,
} from "../containerd/config/effective";
import {
  type ContainerdLayout,
  type DetectOptions,
  detectLayout,
} from "../containerd/config/layout";
import {
  type AdoptedRuntime,
  type FileChange,
  planRegister,
  planUnregister,
} from "../containerd/config/plan";
import type { RestartResult, RestartStrategy } from "../containerd/control/restart";
import type { FileSnapshot } from "../containerd/config/imports";
import { collectConfigFiles, hostFiles } from "../containerd/config/snapshot";
import {
  criStatus,
  criVersion,
  type CriVersion,
  type WaitOptions,
  waitForHandler,
} from "../cri/client";
import { AgentError, ExitCode, messageOf } from "../lib/errors";
import { removeFile } from "../host/fsAtomic";
import { decodeHostText, encodeHostText } from "../host/hostText";
import { hostFilePath, hostPath, realHostPath } from "../host/paths";
import {
  applyFileChange,
  findFile,
  type Ledger,
  type LedgerLocation,
  type LedgerMeta,
  LEDGER_FILE,
  loadLedger,
  newLedger,
  removeLedger,
  removeLeftovers,
  removeStateDirIfEmpty,
  revertFile,
  saveLedgerIfChanged,
  withMeta,
} from "../host/ledger";
import { withHostLock } from "../host/lock";
import type { Logger } from "../lib/log";
import {
  type CheckName,
  type CheckResult,
  preflightPassed,
  readPayloadFact,
  runPreflight,
  type Version,
} from "./preflight";

declare const AGENT_VERSION: string;
export const agentVersion = (): string =>
  typeof AGENT_VERSION === "string" ? AGENT_VERSION : "0.0.0-dev";

export type IsolationMode = "per-namespace" | "per-pod";

/** Everything the installer needs to know; the CLI builds it from flags. */
export interface InstallerOptions {
  hostRoot: string;
  containerd: DetectOptions;
  handler: HandlerSpec;
  isolationMode: IsolationMode;
  /** Directory (agent filesystem) whose files are installed; none: config only. */
  payloadDir?: string;
  /** Host path. */
  installDir: string;
  /** Host path of the handler's CNI conf dir; used with a payload (it brings `vnode-cni`). */
  cniConfDir?: string;
  /** Host path. */
  stateDir: string;
  restart: { strategy: RestartStrategy; command?: string; unit?: string };
  verify: "cri" | "none";
  skipPreflight: ReadonlySet<CheckName>;
  minContainerd: Version;
  /** How long to wait for containerd's CRI after a restart and for the handler (default 10 s). */
  verifyWaitMs?: number;
  lockTimeoutMs?: number;
}

export interface Plan {
  layout: ContainerdLayout;
  configVersion: ConfigVersion;
  changes: FileChange[];
  artifacts: ArtifactPlanItem[];
  /** The role names of the payload's binary (links), see host/payload.ts. */
  links: LinkPlanItem[];
  /** containerd must restart: the config it loads changes. */
  restart: boolean;
}

/**
 * The handler as registered: with a payload, containerd runs the installed shim link
 * (`runtime_path`, unless `--runtime-path` says otherwise) and gives the handler its own CNI
 * conf dir (one network: the chain). Pure, so install and the drift check agree.
 */
export function handlerSpec(o: InstallerOptions): HandlerSpec {
  if (o.payloadDir === undefined) return o.handler;
  return {
    ...o.handler,
    runtimePath: o.handler.runtimePath ?? shimPath(o.installDir),
    cniConfDir: o.cniConfDir ?? VNODE_CNI_CONF_DIR,
    cniMaxConfNum: 1,
  };
}

/**
 * The vNode handler's chained CNI network list as a change of its file (null: in sync, or no
 * payload). Without a network in the host's conf dir yet (the CNI plugin's DaemonSet writes
 * it later) there is nothing to chain: vNode pods wait for it like every other pod, and the
 * daemon's drift check writes the chain once it appears.
 */
export async function planCniChain(
  o: InstallerOptions,
  doc: EffectiveConfig,
  readFile: (hostPath: string) => Promise<string | null>,
  listDir: (hostPath: string) => Promise<string[] | null>,
): Promise<FileChange | null> {
  const spec = handlerSpec(o);
  if (spec.cniConfDir === undefined) return null;
  const { confDir } = cniSettings(doc.doc, doc.version);
  const active = activeConfFile((await listDir(confDir)) ?? []);
  if (active === null) return null;
  const source = path.posix.join(confDir, active);
  const text = await readFile(source);
  if (text === null) return null;
  const target = path.posix.join(spec.cniConfDir, VNODE_CONFLIST);
  const after = chainedConfList(source, text);
  const before = await readFile(target);
  if (before === after) return null;
  return {
    path: target,
    before,
    after,
    purpose: `the ${o.handler.name} handler's CNI network: ${source} with ${PAYLOAD_ROLES.cni} chained after it`,
  };
}

function loc(o: InstallerOptions): LedgerLocation {
  return { hostRoot: o.hostRoot, stateDir: o.stateDir };
}

function socketOf(o: InstallerOptions, layout: ContainerdLayout): string {
  return hostPath(o.hostRoot, layout.socket);
}

/** The node's containerd layout: explicit flags, else what exists under the host root. */
export function resolveLayout(o: InstallerOptions): ContainerdLayout {
  return detectLayout((p) => existsSync(hostFilePath(o.hostRoot, p)), o.containerd);
}

/** The node as the installer sees it: containerd's layout and its config files. */
interface HostView {
  layout: ContainerdLayout;
  files: FileSnapshot;
}

async function inspectHost(o: InstallerOptions): Promise<HostView> {
  const layout = resolveLayout(o);
  return { layout, files: await collectConfigFiles(layout, hostFiles(o.hostRoot)) };
}

/**
 * The runtime table the ledger says the agent registered, so a copy another tool rewrote
 * without the agent's block is recognised as the agent's (and nothing else is).
 */
export function recordedRuntime(ledger: Ledger | null): AdoptedRuntime | undefined {
  if (ledger === null) return undefined;
  return { name: ledger.handler.name, table: runtimeTable(ledger.handler) };
}

/** Computes what `install` would do. Reads the host, changes nothing. */
export async function plan(
  o: InstallerOptions,
  ledger?: Ledger | null,
  host?: HostView,
): Promise<Plan> {
  const { layout, files } = host ?? (await inspectHost(o));
  const recorded = ledger === undefined ? await loadLedger(loc(o)) : ledger;
  const before = effectiveConfig(layout, files);
  const adopt = recordedRuntime(recorded);
  const spec = handlerSpec(o);
  const changes = planRegister(layout, files, spec, adopt?.name === spec.name ? adopt : undefined);
  const after = { ...files };
  for (const c of changes) after[c.path] = c.after;
  let artifacts: ArtifactPlanItem[] = [];
  let links: LinkPlanItem[] = [];
  const io = hostFiles(o.hostRoot);
  if (o.payloadDir !== undefined) {
    const roles = await readPayloadRoles(o.payloadDir);
    artifacts = await planArtifactsOnHost(o.hostRoot, recorded, {
      payloadDir: o.payloadDir,
      installDir: o.installDir,
      files: roles.files,
    });
    const wanted = roleLinks(
      roles,
      o.installDir,
      cniSettings(before.doc, before.version).binDirs[0],
    );
    const recordedLinks = recorded?.links ?? [];
    links = planLinks(wanted, await inspectLinks(o.hostRoot, wanted, recordedLinks), recordedLinks);
  }
  const restart = !isDeepStrictEqual(before.doc, effectiveConfig(layout, after).doc);
  const chain = await planCniChain(o, before, io.readFile, io.listDir);
  return {
    layout,
    configVersion: before.version,
    changes: chain === null ? changes : [...changes, chain],
    artifacts,
    links,
    restart,
  };
}

function unifiedDiff(c: FileChange): string {
  return createTwoFilesPatch(
    c.before === null ? "/dev/null" : `a${c.path}`,
    c.after === null ? "/dev/null" : `b${c.path}`,
    c.before ?? "",
    c.after ?? "",
  ).replace(/^=+\n/, "");
}

/** `plan` for people: a unified diff per file, the artifacts, and the restart verdict. */
export function formatPlan(p: Plan): string {
  const out: string[] = [
    `containerd: ${p.layout.distribution}, config ${p.layout.config} (version ${p.configVersion})`,
  ];
  if (p.changes.length === 0) out.push("config: no change");
  for (const c of p.changes) out.push(`# ${c.purpose}`, unifiedDiff(c));
  for (const a of p.artifacts) out.push(`artifact ${a.action} ${a.target}`);
  for (const l of p.links) out.push(`link ${l.action} ${l.path} -> ${l.target}`);
  out.push(`containerd restart: ${p.restart ? "yes" : "no"}`);
  return out.join("\n");
}

/** `plan --json`: the same facts for machines. */
export function planJson(p: Plan): object {
  return {
    distribution: p.layout.distribution,
    configPath: p.layout.config,
    configVersion: p.configVersion,
    socket: p.layout.socket,
    changes: p.changes.map((c) => ({
      path: c.path,
      purpose: c.purpose,
      action: c.before === null ? "create" : c.after === null ? "delete" : "modify",
      diff: unifiedDiff(c),
    })),
    artifacts: p.artifacts.map((a) => ({ target: a.target, action: a.action, sha256: a.sha256 })),
    links: p.links.map((l) => ({ path: l.path, target: l.target, action: l.action })),
    restart: p.restart,
  };
}

/**
 * Runs the preflight checks against this host's containerd. `version` is the CRI's answer
 * when the caller already asked (install needs it for the ledger too).
 */
export async function preflight(
  o: InstallerOptions,
  host?: HostView,
  version?: CriVersion | Error,
): Promise<CheckResult[]> {
  const { layout, files } = host ?? (await inspectHost(o));
  return runPreflight({
    hostRoot: o.hostRoot,
    skip: o.skipPreflight,
    minContainerd: o.minContainerd,
    containerdVersion: async () => {
      const v = version ?? (await criVersion(socketOf(o, layout)));
      if (v instanceof Error) throw v;
      return v;
    },
    configVersion: async () => ({
      path: layout.config,
      version: readConfigVersion(mainConfigText(layout, files), layout.config),
    }),
    // With a payload, containerd runs its shim role through runtime_path (host/payload.ts).
    payload: () => readPayloadFact(o.payloadDir, PAYLOAD_ROLES.shim),
  });
}

export interface InstallResult {
  plan: Plan;
  preflight: CheckResult[];
  restart: RestartResult | null;
  /** Handlers the CRI reports after install (empty when --verify none). */
  handlers: string[];
}

/** The wait while containerd comes back, from the options (cri/client's tight backoff). */
export function verifyWait(o: InstallerOptions): WaitOptions {
  return o.verifyWaitMs === undefined ? {} : { waitMs: o.verifyWaitMs };
}

/** Restarts this node's containerd with the options' strategy; waits until the CRI answers. */
export async function restartContainerdFor(
  o: InstallerOptions,
  layout: ContainerdLayout,
): Promise<RestartResult> {
  // Loaded on first restart: a no-op run never needs the restart strategies (nor the D-Bus
  // client behind the systemd one).
  const { restartContainerd } = await import("../containerd/control/restart");
  return restartContainerd({
    strategy: o.restart.strategy,
    command: o.restart.command,
    unit: o.restart.unit,
    hostRoot: o.hostRoot,
    socket: layout.socket,
    distribution: layout.distribution,
    configPath: layout.config,
    wait: verifyWait(o),
  });
}

/**
 * Installs: preflight, config change and payload under the ledger's protocol, restart only
 * when the effective config changed, verify through the CRI. A handler that does not come
 * up is rolled back (config restored, containerd restarted) and reported with exit code 4.
 */
export async function install(o: InstallerOptions, log: Logger): Promise<InstallResult> {
  try {
    return await installLocked(o, log);
  } finally {
    // A refused install (bad config, read-only dir) leaves no empty state dir behind.
    await removeStateDirIfEmpty(loc(o));
  }
}

async function installLocked(o: InstallerOptions, log: Logger): Promise<InstallResult> {
  return withHostLock(
    o.hostRoot,
    async () => {
      const t0 = Date.now();
      let ledger = await loadLedger(loc(o));
      await removeLeftovers(loc(o), ledger);
      const host = await inspectHost(o);
      // Ask containerd for its version while the plan hashes the payload: they overlap.
      const asked = criVersion(socketOf(o, host.layout)).catch((e: Error) => e);
      const p = await plan(o, ledger, host);
      log.info({ phase: "plan", changes: p.changes.length, restart: p.restart }, "planned");

      const version = await asked;
      const checks = await preflight(o, host, version);
      for (const c of checks) log.info({ phase: "preflight", check: c.name, ok: c.ok }, c.detail);
      if (!preflightPassed(checks)) {
        const failed = checks.filter((c) => !c.ok);
        throw new AgentError(
          `preflight failed: ${failed.map((c) => `${c.name}: ${c.detail}`).join("; ")}.`,
          ExitCode.PreflightFailed,
        );
      }

      if (p.changes.length > 0 || p.artifacts.some((a) => a.action !== "unchanged"))
        checkWritable(o, [
          ...p.changes.map((c) => c.path),
          ...p.artifacts.filter((a) => a.action !== "unchanged").map((a) => a.target),
          `${o.stateDir}/${LEDGER_FILE}`,
        ]);

      // Ledger writes: every host write is preceded by a saved intent (which carries the new
      // metadata and the done marks so far); the last done marks are saved once at the end,
      // and a run that changed nothing writes nothing.
      const meta = ledgerMeta(o, p, version instanceof Error ? null : version);
      if (ledger === null || !sameMeta(ledger, meta)) {
        ledger = ledger === null ? newLedger(meta) : withMeta(ledger, meta);
      }
      for (const c of p.changes) ledger = await applyChange(o, ledger, c);
      if (o.payloadDir !== undefined) {
        // The plan above hashed the payload and the install dir under this same lock hold.
        ({ ledger } = await installArtifacts(
          loc(o),
          ledger,
          { payloadDir: o.payloadDir, installDir: o.installDir, saveDone: false },
          p.artifacts,
        ));
        // After the binaries they point at; saved step by step (a link is one rename).
        ledger = await applyLinks(loc(o), ledger, p.links);
      }
      await saveLedgerIfChanged(loc(o), ledger);
      log.info({ phase: "write", durationMs: Date.now() - t0 }, "host files written");

      const r = p.restart ? await restartOrRollback(o, p.layout, log) : null;
      if (r) log.info({ phase: "restart", durationMs: r.durationMs, ...r.phases }, r.detail);
      if (p.restart && !r?.restarted) {
        log.warn({ phase: "verify" }, "containerd was not restarted; the handler is not live yet");
        return { plan: p, preflight: checks, restart: r, handlers: [] };
      }
      const handlers = o.verify === "cri" ? await verifyOrRollback(o, p.layout, log) : [];
      log.info({ phase: "install", durationMs: Date.now() - t0 }, "installed");
      return { plan: p, preflight: checks, restart: r, handlers };
    },
    { timeoutMs: o.lockTimeoutMs ?? 60_000, stateDir: o.stateDir, logger: log },
  );
}

/**
 * Refuses before the first write (no ledger, no backup) when a file install must write sits in
 * a directory the agent cannot write: a read-only host mount (EROFS) or permissions. The nearest
 * existing ancestor decides, since missing dirs are created there.
 */
function checkWritable(o: InstallerOptions, files: readonly string[]): void {
  for (const file of files) {
    let dir = path.posix.dirname(realHostPath(o.hostRoot, file));
    while (dir !== "/" && !existsSync(hostPath(o.hostRoot, dir))) dir = path.posix.dirname(dir);
    try {
      accessSync(hostPath(o.hostRoot, dir), fsConstants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      const why = code === "EROFS" ? "is on a read-only filesystem" : `is not writable (${code})`;
      throw new AgentError(
        `cannot write ${file}: ${dir} ${why} in the agent's view of the host (--host-root ${o.hostRoot}); mount it read-write into the agent (the DaemonSet's hostPath volumes), then rerun. Nothing was changed.`,
        ExitCode.Failure,
      );
    }
  }
}

function ledgerMeta(o: InstallerOptions, p: Plan, version: CriVersion | null): LedgerMeta {
  const { name, runtimeType, runtimePath, podAnnotations, cniConfDir, cniMaxConfNum } =
    handlerSpec(o);
  return {
    agentVersion: agentVersion(),
    handler: {
      name,
      runtimeType,
      ...(runtimePath === undefined ? {} : { runtimePath }),
      ...(podAnnotations === undefined ? {} : { podAnnotations: [...podAnnotations] }),
      ...(cniConfDir === undefined ? {} : { cniConfDir }),
      ...(cniMaxConfNum === undefined ? {} : { cniMaxConfNum }),
    },
    isolationMode: o.isolationMode,
    containerd: {
      configPath: p.layout.config,
      configVersion: p.configVersion,
      version: version?.runtimeVersion ?? null,
      distribution: p.layout.distribution,
    },
  };
}

function sameMeta(ledger: Ledger, meta: LedgerMeta): boolean {
  const { agentVersion, handler, isolationMode, containerd } = ledger;
  return isDeepStrictEqual({ agentVersion, handler, isolationMode, containerd }, meta);
}

async function applyChange(o: InstallerOptions, ledger: Ledger, c: FileChange): Promise<Ledger> {
  if (c.after !== null) {
    const bytes = encodeHostText(c.after);
    return (await applyFileChange(loc(o), ledger, c.path, bytes, { saveDone: false })).ledger;
  }
  // The planner only deletes files the agent created (an old drop-in of ours).
  const entry = findFile(ledger, c.path);
  if (entry) await revertFile(loc(o), entry);
  else await removeFile(hostFilePath(o.hostRoot, c.path));
  return ledger;
}

/** Restarts containerd; when it does not come back, the change is rolled back (exit 4). */
async function restartOrRollback(
  o: InstallerOptions,
  layout: ContainerdLayout,
  log: Logger,
): Promise<RestartResult> {
  try {
    return await restartContainerdFor(o, layout);
  } catch (err) {
    return rollbackAndFail(o, layout, log, `containerd restart failed: ${messageOf(err)}`);
  }
}

async function verifyOrRollback(
  o: InstallerOptions,
  layout: ContainerdLayout,
  log: Logger,
): Promise<string[]> {
  const t0 = Date.now();
  const check = await waitForHandler(socketOf(o, layout), o.handler.name, verifyWait(o));
  if (check.live) {
    log.info(
      { phase: "verify", attempts: check.attempts, durationMs: Date.now() - t0 },
      `handler ${o.handler.name} is live`,
    );
    return check.handlers;
  }
  return rollbackAndFail(o, layout, log, `verification failed: ${check.reason}`);
}

async function rollbackAndFail(
  o: InstallerOptions,
  layout: ContainerdLayout,
  log: Logger,
  reason: string,
): Promise<never> {
  log.error({ phase: "rollback", reason }, "rolling back");
  let rollback = "rolled back";
  try {
    // The handler never went live, so nothing uses the payload: clean up even when
    // containerd does not come back (it may have been down from the start).
    const r = await revertAll(o, layout, log, { cleanupIfRestartFails: true });
    if (r.restartError) rollback += ` (containerd is still not answering: ${r.restartError})`;
  } catch (err) {
    rollback = `rollback failed too: ${messageOf(err)}`;
  }
  throw new AgentError(
    `${reason.replace(/\.$/, "")}; ${rollback.replace(/\.$/, "")}.`,
    ExitCode.VerificationFailed,
  );
}

interface RevertResult {
  configChanged: boolean;
  restart: RestartResult | null;
  restartError?: string;
}

/**
 * Undoes everything the ledger records in the safe order: config files (original bytes, or
 * only our part when edited since), containerd restart when the effective config changed,
 * then the payload, then the ledger. When the restart fails, uninstall stops there so a rerun
 * can finish; a rollback goes on (see rollbackAndFail).
 */
async function revertAll(
  o: InstallerOptions,
  layout: ContainerdLayout,
  log: Logger,
  { cleanupIfRestartFails = false } = {},
): Promise<RevertResult> {
  const ledger = await loadLedger(loc(o));
  const files = await collectConfigFiles(layout, hostFiles(o.hostRoot));
  const before = effectiveConfig(layout, files).doc;
  const adopt = recordedRuntime(ledger);
  const ours = new Map(planUnregister(layout, files, adopt).map((c) => [c.path, c.after]));
  for (const entry of ledger?.files ?? []) {
    const d = await revertFile(loc(o), entry, (cur) => {
      const rest = ours.has(entry.path) ? ours.get(entry.path)! : decodeHostText(cur);
      return rest === null ? null : encodeHostText(rest);
    });
    log.info({ phase: "revert", file: entry.path, action: d.action }, d.reason);
  }
  const after = effectiveConfig(layout, await collectConfigFiles(layout, hostFiles(o.hostRoot)));
  if (adopt !== undefined && registeredHandler(after, adopt.name) !== undefined) {
    // Removing the payload now would leave containerd a handler pointing at nothing.
    throw new AgentError(
      `runtime "${adopt.name}" is still registered in containerd's config (${after.files.join(", ")}) outside a vnode-agent block and not as the agent recorded it; remove it by hand, then rerun uninstall. The payload and the ledger stay until then.`,
      ExitCode.Failure,
    );
  }
  const configChanged = !isDeepStrictEqual(before, after.doc);
  let r: RestartResult | null = null;
  let restartError: string | undefined;
  if (configChanged) {
    try {
      r = await restartContainerdFor(o, layout);
      log.info({ phase: "restart", durationMs: r.durationMs, ...r.phases }, r.detail);
    } catch (err) {
      restartError = messageOf(err);
      log.error({ phase: "restart", reason: restartError }, "containerd restart failed");
      if (!cleanupIfRestartFails) {
        throw new AgentError(
          `the config is restored, but containerd did not restart: ${restartError.replace(/\.$/, "")}; the payload and ledger stay until uninstall is rerun.`,
          ExitCode.Failure,
        );
      }
    }
  }
  // The links first: they point at the artifacts.
  const unlinked = await removeLinks(o.hostRoot, ledger?.links ?? []);
  for (const k of unlinked.kept) log.warn({ phase: "links", file: k.path }, k.reason);
  const removal = await removeArtifacts(o.hostRoot, ledger?.artifacts ?? []);
  for (const k of removal.kept) log.warn({ phase: "artifacts", file: k.path }, k.reason);
  await removeLedger(loc(o));
  return { configChanged, restart: r, ...(restartError ? { restartError } : {}) };
}

export interface UninstallResult {
  installed: boolean;
  configChanged: boolean;
  restart: RestartResult | null;
}

/**
 * Uninstalls in the safe order: config reverted (original bytes when untouched since, else
 * only our part), containerd restarted, then artifacts, then the ledger. Idempotent.
 */
export async function uninstall(o: InstallerOptions, log: Logger): Promise<UninstallResult> {
  const result = await withHostLock(
    o.hostRoot,
    async () => {
      const ledger = await loadLedger(loc(o));
      await removeLeftovers(loc(o), ledger);
      if (ledger === null) {
        // A run killed before its first intent may have left a backup; it backs up nothing.
        await removeLedger(loc(o));
        log.info({ phase: "uninstall" }, "nothing installed (no ledger)");
        return { installed: false, configChanged: false, restart: null };
      }
      const layout = resolveLayout({
        ...o,
        containerd: {
          ...o.containerd,
          config: o.containerd.config ?? ledger.containerd.configPath,
        },
      });
      const { configChanged, restart: r } = await revertAll(o, layout, log);
      return { installed: true, configChanged, restart: r };
    },
    { timeoutMs: o.lockTimeoutMs ?? 60_000, stateDir: o.stateDir, logger: log },
  );
  // The lock file is gone now; an empty state dir goes too.
  await removeStateDirIfEmpty(loc(o));
  return result;
}

export interface Status {
  ledger: Ledger | null;
  /** Whether the config containerd loads (or will load) registers the handler. */
  configured: boolean;
  /** Handlers the CRI reports; null when containerd did not answer. */
  criHandlers: string[] | null;
  criError?: string;
}

/** What the ledger says is installed and whether containerd really has the handler. */
export async function status(o: InstallerOptions): Promise<Status> {
  const ledger = await loadLedger(loc(o));
  const layout = resolveLayout(o);
  const files = await collectConfigFiles(layout, hostFiles(o.hostRoot));
  const configured =
    registeredHandler(effectiveConfig(layout, files), o.handler.name) !== undefined;
  try {
    const s = await criStatus(socketOf(o, layout), { timeoutMs: 3000 });
    return { ledger, configured, criHandlers: s.handlers };
  } catch (err) {
    return { ledger, configured, criHandlers: null, criError: messageOf(err) };
  }
}
