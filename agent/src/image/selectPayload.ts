/**
 * The agent image's payload stage (agent/Dockerfile): finds vNode's runtime binaries BY NAME in
 * a copy of the upstream vNode image's filesystem and lays them out in the payload dir the agent
 * installs from (`AGENT_IMAGE.payloadDir`), or says exactly what is missing.
 *
 * vNode's main binary is a multi-call binary that acts by the name it is called with, so the
 * upstream image may carry one file and links to it under the role names. Links stay links: the
 * first role that names a file gets the file, every other role naming the same file (through a
 * symlink or a hard link) becomes a relative symlink to it. The payload dir then holds exactly
 * the role names, files or symlinks, which is the layout the agent installs by role.
 *
 * Symlinks are resolved inside the image's root (an absolute target means the image's path, not
 * the build stage's), the way they resolve when the image runs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PAYLOAD_ROLES, PAYLOAD_ROLE_NAMES } from "vnode-contract";

/** Role names in the order they claim a file (the shim first: it is the one containerd runs). */
export const PAYLOAD_NAMES: readonly string[] = PAYLOAD_ROLE_NAMES.map((r) => PAYLOAD_ROLES[r]);

/** Pseudo file systems, never searched. */
const SKIPPED_DIRS = new Set(["/proc", "/sys", "/dev"]);
const MAX_LINK_HOPS = 40;

export class PayloadError extends Error {}

/** One file or symlink named after a role, and the regular file it resolves to in the image. */
export interface Found {
  name: string;
  /** Its path in the image. */
  at: string;
  /** The regular file it resolves to, in the image. */
  file: string;
  /** `dev:ino` of that file, so hard links count as one file. */
  identity: string;
  mode: number;
}

/** One entry of the payload dir to write. */
export type PayloadEntry =
  | { name: string; kind: "file"; from: string; mode: number }
  | { name: string; kind: "symlink"; target: string };

/** Every file or symlink under `root` whose name is one of `names` (image paths, sorted). */
export function findByName(root: string, names: readonly string[]): Map<string, string[]> {
  const found = new Map<string, string[]>(names.map((n) => [n, []]));
  const walk = (rel: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
    } catch {
      return; // unreadable: nothing of ours can be there
    }
    for (const e of entries) {
      const p = path.posix.join(rel, e.name);
      // Directories are walked, never followed through a symlink (no loops, no escape).
      if (e.isDirectory()) {
        if (!SKIPPED_DIRS.has(p)) walk(p);
      } else if ((e.isFile() || e.isSymbolicLink()) && found.has(e.name)) {
        found.get(e.name)!.push(p);
      }
    }
  };
  walk("/");
  for (const list of found.values()) list.sort();
  return found;
}

/** The regular file an image path resolves to, following symlinks inside `root`. */
export function resolveInImage(root: string, imagePath: string): string {
  let current = path.posix.normalize(imagePath);
  for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
    // Resolve the directories first, one component at a time, so a linked directory works too.
    const parts = current.split("/").filter(Boolean);
    let resolved = "/";
    for (let i = 0; i < parts.length; i++) {
      const next = path.posix.join(resolved, parts[i]);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(path.join(root, next));
      } catch {
        throw new PayloadError(`${imagePath} resolves to ${next}, which does not exist`);
      }
      if (st.isSymbolicLink()) {
        const target = fs.readlinkSync(path.join(root, next));
        const rest = parts.slice(i + 1).join("/");
        const base = target.startsWith("/") ? target : path.posix.join(resolved, target);
        current = path.posix.normalize(rest ? `${base}/${rest}` : base);
        resolved = "";
        break;
      }
      resolved = next;
    }
    if (resolved !== "") {
      const st = fs.statSync(path.join(root, resolved));
      if (!st.isFile()) throw new PayloadError(`${imagePath} resolves to ${resolved}, not a file`);
      return resolved;
    }
  }
  throw new PayloadError(`${imagePath}: more than ${MAX_LINK_HOPS} symlinks (a loop?)`);
}

/**
 * Decides the payload dir's entries from what was found. Pure. Throws a PayloadError that names
 * every missing role, or the role whose name several different files carry, or a non-executable.
 */
export function planPayload(
  names: readonly string[],
  found: ReadonlyMap<string, readonly Found[]>,
  source: string,
): PayloadEntry[] {
  const missing = names.filter((n) => (found.get(n) ?? []).length === 0);
  if (missing.length > 0) {
    const seen = names
      .filter((n) => !missing.includes(n))
      .map((n) => `${n} at ${found.get(n)![0].at}`);
    throw new PayloadError(
      `${source} has no ${missing.join(", no ")} (searched its whole filesystem for a file or symlink of that name)` +
        `${seen.length > 0 ? `; found ${seen.join(", ")}` : ""}. ` +
        "Set VNODE_IMAGE to the vNode runtime image of your release.",
    );
  }
  const entries: PayloadEntry[] = [];
  const claimedBy = new Map<string, string>();
  for (const name of names) {
    const candidates = found.get(name)!;
    const distinct = [...new Set(candidates.map((c) => c.identity))];
    if (distinct.length > 1) {
      throw new PayloadError(
        `${source} has ${distinct.length} different files named ${name} (${candidates.map((c) => `${c.at} -> ${c.file}`).join(", ")}); cannot tell which is the runtime.`,
      );
    }
    const f = candidates[0];
    if ((f.mode & 0o111) === 0) {
      throw new PayloadError(`${source}: ${name} at ${f.at} (${f.file}) is not executable.`);
    }
    const owner = claimedBy.get(f.identity);
    if (owner !== undefined) {
      entries.push({ name, kind: "symlink", target: owner });
    } else {
      claimedBy.set(f.identity, name);
      entries.push({ name, kind: "file", from: f.file, mode: f.mode & 0o7777 });
    }
  }
  return entries;
}

/** Finds the roles in the image copy at `root` and writes the payload dir `out` (created). */
export function selectPayload(root: string, out: string, source: string): PayloadEntry[] {
  const byName = findByName(root, PAYLOAD_NAMES);
  const found = new Map<string, Found[]>();
  for (const [name, paths] of byName) {
    found.set(
      name,
      paths.map((at) => {
        const file = resolveInImage(root, at);
        const st = fs.statSync(path.join(root, file));
        return { name, at, file, identity: `${st.dev}:${st.ino}`, mode: st.mode };
      }),
    );
  }
  const entries = planPayload(PAYLOAD_NAMES, found, source);
  fs.mkdirSync(out, { recursive: true });
  for (const e of entries) {
    const target = path.join(out, e.name);
    if (e.kind === "file") {
      fs.copyFileSync(path.join(root, e.from), target);
      fs.chmodSync(target, e.mode);
    } else {
      fs.symlinkSync(e.target, target);
    }
  }
  return entries;
}

/** `select-payload <image-root> <payload-dir> <source-name>`: exit 1 with one sentence on failure. */
export function main(argv: string[]): number {
  const [root, out, source] = argv;
  if (!root || !out || !source) {
    process.stderr.write("usage: select-payload <image-root> <payload-dir> <source-name>\n");
    return 2;
  }
  try {
    for (const e of selectPayload(root, out, source)) {
      process.stdout.write(
        e.kind === "file"
          ? `${e.name}: ${e.from} (mode ${e.mode.toString(8)})\n`
          : `${e.name} -> ${e.target}\n`,
      );
    }
    return 0;
  } catch (err) {
    if (!(err instanceof PayloadError)) throw err;
    process.stderr.write(`vNode payload: ${err.message}\n`);
    return 1;
  }
}
