/**
 * The names vNode's multi-call binary is called by, as symlinks to the installed binary: the
 * shim name for containerd, `vnode-cni` in the CNI bin dir, `vnode-manager` for the node. A
 * multi-call binary acts by argv[0], and a program started through a symlink gets the link's
 * path as argv[0] (execve keeps the path it was given), so a link is all a role needs.
 *
 * Same protocol as every host change: the intent is saved in the ledger before the link is
 * made (a temp link renamed over the name, so the name is never missing or half made), then
 * marked done. The agent only makes links where nothing was, or re-points its own; anything
 * else at a role's path is refused, so uninstall never has an original to restore.
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { errno, fsyncDir, tempPathFor } from "./fsAtomic";
import {
  type Ledger,
  type LedgerLocation,
  type LinkEntry,
  missingDirs,
  removeEmptyDirs,
  saveLedger,
} from "./ledger";
import { hostPath } from "./paths";
import { AgentError, ExitCode } from "../lib/errors";

/** A link the install wants: host paths. */
export interface WantedLink {
  path: string;
  target: string;
  /** Why the link exists (the role), for messages. */
  role: string;
}

/** What is at a link's path now. */
export type LinkState =
  { kind: "absent" } | { kind: "link"; target: string } | { kind: "other"; what: string };

export type LinkAction = "create" | "retarget" | "unchanged" | "remove";

export interface LinkPlanItem {
  path: string;
  target: string;
  action: LinkAction;
}

/**
 * What to do per link, from the wanted links, what is on the host and what the ledger says the
 * agent made. Pure. Throws an AgentError naming the path when something the agent did not make
 * is in the way.
 */
export function planLinks(
  wanted: readonly WantedLink[],
  current: ReadonlyMap<string, LinkState>,
  recorded: readonly LinkEntry[],
): LinkPlanItem[] {
  const ours = new Map(recorded.map((e) => [e.path, e]));
  const items: LinkPlanItem[] = [];
  for (const w of wanted) {
    const now = current.get(w.path) ?? { kind: "absent" };
    if (now.kind === "absent") {
      items.push({ path: w.path, target: w.target, action: "create" });
    } else if (now.kind === "link" && now.target === w.target) {
      items.push({ path: w.path, target: w.target, action: "unchanged" });
    } else if (now.kind === "link" && ours.get(w.path)?.target === now.target) {
      items.push({ path: w.path, target: w.target, action: "retarget" });
    } else {
      const what = now.kind === "link" ? `a symlink to ${now.target}` : now.what;
      throw new AgentError(
        `${w.path} (vNode's ${w.role} name) is already ${what}, which vnode-agent did not create; it does not replace files it did not make. Remove it (or point it at ${w.target}), then rerun.`,
        ExitCode.BadInput,
      );
    }
  }
  const wantedPaths = new Set(wanted.map((w) => w.path));
  for (const e of recorded) {
    if (wantedPaths.has(e.path)) continue;
    const now = current.get(e.path) ?? { kind: "absent" };
    if (now.kind === "link" && now.target === e.target) {
      items.push({ path: e.path, target: e.target, action: "remove" });
    }
  }
  return items;
}

/** What is at host path `p`, without following a link there. */
export async function inspectLink(hostRoot: string, p: string): Promise<LinkState> {
  const full = hostPath(hostRoot, p);
  try {
    const st = await fsp.lstat(full);
    if (st.isSymbolicLink()) return { kind: "link", target: await fsp.readlink(full) };
    return { kind: "other", what: st.isDirectory() ? "a directory" : "a file" };
  } catch (err) {
    if (errno(err) === "ENOENT") return { kind: "absent" };
    throw err;
  }
}

/** The state of every path the wanted links or the ledger name. */
export async function inspectLinks(
  hostRoot: string,
  wanted: readonly WantedLink[],
  recorded: readonly LinkEntry[],
): Promise<Map<string, LinkState>> {
  const states = new Map<string, LinkState>();
  for (const p of new Set([...wanted.map((w) => w.path), ...recorded.map((e) => e.path)])) {
    states.set(p, await inspectLink(hostRoot, p));
  }
  return states;
}

/** Makes (or re-points) the link at host path `p` atomically: a temp link renamed over it. */
async function linkAtomic(hostRoot: string, p: string, target: string): Promise<void> {
  const full = hostPath(hostRoot, p);
  await fsp.mkdir(path.dirname(full), { recursive: true });
  const tmp = tempPathFor(full);
  await fsp.symlink(target, tmp);
  try {
    await fsp.rename(tmp, full);
  } catch (err) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(path.dirname(full));
}

function upsert(ledger: Ledger, entry: LinkEntry): Ledger {
  const links = (ledger.links ?? []).filter((e) => e.path !== entry.path);
  return { ...ledger, links: [...links, entry] };
}

/**
 * Applies a link plan under the ledger's protocol; run under the host lock. Returns the new
 * ledger (saved after every step).
 */
export async function applyLinks(
  loc: LedgerLocation,
  ledger: Ledger,
  plan: readonly LinkPlanItem[],
  now: () => Date = () => new Date(),
): Promise<Ledger> {
  for (const item of plan) {
    const existing = (ledger.links ?? []).find((e) => e.path === item.path);
    if (item.action === "unchanged") {
      if (existing?.state === "intent" && existing.target === item.target) {
        ledger = upsert(ledger, { ...existing, state: "done", updatedAt: now().toISOString() });
        await saveLedger(loc, ledger);
      }
      continue;
    }
    if (item.action === "remove") {
      await fsp.unlink(hostPath(loc.hostRoot, item.path)).catch((err: unknown) => {
        if (errno(err) !== "ENOENT") throw err;
      });
      ledger = { ...ledger, links: (ledger.links ?? []).filter((e) => e.path !== item.path) };
      await saveLedger(loc, ledger);
      continue;
    }
    const entry: LinkEntry = {
      path: item.path,
      target: item.target,
      state: "intent",
      createdDirs: existing?.createdDirs ?? (await missingDirs(loc.hostRoot, item.path)),
      updatedAt: now().toISOString(),
    };
    ledger = upsert(ledger, entry);
    await saveLedger(loc, ledger);
    await linkAtomic(loc.hostRoot, item.path, item.target);
    ledger = upsert(ledger, { ...entry, state: "done", updatedAt: now().toISOString() });
    await saveLedger(loc, ledger);
  }
  return ledger;
}

export interface LinkRemoval {
  removed: string[];
  kept: { path: string; reason: string }[];
  removedDirs: string[];
}

/**
 * Removes the links the ledger records, only where the link still points where the agent made
 * it point (someone re-pointed or replaced it: theirs now), then the dirs it created, if empty.
 */
export async function removeLinks(
  hostRoot: string,
  entries: readonly LinkEntry[],
): Promise<LinkRemoval> {
  const result: LinkRemoval = { removed: [], kept: [], removedDirs: [] };
  for (const e of entries) {
    const now = await inspectLink(hostRoot, e.path);
    if (now.kind === "absent") continue;
    if (now.kind === "link" && now.target === e.target) {
      await fsp.unlink(hostPath(hostRoot, e.path));
      result.removed.push(e.path);
    } else {
      result.kept.push({
        path: e.path,
        reason: `changed since install (now ${now.kind === "link" ? `a symlink to ${now.target}` : now.what}, installed a symlink to ${e.target})`,
      });
    }
  }
  const dirs = [...new Set(entries.flatMap((e) => e.createdDirs))].sort(
    (a, b) => b.split("/").length - a.split("/").length || b.localeCompare(a),
  );
  result.removedDirs = await removeEmptyDirs(hostRoot, dirs);
  return result;
}
