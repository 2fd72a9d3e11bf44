/**
 * containerd's `imports`: how each containerd version resolves an entry (relative paths, Go
 * globs) against a snapshot of host files, and textual edits of the `imports` array that keep
 * every other byte (comments, layout) of the file. Pure.
 */
import * as path from "node:path";
import { ConfigError, type ConfigVersion, parseToml, tomlString } from "./config";
import { IMPORTS_BLOCK, renderBlock } from "./managed-block";

const posix = path.posix;

/** Host files by host path; null = known to be absent. Paths not listed were not read. */
export type FileSnapshot = Readonly<Record<string, string | null>>;

const GLOB_META = /[*?[\\]/;
/** A UTF-8 byte order mark, as the agent reads it (U+FEFF). */
const BOM = "\uFEFF";

/**
 * A Go `path.Match` pattern (one path component) as a RegExp: `*` any run of non-slash chars,
 * `?` one, `[...]`/`[^...]` classes with ranges, backslash escapes. Null for a bad pattern.
 */
export function globComponentRegExp(pattern: string): RegExp | null {
  let re = "";
  let i = 0;
  const esc = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === "*") {
      re += "[^/]*";
      i++;
    } else if (c === "?") {
      re += "[^/]";
      i++;
    } else if (c === "\\") {
      if (i + 1 >= pattern.length) return null;
      re += esc(pattern[i + 1]);
      i += 2;
    } else if (c === "[") {
      i++;
      let cls = "";
      if (pattern[i] === "^") {
        cls += "^";
        i++;
      }
      let n = 0;
      while (i < pattern.length && (pattern[i] !== "]" || n === 0)) {
        let lo = pattern[i];
        if (lo === "\\") lo = pattern[++i];
        if (lo === undefined || lo === "-") return null;
        i++;
        if (pattern[i] === "-" && pattern[i + 1] !== "]" && i + 1 < pattern.length) {
          let hi = pattern[i + 1];
          i += 2;
          if (hi === "\\") hi = pattern[i++];
          if (hi === undefined) return null;
          cls += `${esc(lo)}-${esc(hi)}`;
        } else {
          cls += esc(lo);
        }
        n++;
      }
      if (pattern[i] !== "]" || n === 0) return null;
      i++;
      re += `[${cls}]`;
    } else {
      re += esc(c);
      i++;
    }
  }
  return new RegExp(`^${re}$`);
}

function splitAbs(p: string): string[] {
  return p.split("/").filter((c) => c.length > 0);
}

/**
 * Expands an absolute glob against the files in the snapshot, like Go's `filepath.Glob` on the
 * host: existing files only, in Go's order (lexical per directory level).
 */
export function expandGlob(pattern: string, files: FileSnapshot, parent: string): string[] {
  const parts = splitAbs(pattern);
  const res = parts.map((p) => (GLOB_META.test(p) ? globComponentRegExp(p) : p));
  if (res.some((r) => r === null)) {
    throw new ConfigError(
      parent,
      `${parent} imports "${pattern}", which is not a valid glob pattern; containerd would fail to start.`,
    );
  }
  const matches = Object.keys(files).filter((f) => {
    if (files[f] === null) return false;
    const comps = splitAbs(f);
    return (
      comps.length === res.length &&
      res.every((r, i) => (typeof r === "string" ? r === comps[i] : r!.test(comps[i])))
    );
  });
  return matches.sort((a, b) => {
    const x = splitAbs(a);
    const y = splitAbs(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
  });
}

/**
 * The name the agent's drop-in gets in a directory imported by the file-name glob `pattern`:
 * the one `*` replaced by `vnode-agent` (`*.toml` gives `vnode-agent.toml`), else
 * `vnode-agent.toml` if the pattern matches it; null when neither matches.
 */
export function dropInNameUnderGlob(pattern: string): string | null {
  const re = globComponentRegExp(pattern);
  if (re === null) return null;
  if (pattern.split("*").length === 2 && !/[?[\\]/.test(pattern)) {
    const name = pattern.replace("*", "vnode-agent");
    if (re.test(name)) return name;
  }
  return re.test("vnode-agent.toml") ? "vnode-agent.toml" : null;
}

/** One `imports` entry after containerd's resolution: a file path or an absolute glob. */
export interface ResolvedImport {
  entry: string;
  path: string;
  glob: boolean;
}

/**
 * Resolves `imports` entries of `parent` the way the containerd that reads `version` does.
 * containerd 2.x cleans every entry and makes it absolute against the parent's directory, then
 * globs entries with `*`. containerd 1.x globs entries with `*` as written (a relative glob is
 * relative to its working directory, `/` under systemd) and resolves only other relative paths
 * against the parent's directory.
 */
export function resolveImportEntries(
  parent: string,
  entries: readonly string[],
  version: ConfigVersion,
): ResolvedImport[] {
  return entries.map((entry) => {
    const glob = entry.includes("*");
    let p: string;
    if (version === 2 && glob) p = posix.resolve("/", entry);
    else {
      p = posix.normalize(entry);
      if (!posix.isAbsolute(p)) p = posix.join(posix.dirname(parent), p);
    }
    return { entry, path: p, glob };
  });
}

/** The `imports` array of a parsed file, checked: containerd needs a list of strings. */
export function importsOf(doc: Record<string, unknown>, file: string): string[] {
  const v = doc.imports;
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((e) => typeof e !== "string")) {
    throw new ConfigError(
      file,
      `${file} has an imports value that is not a list of file paths; containerd needs imports = ["/path/a.toml", ...].`,
    );
  }
  return v as string[];
}

/** Files an import list loads, in order, from the snapshot; null entries are missing files. */
export function importedFiles(
  resolved: readonly ResolvedImport[],
  files: FileSnapshot,
  parent: string,
): string[] {
  const out: string[] = [];
  for (const r of resolved) {
    if (r.glob) out.push(...expandGlob(r.path, files, parent));
    else out.push(r.path);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Textual edits of root-level keys.

/** A key/value line of the root table (before the first table header). */
export interface RootKey {
  key: string;
  lineStart: number;
  valueStart: number;
  valueEnd: number;
  /** Past the newline that ends the value's last line (or the text's end). */
  lineEnd: number;
}

function skipBasicString(text: string, i: number): number {
  if (text.startsWith('"""', i)) {
    let j = i + 3;
    while (j < text.length) {
      if (text[j] === "\\") j += 2;
      else if (text.startsWith('"""', j)) {
        j += 3;
        while (text[j] === '"') j++;
        return j;
      } else j++;
    }
    return j;
  }
  let j = i + 1;
  while (j < text.length && text[j] !== '"' && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
  return j + 1;
}

function skipLiteralString(text: string, i: number): number {
  if (text.startsWith("'''", i)) {
    const k = text.indexOf("'''", i + 3);
    if (k === -1) return text.length;
    let j = k + 3;
    while (text[j] === "'") j++;
    return j;
  }
  const k = text.indexOf("'", i + 1);
  return k === -1 ? text.length : k + 1;
}

/** Skips spaces, tabs, newlines and comments. */
function skipBlank(text: string, i: number, newlines = true): number {
  while (i < text.length) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\r" || (newlines && c === "\n")) i++;
    else if (c === "#") {
      const nl = text.indexOf("\n", i);
      i = nl === -1 ? text.length : nl;
    } else break;
  }
  return i;
}

function skipKey(text: string, i: number): number {
  for (;;) {
    i = skipBlank(text, i, false);
    if (text[i] === '"') i = skipBasicString(text, i);
    else if (text[i] === "'") i = skipLiteralString(text, i);
    else while (i < text.length && /[A-Za-z0-9_-]/.test(text[i])) i++;
    const j = skipBlank(text, i, false);
    if (text[j] !== ".") return i;
    i = j + 1;
  }
}

interface ArrayScan {
  elements: { start: number; end: number }[];
  /** Index of the closing bracket. */
  close: number;
  /** Index of a comma after the last element, if any. */
  trailingComma: number | null;
}

function scanArray(text: string, i: number): ArrayScan {
  const elements: { start: number; end: number }[] = [];
  let trailingComma: number | null = null;
  i++;
  for (;;) {
    i = skipBlank(text, i);
    if (i >= text.length || text[i] === "]") return { elements, close: i, trailingComma };
    const start = i;
    i = scanValue(text, i);
    elements.push({ start, end: i });
    trailingComma = null;
    i = skipBlank(text, i);
    if (text[i] === ",") {
      trailingComma = i;
      i++;
    }
  }
}

/** Index past the TOML value starting at `i` (strings, arrays, inline tables, scalars). */
function scanValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipBasicString(text, i);
  if (c === "'") return skipLiteralString(text, i);
  if (c === "[") return scanArray(text, i).close + 1;
  if (c === "{") {
    i++;
    for (;;) {
      i = skipBlank(text, i, false);
      if (i >= text.length || text[i] === "}") return i + 1;
      i = skipKey(text, i);
      i = skipBlank(text, i, false);
      if (text[i] === "=") i++;
      i = skipBlank(text, i, false);
      i = scanValue(text, i);
      i = skipBlank(text, i, false);
      if (text[i] === ",") i++;
    }
  }
  let j = i;
  while (j < text.length && !"\n#,]}".includes(text[j])) j++;
  while (j > i && /\s/.test(text[j - 1])) j--;
  return j;
}

function unquoteKey(k: string): string {
  const t = k.trim();
  if (t.startsWith('"') || t.startsWith("'")) {
    const v = parseToml(`k = ${t}`, "(key)").k;
    return typeof v === "string" ? v : t;
  }
  return t;
}

/** The root table's key/value lines, in order, up to the first table header. */
export function rootKeys(text: string): RootKey[] {
  const keys: RootKey[] = [];
  let i = text.startsWith(BOM) ? BOM.length : 0;
  while (i < text.length) {
    i = skipBlank(text, i);
    if (i >= text.length || text[i] === "[") break;
    const lineStart = text.lastIndexOf("\n", i - 1) + 1;
    const keyEnd = skipKey(text, i);
    const key = unquoteKey(text.slice(i, keyEnd));
    let j = skipBlank(text, keyEnd, false);
    if (text[j] !== "=") break; // not TOML we understand; the caller re-parses its result anyway
    j = skipBlank(text, j + 1, false);
    const valueEnd = scanValue(text, j);
    const nl = text.indexOf("\n", valueEnd);
    const lineEnd = nl === -1 ? text.length : nl + 1;
    keys.push({ key, lineStart, valueStart: j, valueEnd, lineEnd });
    i = lineEnd;
  }
  return keys;
}

/**
 * Adds `entry` to the root `imports` array, after its last element, keeping everything else;
 * with no `imports` key, inserts a marked `imports = [...]` line after the `version` line.
 */
export function addImportEntry(text: string, file: string, entry: string): string {
  const keys = rootKeys(text);
  const imports = keys.find((k) => k.key === "imports");
  const lit = tomlString(entry);
  if (imports === undefined) {
    const version = keys.find((k) => k.key === "version");
    // A byte order mark stays the file's first character (TOML parsers skip it only there).
    const first = text.startsWith(BOM) ? BOM.length : 0;
    const at = version?.lineEnd ?? first;
    const sep = at > first && text[at - 1] !== "\n" ? "\n" : "";
    return (
      text.slice(0, at) + sep + renderBlock(IMPORTS_BLOCK, `imports = [${lit}]`) + text.slice(at)
    );
  }
  if (text[imports.valueStart] !== "[") {
    throw new ConfigError(
      file,
      `${file} has an imports value that is not a list of file paths; containerd needs imports = ["/path/a.toml", ...].`,
    );
  }
  const arr = scanArray(text, imports.valueStart);
  if (arr.elements.length === 0) {
    const at = imports.valueStart + 1;
    return text.slice(0, at) + lit + text.slice(at);
  }
  if (arr.trailingComma !== null) {
    const at = arr.trailingComma + 1;
    return text.slice(0, at) + ` ${lit},` + text.slice(at);
  }
  const at = arr.elements[arr.elements.length - 1].end;
  return text.slice(0, at) + `, ${lit}` + text.slice(at);
}

/**
 * Removes `entry` (its last occurrence) from the root `imports` array, undoing exactly what
 * {@link addImportEntry} inserted when the bytes around it are as it left them.
 */
export function removeImportEntry(text: string, file: string, entry: string): string {
  const imports = rootKeys(text).find((k) => k.key === "imports");
  if (imports === undefined || text[imports.valueStart] !== "[") return text;
  const arr = scanArray(text, imports.valueStart);
  const valueOf = (e: { start: number; end: number }) =>
    parseToml(`v = ${text.slice(e.start, e.end)}`, file).v;
  const idx = arr.elements.map(valueOf).lastIndexOf(entry);
  if (idx === -1) return text;
  const { start: s, end: e } = arr.elements[idx];
  const cut = (a: number, b: number) => text.slice(0, a) + text.slice(b);
  const nextIsComma = text[skipBlank(text, e)] === ",";
  if (text.slice(s - 2, s) === ", " && !nextIsComma) return cut(s - 2, e);
  if (text.slice(s - 2, s) === ", " && text[e] === ",") return cut(s - 1, e + 1);
  if (text[s - 1] === "[" && text[e] === "]") return cut(s, e);
  if (nextIsComma) {
    let stop = skipBlank(text, e) + 1;
    while (text[stop] === " " || text[stop] === "\t") stop++;
    const lineStart = text.lastIndexOf("\n", s - 1) + 1;
    const alone =
      text.slice(lineStart, s).trim() === "" && (text[stop] === "\n" || stop === text.length);
    return alone ? cut(lineStart, stop + 1) : cut(s, stop);
  }
  const before = text.slice(0, s).trimEnd();
  if (before.endsWith(",")) return cut(before.length - 1, e);
  return cut(s, e);
}
