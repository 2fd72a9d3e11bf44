/**
 * The runtime payload (shim and helper binaries): copied from `--payload-dir` (a directory in
 * the agent's own filesystem, e.g. baked into its image) into the host's install dir.
 *
 * Each file is copied to a temp file next to its target and renamed over it, so a shim that
 * containerd is running keeps its old inode and never sees ETXTBSY or half a binary. Every
 * copy is recorded in the ledger before it happens and checked by sha256 after.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { AGENT_DEFAULTS } from "vnode-contract";
import {
  copyFileAtomic,
  errno,
  removeFile,
  removeTempLeftovers,
  sha256File,
  sha256FileComparing,
} from "./fsAtomic";
import { hostPath } from "./paths";
import {
  addArtifactIntent,
  dropArtifact,
  findArtifact,
  markArtifactDone,
  missingDirs,
  removeEmptyDirs,
  saveLedger,
  type ArtifactEntry,
  type Ledger,
  type LedgerLocation,
} from "./ledger";

/** Mode of every installed payload file. */
export const ARTIFACT_MODE = 0o755;

/** One file of the payload dir. */
export interface PayloadFile {
  name: string;
  /** Path in the agent's filesystem. */
  source: string;
  sha256: string;
  size: number;
}

/** A file in the install dir as it is now. */
export interface InstalledState {
  sha256: string;
  mode: number;
}

export type ArtifactAction = "create" | "replace" | "unchanged" | "remove";

export interface ArtifactPlanItem {
  /** Host path of the installed file. */
  target: string;
  action: ArtifactAction;
  /** Payload file; absent for `remove` (a file a previous payload had). */
  source?: string;
  sha256: string;
  currentSha256: string | null;
}

/**
 * Which payload files would be created, replaced (content or mode differs) or left alone, and
 * which files a previous install put in the install dir that the payload no longer has
 * (`remove`, only when still holding the bytes we installed). Pure.
 */
export function planArtifacts(
  payload: readonly PayloadFile[],
  installDir: string,
  current: ReadonlyMap<string, InstalledState | null>,
  recorded: readonly ArtifactEntry[] = [],
): ArtifactPlanItem[] {
  const items: ArtifactPlanItem[] = payload.map((file) => {
    const target = path.posix.join(installDir, file.name);
    const now = current.get(target) ?? null;
    const action: ArtifactAction =
      now === null
        ? "create"
        : now.sha256 === file.sha256 && (now.mode & 0o7777) === ARTIFACT_MODE
          ? "unchanged"
          : "replace";
    return {
      target,
      action,
      source: file.source,
      sha256: file.sha256,
      currentSha256: now?.sha256 ?? null,
    };
  });
  const wanted = new Set(items.map((i) => i.target));
  for (const entry of recorded) {
    const now = current.get(entry.path) ?? null;
    if (wanted.has(entry.path) || path.posix.dirname(entry.path) !== installDir) continue;
    if (now !== null && now.sha256 === entry.sha256) {
      items.push({
        target: entry.path,
        action: "remove",
        sha256: entry.sha256,
        currentSha256: now.sha256,
      });
    }
  }
  return items;
}

/** The regular files of `payloadDir` (symlinks followed), sorted by name, not yet hashed. */
async function listPayload(payloadDir: string): Promise<Omit<PayloadFile, "sha256">[]> {
  let names: string[];
  try {
    names = (await fsp.readdir(payloadDir)).sort();
  } catch (err) {
    if (errno(err) === "ENOENT" || errno(err) === "ENOTDIR") {
      throw new Error(`--payload-dir ${payloadDir} is not a directory.`);
    }
    throw err;
  }
  const files: Omit<PayloadFile, "sha256">[] = [];
  for (const name of names) {
    const source = path.join(payloadDir, name);
    const stat = await fsp.stat(source);
    if (!stat.isFile()) {
      throw new Error(
        `--payload-dir ${payloadDir} contains ${name}, which is not a regular file; only files are installed.`,
      );
    }
    files.push({ name, source, size: stat.size });
  }
  if (files.length === 0) throw new Error(`--payload-dir ${payloadDir} has no files to install.`);
  return files;
}

/** The regular files of `payloadDir` (symlinks followed), sorted by name, with their hashes. */
export async function readPayload(payloadDir: string): Promise<PayloadFile[]> {
  const files: PayloadFile[] = [];
  for (const f of await listPayload(payloadDir)) {
    files.push({ ...f, sha256: await sha256File(f.source) });
  }
  return files;
}

/** The state of each host path in `targets` (null when absent). */
export async function inspectInstalled(
  hostRoot: string,
  targets: readonly string[],
): Promise<Map<string, InstalledState | null>> {
  const states = new Map<string, InstalledState | null>();
  for (const target of targets) {
    const full = hostPath(hostRoot, target);
    try {
      const stat = await fsp.stat(full);
      states.set(target, { sha256: await sha256File(full), mode: stat.mode & 0o7777 });
    } catch (err) {
      if (errno(err) !== "ENOENT") throw err;
      states.set(target, null);
    }
  }
  return states;
}

/**
 * Hashes one payload file and reads the state of its installed copy (host path `target`). An
 * installed copy holding the same bytes has the same hash: one pass compares and hashes, and
 * only a copy that differs is hashed on its own.
 */
async function hashAgainstInstalled(
  hostRoot: string,
  source: string,
  target: string,
): Promise<{ sha256: string; installed: InstalledState | null }> {
  const full = hostPath(hostRoot, target);
  let mode: number;
  try {
    mode = (await fsp.stat(full)).mode & 0o7777;
  } catch (err) {
    if (errno(err) !== "ENOENT") throw err;
    return { sha256: await sha256File(source), installed: null };
  }
  let compared: { sha256: string; identical: boolean };
  try {
    compared = await sha256FileComparing(source, full);
  } catch (err) {
    // The installed copy vanished after the stat (sha256FileComparing opens it first).
    if (errno(err) !== "ENOENT" || !(await missing(full))) throw err;
    return { sha256: await sha256File(source), installed: null };
  }
  const installedSha = compared.identical ? compared.sha256 : await sha256File(full);
  return { sha256: compared.sha256, installed: { sha256: installedSha, mode } };
}

async function missing(file: string): Promise<boolean> {
  try {
    await fsp.stat(file);
    return false;
  } catch (err) {
    if (errno(err) === "ENOENT") return true;
    throw err;
  }
}

export interface ArtifactOptions {
  payloadDir: string;
  /**
   * The files to install (name in the install dir, source in the agent's filesystem), e.g. the
   * payload's binaries by role; without it, every file of `payloadDir`.
   */
  files?: readonly { name: string; source: string }[];
  /** Host path. Defaults to `AGENT_DEFAULTS.installDir`. */
  installDir?: string;
  /**
   * Save the ledger after each copy is marked done. Defaults to true. With false a done mark
   * rides along with the next copy's intent save, and the last one is left to the caller
   * (`saveLedgerIfChanged`); a crash before it leaves an intent whose file is in place, which
   * the next run settles as `unchanged`.
   */
  saveDone?: boolean;
}

/** Reads the payload and the host and plans, without changing anything (for `plan`). */
export async function planArtifactsOnHost(
  hostRoot: string,
  ledger: Ledger | null,
  opts: ArtifactOptions,
): Promise<ArtifactPlanItem[]> {
  const installDir = opts.installDir ?? AGENT_DEFAULTS.installDir;
  const recorded = ledger?.artifacts ?? [];
  const payload: PayloadFile[] = [];
  const current = new Map<string, InstalledState | null>();
  const listed = opts.files
    ? await Promise.all(
        opts.files.map(async (f) => ({ ...f, size: (await fsp.stat(f.source)).size })),
      )
    : await listPayload(opts.payloadDir);
  for (const f of listed) {
    const target = path.posix.join(installDir, f.name);
    const { sha256, installed } = await hashAgainstInstalled(hostRoot, f.source, target);
    payload.push({ ...f, sha256 });
    current.set(target, installed);
  }
  const others = recorded.map((e) => e.path).filter((p) => !current.has(p));
  for (const [target, state] of await inspectInstalled(hostRoot, others)) {
    current.set(target, state);
  }
  return planArtifacts(payload, installDir, current, recorded);
}

/**
 * Installs the payload per {@link planArtifacts}: each copy is recorded in the ledger (saved)
 * before it happens, verified by sha256 after, then marked done. Files dropped from the
 * payload are removed. Run under the host lock. Returns the new ledger and the plan it ran.
 *
 * `planned` is the result of {@link planArtifactsOnHost} for the same options, computed under
 * the same hold of the host lock (install plans first to report it): it saves hashing the
 * payload and the install dir a second time. Without it, the plan is made here.
 */
export async function installArtifacts(
  loc: LedgerLocation,
  ledger: Ledger,
  opts: ArtifactOptions,
  planned?: readonly ArtifactPlanItem[],
): Promise<{ ledger: Ledger; plan: ArtifactPlanItem[] }> {
  const installDir = opts.installDir ?? AGENT_DEFAULTS.installDir;
  const saveDone = opts.saveDone ?? true;
  // Under the host lock any temp file in our install dir is a killed run's leftover.
  await removeTempLeftovers(hostPath(loc.hostRoot, installDir));
  const plan = planned ? [...planned] : await planArtifactsOnHost(loc.hostRoot, ledger, opts);
  for (const item of plan) {
    const entry = findArtifact(ledger, item.target);
    if (item.action === "unchanged") {
      // Settle an intent a crash left between copy and done; files we did not install stay unrecorded.
      if (entry && (entry.state !== "done" || entry.sha256 !== item.sha256)) {
        ledger = markArtifactDone(
          addArtifactIntent(ledger, {
            path: item.target,
            sha256: item.sha256,
            previousSha256: null,
          }),
          item.target,
        );
        if (saveDone) await saveLedger(loc, ledger);
      }
      continue;
    }
    if (item.action === "remove") {
      await removeFile(hostPath(loc.hostRoot, item.target));
      ledger = dropArtifact(ledger, item.target);
      await saveLedger(loc, ledger);
      continue;
    }
    const source = item.source as string;
    ledger = addArtifactIntent(ledger, {
      path: item.target,
      sha256: item.sha256,
      previousSha256: item.currentSha256,
      createdDirs: await missingDirs(loc.hostRoot, item.target),
    });
    await saveLedger(loc, ledger);
    // The hash is of the installed file's bytes, read back before the rename put them in place.
    const copied = await copyFileAtomic(source, hostPath(loc.hostRoot, item.target), ARTIFACT_MODE);
    if (copied !== item.sha256) {
      throw new Error(
        `artifact ${item.target} has sha256 ${copied} after copying ${source}, expected ${item.sha256}; the payload changed during install or the disk is faulty.`,
      );
    }
    ledger = markArtifactDone(ledger, item.target);
    if (saveDone) await saveLedger(loc, ledger);
  }
  return { ledger, plan };
}

/** What uninstall does with one installed artifact, from its hash now (null: absent). Pure. */
export function decideArtifactRemoval(
  entry: ArtifactEntry,
  currentSha256: string | null,
): "remove" | "missing" | "keep" {
  if (currentSha256 === null) return "missing";
  return currentSha256 === entry.sha256 ? "remove" : "keep";
}

export interface ArtifactRemoval {
  removed: string[];
  missing: string[];
  kept: { path: string; reason: string }[];
  removedDirs: string[];
}

/**
 * Removes the artifacts the ledger recorded, only where the file still holds the bytes we
 * installed, then the dirs the agent created, if empty. Idempotent.
 */
export async function removeArtifacts(
  hostRoot: string,
  entries: readonly ArtifactEntry[],
): Promise<ArtifactRemoval> {
  const result: ArtifactRemoval = { removed: [], missing: [], kept: [], removedDirs: [] };
  for (const entry of entries) {
    const full = hostPath(hostRoot, entry.path);
    let currentSha: string | null = null;
    try {
      currentSha = await sha256File(full);
    } catch (err) {
      if (errno(err) !== "ENOENT") throw err;
    }
    const decision = decideArtifactRemoval(entry, currentSha);
    if (decision === "remove") {
      await removeFile(full);
      result.removed.push(entry.path);
    } else if (decision === "missing") {
      result.missing.push(entry.path);
    } else {
      result.kept.push({
        path: entry.path,
        reason: `changed since install (sha256 ${currentSha}, installed ${entry.sha256})`,
      });
    }
  }
  const dirs = [...new Set(entries.flatMap((e) => e.createdDirs))].sort(
    (a, b) => b.split("/").length - a.split("/").length || b.localeCompare(a),
  );
  result.removedDirs = await removeEmptyDirs(hostRoot, dirs);
  return result;
}
