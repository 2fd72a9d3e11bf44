/**
 * Reads the host files the config planner needs into a snapshot: the main config, templates,
 * the agent's drop-in candidates, k0s drop-ins, and every file the imports reach (globs
 * expanded by listing directories). The reading is injected, so this runs against a fixture in
 * tests and against `--host-root` in production ({@link hostFiles}).
 */
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { type ConfigVersion, configVersionSupported, parseToml, tomlSyntaxError } from "./config";
import { K0S_CRI_CONFIG, isK0sManaged } from "./effective";
import {
  dropInNameUnderGlob,
  globComponentRegExp,
  importsOf,
  resolveImportEntries,
} from "./imports";
import { type ContainerdLayout, ownDropIn } from "./layout";
import { decodeHostText } from "../../host/hostText";
import { hostFilePath } from "../../host/paths";

const posix = path.posix;

export interface HostFiles {
  /** A host file's text, or null when it does not exist. */
  readFile(p: string): Promise<string | null>;
  /** A host directory's entry names, or null when it does not exist. */
  listDir(p: string): Promise<string[] | null>;
}

const GLOB_META = /[*?[\\]/;

/**
 * Host files under `hostRoot` (the agent's `--host-root`), symlinks resolved inside it, bytes
 * that are not UTF-8 kept (see host/hostText).
 */
export function hostFiles(hostRoot: string): HostFiles {
  const missing = (err: unknown) =>
    ["ENOENT", "ENOTDIR"].includes((err as NodeJS.ErrnoException).code ?? "");
  return {
    async readFile(p) {
      try {
        return decodeHostText(await fsp.readFile(hostFilePath(hostRoot, p)));
      } catch (err) {
        if (missing(err)) return null;
        throw err;
      }
    },
    async listDir(p) {
      try {
        return await fsp.readdir(hostFilePath(hostRoot, p));
      } catch (err) {
        if (missing(err)) return null;
        throw err;
      }
    },
  };
}

async function expand(
  io: HostFiles,
  pattern: string,
): Promise<{ matches: string[]; dirs: string[] }> {
  const parts = pattern.split("/").filter((c) => c.length > 0);
  let dirs = ["/"];
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i];
    if (!GLOB_META.test(part)) {
      dirs = dirs.map((d) => posix.join(d, part));
      continue;
    }
    const re = globComponentRegExp(part);
    if (re === null) return { matches: [], dirs: [] };
    const next: string[] = [];
    for (const d of dirs)
      for (const e of (await io.listDir(d)) ?? []) if (re.test(e)) next.push(posix.join(d, e));
    dirs = next;
  }
  const last = parts[parts.length - 1] ?? "";
  const re = globComponentRegExp(last);
  const matches: string[] = [];
  if (re !== null) {
    for (const d of dirs)
      for (const e of (await io.listDir(d)) ?? []) if (re.test(e)) matches.push(posix.join(d, e));
  }
  return { matches, dirs };
}

/**
 * Collects the snapshot for `layout`. Unparsable files are collected as they are (the planner
 * reports them); their imports cannot be followed.
 */
export async function collectConfigFiles(
  layout: ContainerdLayout,
  io: HostFiles,
): Promise<Record<string, string | null>> {
  const files: Record<string, string | null> = {};
  const read = async (p: string) => {
    if (!(p in files)) files[p] = await io.readFile(p);
    return files[p];
  };
  for (const p of [layout.config, layout.template, layout.templateV3, ownDropIn(layout)]) {
    if (p !== undefined) await read(p);
  }
  const main = files[layout.config];
  if (layout.dropInDir !== undefined && layout.distribution === "k0s") {
    for (const e of (await io.listDir(layout.dropInDir)) ?? []) {
      if (e.endsWith(".toml")) await read(posix.join(layout.dropInDir, e));
    }
  }
  // The main config's own text decides how imports resolve; a template's rendering imports
  // what the last rendering did.
  const start =
    main ?? (layout.distribution === "microk8s" && layout.template ? files[layout.template] : null);
  const queue: { file: string; text: string | null }[] = [{ file: layout.config, text: start }];
  const seen = new Set<string>();
  let rootVersion: ConfigVersion = 2;
  while (queue.length > 0) {
    const { file, text } = queue.shift()!;
    if (seen.has(file) || text === null || tomlSyntaxError(text) !== null) continue;
    seen.add(file);
    const doc = parseToml(text, file);
    if (file === layout.config) {
      const v = typeof doc.version === "number" ? doc.version : null;
      if (configVersionSupported(v)) rootVersion = v;
    }
    let entries: string[];
    try {
      entries = importsOf(doc, file);
    } catch {
      continue;
    }
    for (const r of resolveImportEntries(file, entries, rootVersion)) {
      if (!r.glob) {
        if (layout.distribution === "k0s" && r.path === K0S_CRI_CONFIG && isK0sManaged(main))
          continue;
        queue.push({ file: r.path, text: await read(r.path) });
        continue;
      }
      const { matches, dirs } = await expand(io, r.path);
      for (const m of matches) queue.push({ file: m, text: await read(m) });
      // Where the agent might add its drop-in under this glob.
      const name = dropInNameUnderGlob(posix.basename(r.path));
      if (name !== null) for (const d of dirs) await read(posix.join(d, name));
    }
  }
  return files;
}
