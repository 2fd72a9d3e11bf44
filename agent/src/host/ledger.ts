/**
 * The ledger: what the agent created or changed on the host, with the original bytes, so
 * reruns are idempotent, a crashed install resumes and uninstall restores byte for byte.
 *
 * Protocol for every host file (see {@link applyFileChange}):
 *   1. record the intent (original bytes, hash of what will be written) and save the ledger;
 *   2. write the file atomically;
 *   3. mark the entry done and save the ledger.
 * A crash between any two steps leaves the file either original or written, and the ledger
 * knows both hashes, so a rerun can tell which ({@link fileProgress}). An entry keeps the
 * FIRST original it saw: a rerun after a crash must not mistake our own write for the original.
 *
 * Paths in the ledger are host paths (`/etc/containerd/config.toml`), independent of
 * `--host-root`. The ledger holds config bytes, which may carry registry credentials, so it
 * and the backups are written 0600.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { en } from "zod/locales";
import * as z from "zod/mini";
import { AGENT_DEFAULTS } from "vnode-contract";
import {
  errno,
  readIfExists,
  removeFile,
  removeTempLeftovers,
  sha256,
  writeFileAtomic,
} from "./fsAtomic";
import { hostFilePath, hostPath, realHostPath } from "./paths";
import { messageOf } from "../lib/errors";

export const LEDGER_SCHEMA_VERSION = 1;
export const LEDGER_FILE = "ledger.json";
export const BACKUP_DIR = "backup";
const PRIVATE_MODE = 0o600;

/** Where the ledger lives: `<hostRoot><stateDir>/ledger.json`. */
export interface LedgerLocation {
  hostRoot: string;
  /** Host path of the agent's state dir. Defaults to `AGENT_DEFAULTS.stateDir`. */
  stateDir?: string;
}

// zod/mini: the same validation as classic zod, but tree-shaken to the parts used here, so the
// CLI loads a small fraction of zod's code. Mini loads no locale; English messages are set below.
z.config(en());

const Sha256 = z.string().check(z.regex(/^[0-9a-f]{64}$/, "must be a hex sha256"));
const HostFilePath = z.string().check(z.startsWith("/", "must be an absolute host path"));
const Timestamp = z.iso.datetime();

const FileEntrySchema = z
  .object({
    path: HostFilePath,
    kind: z.enum(["created", "modified"]),
    /** `intent`: recorded before the write; `done`: the write happened. */
    state: z.enum(["intent", "done"]),
    /** null when the agent created the file. */
    originalSha256: z.nullable(Sha256),
    originalBase64: z.optional(z.string()),
    originalMode: z.optional(z.int().check(z.minimum(0), z.maximum(0o7777))),
    /** Host path of the backup copy of the original under the state dir. */
    backup: z.optional(HostFilePath),
    writtenSha256: Sha256,
    /** False once someone else changed the file after our write: the original would clobber it. */
    restorable: z.boolean(),
    /** Parent dirs that did not exist before the first write, deepest first. */
    createdDirs: z.array(HostFilePath),
    updatedAt: Timestamp,
  })
  .check(
    z.superRefine((e, ctx) => {
      if (e.kind === "created" && (e.originalSha256 !== null || e.originalBase64 !== undefined)) {
        ctx.addIssue({
          code: "custom",
          message: "a created file has no original",
          path: ["originalSha256"],
        });
      }
      if (e.kind === "modified") {
        if (e.originalBase64 === undefined || e.originalSha256 === null) {
          ctx.addIssue({
            code: "custom",
            message: "a modified file needs its original",
            path: ["originalBase64"],
          });
        } else if (sha256(Buffer.from(e.originalBase64, "base64")) !== e.originalSha256) {
          ctx.addIssue({
            code: "custom",
            message: "original bytes do not match originalSha256",
            path: ["originalBase64"],
          });
        }
      }
    }),
  );

const ArtifactEntrySchema = z.object({
  path: HostFilePath,
  sha256: Sha256,
  state: z.enum(["intent", "done"]),
  /** Hash of a file the artifact replaced (not backed up: the install dir is the agent's own). */
  previousSha256: z.nullable(Sha256),
  createdDirs: z.array(HostFilePath),
  updatedAt: Timestamp,
});

/**
 * A symlink the agent created: a name the vNode multi-call binary is called by (a role), pointing
 * at the installed binary. Only ever created where nothing was, so uninstall just removes it
 * (when it still points where we made it point).
 */
const LinkEntrySchema = z.object({
  path: HostFilePath,
  /** The link's target, a host path. */
  target: HostFilePath,
  state: z.enum(["intent", "done"]),
  createdDirs: z.array(HostFilePath),
  updatedAt: Timestamp,
});

const MetaSchema = z.object({
  agentVersion: z.string().check(z.minLength(1)),
  handler: z.object({
    name: z.string().check(z.minLength(1)),
    runtimeType: z.string().check(z.minLength(1)),
    runtimePath: z.optional(z.string()),
    podAnnotations: z.optional(z.array(z.string())),
    cniConfDir: z.optional(z.string()),
    cniMaxConfNum: z.optional(z.int()),
  }),
  isolationMode: z.enum(["per-namespace", "per-pod"]),
  containerd: z.object({
    configPath: HostFilePath,
    configVersion: z.int(),
    /** As the CRI reports it, e.g. `1.7.27`; null when containerd was not reachable. */
    version: z.nullable(z.string()),
    distribution: z.optional(z.string()),
  }),
});

const LedgerSchema = z.extend(MetaSchema, {
  schemaVersion: z.literal(LEDGER_SCHEMA_VERSION),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  files: z.array(FileEntrySchema),
  artifacts: z.array(ArtifactEntrySchema),
  /** Absent in ledgers written before links existed. */
  links: z.optional(z.array(LinkEntrySchema)),
});

export type LedgerMeta = z.infer<typeof MetaSchema>;
export type Ledger = z.infer<typeof LedgerSchema>;
export type FileEntry = z.infer<typeof FileEntrySchema>;
export type ArtifactEntry = z.infer<typeof ArtifactEntrySchema>;
export type LinkEntry = z.infer<typeof LinkEntrySchema>;

// ---------------------------------------------------------------------------------------------
// Pure core

export function newLedger(meta: LedgerMeta, now: Date = new Date()): Ledger {
  const at = now.toISOString();
  return {
    schemaVersion: LEDGER_SCHEMA_VERSION,
    ...meta,
    createdAt: at,
    updatedAt: at,
    files: [],
    artifacts: [],
  };
}

/** The ledger with new metadata (a rerun with another agent version or handler spec). */
export function withMeta(ledger: Ledger, meta: LedgerMeta, now: Date = new Date()): Ledger {
  return { ...ledger, ...meta, updatedAt: now.toISOString() };
}

/** A change the agent is about to make to one host file. */
export interface FileChange {
  /** Host path. */
  path: string;
  /** The file's bytes now, null if it does not exist. */
  current: Buffer | null;
  /** Its mode now (permission bits), when it exists. */
  currentMode?: number;
  /** What will be written. */
  next: Uint8Array | string;
  /** Parent dirs the write will create, deepest first. */
  createdDirs?: string[];
  /** Host path where the original's backup copy goes. */
  backup?: string;
}

/** The ledger with the intent to write `change` recorded (pure). */
export function addFileIntent(ledger: Ledger, change: FileChange, now: Date = new Date()): Ledger {
  const at = now.toISOString();
  const existing = findFile(ledger, change.path);
  const currentSha = change.current === null ? null : sha256(change.current);
  let entry: FileEntry;
  if (!existing) {
    entry =
      change.current === null
        ? {
            path: change.path,
            kind: "created",
            state: "intent",
            originalSha256: null,
            writtenSha256: sha256(change.next),
            restorable: true,
            createdDirs: change.createdDirs ?? [],
            updatedAt: at,
          }
        : {
            path: change.path,
            kind: "modified",
            state: "intent",
            originalSha256: currentSha,
            originalBase64: change.current.toString("base64"),
            ...(change.currentMode === undefined
              ? {}
              : { originalMode: change.currentMode & 0o7777 }),
            ...(change.backup === undefined ? {} : { backup: change.backup }),
            writtenSha256: sha256(change.next),
            restorable: true,
            createdDirs: change.createdDirs ?? [],
            updatedAt: at,
          };
  } else {
    // Keep the first original. The file is still "ours" if it holds our last write or the
    // original (the write never happened); anything else is someone else's edit.
    const ours = currentSha === existing.writtenSha256 || currentSha === existing.originalSha256;
    entry = {
      ...existing,
      state: "intent",
      writtenSha256: sha256(change.next),
      restorable: existing.restorable && ours,
      updatedAt: at,
    };
  }
  return { ...replaceEntry(ledger, "files", entry), updatedAt: at };
}

/** The ledger with the write to `file` recorded as done (pure). */
export function markFileDone(ledger: Ledger, file: string, now: Date = new Date()): Ledger {
  const entry = findFile(ledger, file);
  if (!entry)
    throw new Error(`ledger has no entry for ${file}; record the intent before the write.`);
  const at = now.toISOString();
  return {
    ...replaceEntry(ledger, "files", { ...entry, state: "done", updatedAt: at }),
    updatedAt: at,
  };
}

/** The ledger with the intent to install an artifact recorded (pure). */
export function addArtifactIntent(
  ledger: Ledger,
  artifact: { path: string; sha256: string; previousSha256: string | null; createdDirs?: string[] },
  now: Date = new Date(),
): Ledger {
  const at = now.toISOString();
  const existing = findArtifact(ledger, artifact.path);
  const entry: ArtifactEntry = {
    path: artifact.path,
    sha256: artifact.sha256,
    state: "intent",
    // A file we replaced ourselves is not "previous": keep what was there before us.
    previousSha256: existing ? existing.previousSha256 : artifact.previousSha256,
    createdDirs: existing ? existing.createdDirs : (artifact.createdDirs ?? []),
    updatedAt: at,
  };
  return { ...replaceEntry(ledger, "artifacts", entry), updatedAt: at };
}

export function markArtifactDone(ledger: Ledger, file: string, now: Date = new Date()): Ledger {
  const entry = findArtifact(ledger, file);
  if (!entry)
    throw new Error(`ledger has no artifact entry for ${file}; record the intent before the copy.`);
  const at = now.toISOString();
  return {
    ...replaceEntry(ledger, "artifacts", { ...entry, state: "done", updatedAt: at }),
    updatedAt: at,
  };
}

export function dropFile(ledger: Ledger, file: string): Ledger {
  return { ...ledger, files: ledger.files.filter((e) => e.path !== file) };
}

export function dropArtifact(ledger: Ledger, file: string): Ledger {
  return { ...ledger, artifacts: ledger.artifacts.filter((e) => e.path !== file) };
}

export function findFile(ledger: Ledger, file: string): FileEntry | undefined {
  return ledger.files.find((e) => e.path === file);
}

export function findArtifact(ledger: Ledger, file: string): ArtifactEntry | undefined {
  return ledger.artifacts.find((e) => e.path === file);
}

/**
 * Where a recorded write stands, from the file's bytes now: `written` (our bytes are there),
 * `pending` (still the original: the write did not happen) or `diverged` (someone else's).
 */
export function fileProgress(
  entry: FileEntry,
  current: Buffer | null,
): "written" | "pending" | "diverged" {
  const currentSha = current === null ? null : sha256(current);
  if (currentSha === entry.writtenSha256) return "written";
  if (currentSha === entry.originalSha256) return "pending";
  return "diverged";
}

/** What undoing one ledger entry means for the file as it is now. */
export type RestoreDecision =
  | { action: "restore"; bytes: Buffer; mode: number | undefined; reason: string }
  | { action: "delete"; reason: string }
  | { action: "remove-ours"; reason: string }
  | { action: "none"; reason: string };

/**
 * Decides how to undo `entry` given the file's bytes now: put the original back when the
 * file still holds exactly what we wrote; delete a file we created; when someone changed it
 * since, only our part may go (the caller knows what that is); nothing when already undone.
 */
export function restoreOriginal(entry: FileEntry, current: Buffer | null): RestoreDecision {
  const currentSha = current === null ? null : sha256(current);
  const ourBytes = currentSha === entry.writtenSha256 && entry.restorable;
  if (entry.kind === "created") {
    if (currentSha === null) return { action: "none", reason: "already absent" };
    if (ourBytes) return { action: "delete", reason: "created by the agent and unchanged since" };
    return { action: "remove-ours", reason: "created by the agent but changed since" };
  }
  if (currentSha === entry.originalSha256) return { action: "none", reason: "already original" };
  if (currentSha === null) return { action: "none", reason: "removed since; not recreated" };
  if (ourBytes) {
    return {
      action: "restore",
      bytes: Buffer.from(entry.originalBase64 ?? "", "base64"),
      mode: entry.originalMode,
      reason: "unchanged since the agent wrote it",
    };
  }
  return { action: "remove-ours", reason: "changed since the agent wrote it" };
}

function replaceEntry<K extends "files" | "artifacts">(
  ledger: Ledger,
  key: K,
  entry: Ledger[K][number],
): Ledger {
  const list = ledger[key] as Ledger[K][number][];
  const i = list.findIndex((e) => e.path === entry.path);
  const next = i < 0 ? [...list, entry] : list.map((e, j) => (j === i ? entry : e));
  return { ...ledger, [key]: next };
}

// ---------------------------------------------------------------------------------------------
// I/O edges

function stateDirOf(loc: LedgerLocation): string {
  return loc.stateDir ?? AGENT_DEFAULTS.stateDir;
}

/** Path (in the agent's filesystem) of the ledger file. */
export function ledgerPath(loc: LedgerLocation): string {
  return hostPath(loc.hostRoot, path.posix.join(stateDirOf(loc), LEDGER_FILE));
}

/** Host path of the backup copy of `file` under the state dir. */
export function backupHostPath(loc: LedgerLocation, file: string): string {
  return path.posix.join(stateDirOf(loc), BACKUP_DIR, path.posix.resolve("/", file));
}

/** Parses and validates ledger JSON; `source` names the file in errors. */
export function parseLedger(text: string, source: string): Ledger {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(
      `ledger ${source} is corrupt (not valid JSON: ${messageOf(err)}); originals are backed up next to it under ${BACKUP_DIR}/.`,
    );
  }
  const version = (raw as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (typeof version === "number" && version > LEDGER_SCHEMA_VERSION) {
    throw new Error(
      `ledger ${source} has schemaVersion ${version}, written by a newer agent; this agent reads version ${LEDGER_SCHEMA_VERSION}.`,
    );
  }
  const parsed = LedgerSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`ledger ${source} is invalid: ${describeIssues(parsed.error.issues)}.`);
  }
  return parsed.data;
}

/** `files[0].originalBase64: original bytes do not match originalSha256; ...` */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      const at = i.path
        .map((p, n) => (typeof p === "number" ? `[${p}]` : n === 0 ? String(p) : `.${String(p)}`))
        .join("");
      return `${at || "(top level)"}: ${i.message}`;
    })
    .join("; ");
}

/** The ledger, or null when none exists (nothing installed). */
export async function loadLedger(loc: LedgerLocation): Promise<Ledger | null> {
  const file = ledgerPath(loc);
  const bytes = await readIfExists(file);
  return bytes === null ? null : parseLedger(bytes.toString("utf8"), file);
}

/** Writes the ledger atomically, 0600. */
export async function saveLedger(loc: LedgerLocation, ledger: Ledger): Promise<void> {
  const file = ledgerPath(loc);
  const valid = LedgerSchema.safeParse(ledger);
  if (!valid.success)
    throw new Error(
      `ledger ${file} not saved, it is invalid: ${describeIssues(valid.error.issues)}.`,
    );
  await writeFileAtomic(file, JSON.stringify(valid.data, null, 2) + "\n", PRIVATE_MODE);
}

/**
 * Saves the ledger unless the file already holds exactly this ledger; returns whether it wrote.
 * Callers that let done marks (and new metadata) ride along with the next intent save finish
 * with this: a run that changed nothing writes nothing.
 */
export async function saveLedgerIfChanged(loc: LedgerLocation, ledger: Ledger): Promise<boolean> {
  const onDisk = await readIfExists(ledgerPath(loc));
  if (onDisk !== null && onDisk.toString("utf8") === JSON.stringify(ledger, null, 2) + "\n") {
    return false;
  }
  await saveLedger(loc, ledger);
  return true;
}

/**
 * Records the intent to write `next` to host file `file` and saves the ledger, backing the
 * original up first. Returns the new ledger; the caller writes the file next.
 */
export async function recordIntent(
  loc: LedgerLocation,
  ledger: Ledger,
  file: string,
  next: Uint8Array | string,
): Promise<Ledger> {
  const full = hostFilePath(loc.hostRoot, file);
  const current = await readIfExists(full);
  const existing = findFile(ledger, file);
  let change: FileChange = { path: file, current, next };
  if (!existing) {
    change = {
      ...change,
      createdDirs: await missingDirs(loc.hostRoot, realHostPath(loc.hostRoot, file)),
    };
    if (current !== null) {
      const backup = backupHostPath(loc, file);
      await writeFileAtomic(hostPath(loc.hostRoot, backup), current, PRIVATE_MODE);
      change = { ...change, currentMode: (await fsp.stat(full)).mode, backup };
    }
  }
  const updated = addFileIntent(ledger, change);
  await saveLedger(loc, updated);
  return updated;
}

/** Marks the write to `file` done and saves the ledger. */
export async function recordDone(
  loc: LedgerLocation,
  ledger: Ledger,
  file: string,
): Promise<Ledger> {
  const updated = markFileDone(ledger, file);
  await saveLedger(loc, updated);
  return updated;
}

/** Options of {@link applyFileChange}. */
export interface ApplyOptions {
  /** Mode of the written file (default: keep the existing file's). */
  mode?: number;
  /**
   * Save the ledger after marking the write done. Defaults to true. With false the done mark
   * is only in the returned ledger, to be saved with the next intent or by
   * {@link saveLedgerIfChanged} at the end: one ledger write (two fsyncs) less per file. Safe
   * because a crash before that save leaves the entry at `intent` with the file written, which
   * the next run recognises (the file holds `writtenSha256`) and settles.
   */
  saveDone?: boolean;
}

/**
 * The whole protocol for one host file: intent, atomic write, done. A file that already
 * holds `next` is not written again (a ledger entry left at `intent` by a crash is settled).
 * `options` may also be just the mode, as before.
 */
export async function applyFileChange(
  loc: LedgerLocation,
  ledger: Ledger,
  file: string,
  next: Uint8Array | string,
  options: number | ApplyOptions = {},
): Promise<{ ledger: Ledger; changed: boolean }> {
  const { mode, saveDone = true } = typeof options === "number" ? { mode: options } : options;
  const done = (l: Ledger) =>
    saveDone ? recordDone(loc, l, file) : Promise.resolve(markFileDone(l, file));
  // A symlinked file (config management) is edited where it points, inside the host root;
  // the link stays.
  const full = hostFilePath(loc.hostRoot, file);
  const current = await readIfExists(full);
  if (current !== null && sha256(current) === sha256(next)) {
    const entry = findFile(ledger, file);
    if (entry && entry.state === "intent" && entry.writtenSha256 === sha256(next)) {
      ledger = await done(ledger);
    }
    return { ledger, changed: false };
  }
  ledger = await recordIntent(loc, ledger, file, next);
  await writeFileAtomic(full, next, mode);
  ledger = await done(ledger);
  return { ledger, changed: true };
}

/**
 * Undoes one file entry per {@link restoreOriginal}. For `remove-ours`, `removeOurs` gets the
 * current bytes and returns them without the agent's part (null: delete the file); without
 * it the file is left alone. Dirs the agent created are removed when empty. Idempotent.
 */
export async function revertFile(
  loc: LedgerLocation,
  entry: FileEntry,
  removeOurs?: (current: Buffer) => Buffer | null,
): Promise<RestoreDecision> {
  const full = hostFilePath(loc.hostRoot, entry.path);
  const current = await readIfExists(full);
  const decision = restoreOriginal(entry, current);
  if (decision.action === "restore") {
    await writeFileAtomic(full, decision.bytes, decision.mode);
  } else if (decision.action === "delete") {
    await removeFile(full);
  } else if (decision.action === "remove-ours" && removeOurs && current !== null) {
    const rest = removeOurs(current);
    if (rest === null) await removeFile(full);
    else if (!rest.equals(current)) await writeFileAtomic(full, rest);
  }
  if ((await readIfExists(full)) === null) await removeEmptyDirs(loc.hostRoot, entry.createdDirs);
  return decision;
}

/**
 * Removes the state dir when nothing is left in it (the host lock is released, the ledger and
 * backups gone): uninstall leaves no trace. Another agent may be creating its lock meanwhile;
 * then the dir is not empty, or its lock attempt makes the dir again (host/lock).
 */
export async function removeStateDirIfEmpty(loc: LedgerLocation): Promise<void> {
  try {
    await fsp.rmdir(path.dirname(ledgerPath(loc)));
  } catch (err) {
    const code = errno(err);
    // EBUSY/EROFS: the state dir is a mount point (the DaemonSet's hostPath volume, under the
    // agent's read-only root filesystem), which rmdir refuses whether it is empty or not; the
    // node's dir then stays, as kubelet made it.
    if (!["ENOENT", "ENOTEMPTY", "EEXIST", "EBUSY", "EROFS"].includes(code ?? "")) throw err;
  }
}

/** Deletes the ledger and the backups: the last step of uninstall. Idempotent. */
export async function removeLedger(loc: LedgerLocation): Promise<void> {
  await removeFile(ledgerPath(loc));
  await fsp.rm(hostPath(loc.hostRoot, path.posix.join(stateDirOf(loc), BACKUP_DIR)), {
    recursive: true,
    force: true,
  });
  await removeTempLeftovers(path.dirname(ledgerPath(loc)));
}

/**
 * Removes temp files a killed run left next to the ledger and next to every file the ledger
 * names (the intent is saved before the write, so every temp is next to a recorded path).
 * Call it under the host lock. Returns the removed paths.
 */
export async function removeLeftovers(
  loc: LedgerLocation,
  ledger: Ledger | null,
): Promise<string[]> {
  const removed = await removeTempLeftovers(path.dirname(ledgerPath(loc)), LEDGER_FILE);
  for (const e of [...(ledger?.files ?? []), ...(ledger?.artifacts ?? [])]) {
    const full = hostFilePath(loc.hostRoot, e.path);
    removed.push(...(await removeTempLeftovers(path.dirname(full), path.basename(full))));
  }
  // A run killed while backing up a file leaves a temp copy of the original (0600, it may hold
  // credentials) before its intent names the backup: sweep the whole backup tree.
  removed.push(
    ...(await removeTempsUnder(
      hostPath(loc.hostRoot, path.posix.join(stateDirOf(loc), BACKUP_DIR)),
    )),
  );
  return removed;
}

/** Temp files this agent's atomic writes left anywhere under `dir`. */
async function removeTempsUnder(dir: string): Promise<string[]> {
  const removed = await removeTempLeftovers(dir);
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errno(err) === "ENOENT" || errno(err) === "ENOTDIR") return removed;
    throw err;
  }
  for (const e of entries) {
    if (e.isDirectory()) removed.push(...(await removeTempsUnder(path.join(dir, e.name))));
  }
  return removed;
}

/** Host paths of the ancestors of `file` that do not exist yet, deepest first. */
export async function missingDirs(hostRoot: string, file: string): Promise<string[]> {
  const missing: string[] = [];
  for (
    let dir = path.posix.dirname(path.posix.resolve("/", file));
    dir !== "/";
    dir = path.posix.dirname(dir)
  ) {
    try {
      await fsp.stat(hostPath(hostRoot, dir));
      break;
    } catch (err) {
      if (errno(err) !== "ENOENT") throw err;
      missing.push(dir);
    }
  }
  return missing;
}

/**
 * rmdir each of `dirs` (host paths, deepest first) that is empty, keeping the others.
 * Returns the removed dirs.
 */
export async function removeEmptyDirs(
  hostRoot: string,
  dirs: readonly string[],
): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of dirs) {
    try {
      // A dir the agent meant to create but never did (the write failed): nothing to remove.
      // (rmdir on a read-only filesystem fails with EROFS even when the dir does not exist.)
      await fsp.lstat(hostPath(hostRoot, dir));
      await fsp.rmdir(hostPath(hostRoot, dir));
      removed.push(dir);
    } catch (err) {
      const code = errno(err);
      if (code === "ENOENT" || code === "ENOTEMPTY" || code === "EEXIST") continue;
      throw err;
    }
  }
  return removed;
}
