/**
 * Textual removal of one TOML table (and its sub-tables) written as `[header]` sections, keeping
 * every other byte. For a table the agent once wrote in its block and another tool re-serialized
 * without the block's comments (nvidia-ctk, the GPU operator's toolkit, `containerd config
 * migrate` parse and rewrite the whole file). Pure.
 */
import { isDeepStrictEqual } from "node:util";
import { parse, type TomlTable } from "smol-toml";
import { isTable } from "./config";
import { plain } from "./effective";

const HEADER = /^[ \t]*\[(\[)?(.*?)\]?\][ \t]*(#.*)?\r?$/;

/** The key path of a `[a."b".c]` / `[[a.b]]` header line, or null when the line is none. */
function headerPath(line: string): string[] | null {
  const m = HEADER.exec(line);
  if (m === null) return null;
  let doc: TomlTable;
  try {
    doc = parse(`${m[1] ? "[[" : "["}${m[2]}${m[1] ? "]]" : "]"}\n`);
  } catch {
    return null;
  }
  const keys: string[] = [];
  let t: unknown = doc;
  for (;;) {
    if (Array.isArray(t)) t = t[0];
    if (!isTable(t)) break;
    const k = Object.keys(t);
    if (k.length !== 1) break;
    keys.push(k[0]);
    t = t[k[0]];
  }
  return keys;
}

function startsWith(p: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= p.length && prefix.every((k, i) => p[i] === k);
}

function without(doc: TomlTable, keys: readonly string[]): TomlTable {
  const out = plain(doc);
  let t: unknown = out;
  for (const k of keys.slice(0, -1)) t = isTable(t) ? t[k] : undefined;
  if (isTable(t)) delete t[keys[keys.length - 1]];
  return out;
}

/**
 * `text` without the table at `keys` and its sub-tables, or null when it cannot be cut out as
 * whole `[header]` sections (inline tables, dotted keys) or the result would differ from the
 * parsed document minus that table in any other way.
 */
export function removeTableSections(text: string, keys: readonly string[]): string | null {
  const lines = text.split(/(?<=\n)/);
  let out = "";
  let skipping = false;
  for (const line of lines) {
    const p = headerPath(line.replace(/\n$/, ""));
    if (p !== null) skipping = startsWith(p, keys);
    if (!skipping) out += line;
  }
  try {
    const opts = { integersAsBigInt: "asNeeded" } as const;
    return isDeepStrictEqual(plain(parse(out, opts)), without(parse(text, opts), keys))
      ? out
      : null;
  } catch {
    return null;
  }
}
