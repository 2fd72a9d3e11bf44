/**
 * The agent's marked blocks in files it shares with others: everything between a BEGIN and an
 * END comment line is the agent's, everything else is left byte for byte. Pure text functions.
 */
import { ConfigError } from "./config";

export interface Markers {
  begin: string;
  end: string;
}

/** The block that carries the runtime tables (appended to a config or template). */
export const RUNTIME_BLOCK: Markers = {
  begin: "# BEGIN vnode-agent (managed, do not edit)",
  end: "# END vnode-agent",
};

/** The block that carries an `imports` line the agent added to a config that had none. */
export const IMPORTS_BLOCK: Markers = {
  begin: "# BEGIN vnode-agent imports (managed, do not edit)",
  end: "# END vnode-agent imports",
};

/**
 * The line the agent puts before its block in a Go template (k3s/rke2 `config.toml.tmpl`): an
 * action that renders to nothing. A trim marker at the end of the action before it (`{{- end -}}`)
 * trims whitespace only up to the next action, so this one stops it, and the newline after it
 * keeps the BEGIN line on its own line in the rendered config. Without it the newline before the
 * block is trimmed and k3s renders `SystemdCgroup = true# BEGIN vnode-agent ...`.
 */
export const TEMPLATE_GUARD = "{{/* vnode-agent: keeps the block below on its own lines */}}";

/** Where a block sits: `start` is the BEGIN line's first char, `end` is past the END line. */
export interface BlockRange {
  start: number;
  end: number;
}

interface Line {
  start: number;
  /** Past the line's newline (or the text's end). */
  next: number;
  text: string;
}

function* lines(text: string): Generator<Line> {
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    const stop = nl === -1 ? text.length : nl;
    yield {
      start,
      next: nl === -1 ? text.length : nl + 1,
      text: text.slice(start, stop).replace(/\r$/, ""),
    };
    start = stop + 1;
  }
}

/**
 * The agent's block in `text`, or null. A half block (BEGIN without END or the reverse) or two
 * blocks mean someone edited it: refuse rather than guess which bytes are ours.
 */
export function findBlock(
  text: string,
  markers: Markers,
  file: string,
  { glued = false }: { glued?: boolean } = {},
): BlockRange | null {
  let found: BlockRange | null = null;
  let open: number | null = null;
  for (const line of lines(text)) {
    const t = line.text.trim();
    // A k3s rendering of a template without the guard: the BEGIN line glued to the line before.
    const gluedAt = glued && t !== markers.begin && t.endsWith(markers.begin);
    if (t === markers.begin || gluedAt) {
      if (open !== null || found !== null) {
        throw new ConfigError(
          file,
          `${file} has more than one "${markers.begin}" line; remove the extra vnode-agent block by hand, then rerun.`,
        );
      }
      open = gluedAt ? line.start + line.text.lastIndexOf(markers.begin) : line.start;
    } else if (t === markers.end) {
      if (open === null) {
        throw new ConfigError(
          file,
          `${file} has a "${markers.end}" line without its "${markers.begin}" line; restore or remove the vnode-agent block by hand, then rerun.`,
        );
      }
      found = { start: open, end: line.next };
      open = null;
    }
  }
  if (open !== null) {
    throw new ConfigError(
      file,
      `${file} has a "${markers.begin}" line without its "${markers.end}" line; restore or remove the vnode-agent block by hand, then rerun.`,
    );
  }
  return found;
}

/** The block text: BEGIN line, body (newline-terminated), END line. */
export function renderBlock(markers: Markers, body: string): string {
  const b = body.length === 0 || body.endsWith("\n") ? body : body + "\n";
  return `${markers.begin}\n${b}${markers.end}\n`;
}

/** The body between the markers of an existing block. */
export function blockBody(text: string, range: BlockRange): string {
  const inner = text.slice(range.start, range.end);
  const first = inner.indexOf("\n") + 1;
  const lastStart = inner.trimEnd().lastIndexOf("\n") + 1;
  return inner.slice(first, lastStart);
}

/** The start of the line before `at` when that line is exactly `guard`, else `at`. */
function guardStart(text: string, at: number, guard: string | undefined): number {
  if (guard === undefined || at === 0) return at;
  const lineStart = text.lastIndexOf("\n", at - 2) + 1;
  return text.slice(lineStart, at).replace(/\r?\n$/, "") === guard ? lineStart : at;
}

/**
 * Replaces the block in place, or appends it after one newline: a blank separator line when the
 * text ends with a newline, the missing final newline otherwise. With a `guard` (Go templates,
 * {@link TEMPLATE_GUARD}) the guard line goes right before the BEGIN line, also when an older
 * block lacks it. {@link removeBlock} undoes either exactly.
 */
export function upsertBlock(
  text: string,
  markers: Markers,
  body: string,
  file: string,
  guard?: string,
): string {
  const block = renderBlock(markers, body);
  const range = findBlock(text, markers, file);
  const guarded = guard === undefined ? block : `${guard}\n${block}`;
  if (range === null) return text + "\n" + guarded;
  const start = guardStart(text, range.start, guard);
  return text.slice(0, start) + guarded + text.slice(range.end);
}

/**
 * Removes the block. For an appended block (`appended`), also the one newline the append added:
 * at the end of the text the newline before the block, elsewhere (someone wrote after the
 * block) the blank separator line before it, if still there.
 */
export function removeBlock(
  text: string,
  markers: Markers,
  file: string,
  appended = true,
  { guard, glued }: { guard?: string; glued?: boolean } = {},
): string {
  const range = findBlock(text, markers, file, { glued });
  if (range === null) return text;
  let start = guardStart(text, range.start, guard);
  if (appended && start > 0 && text[start - 1] === "\n") {
    const atEnd = range.end === text.length;
    if (atEnd || (start > 1 && text[start - 2] === "\n")) start -= 1;
  }
  return text.slice(0, start) + text.slice(range.end);
}

/** True when the whole text is one block (a file the agent created and owns entirely). */
export function isWholeBlock(text: string, markers: Markers, file: string): boolean {
  const range = findBlock(text, markers, file);
  return range !== null && range.start === 0 && range.end === text.length;
}
