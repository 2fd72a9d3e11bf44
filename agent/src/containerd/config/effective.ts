/**
 * The config containerd would load from a snapshot of host files: the main config plus its
 * imports, merged with the semantics of the containerd that reads that config version, and the
 * distributions' own rules (k3s/rke2/microk8s render the main config from a template, k0s
 * merges CRI drop-ins itself). Used to verify a plan before it is written and to tell whether a
 * change needs a containerd restart. Pure.
 */
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import type { TomlTable } from "smol-toml";
import {
  ConfigError,
  type ConfigVersion,
  isTable,
  parseContainerdConfig,
  parseToml,
  runtimeIn,
} from "./config";
import { type FileSnapshot, importedFiles, importsOf, resolveImportEntries } from "./imports";
import { type ContainerdLayout, isRendered } from "./layout";
import { blockBody, findBlock, removeBlock, RUNTIME_BLOCK, upsertBlock } from "./managed-block";

const posix = path.posix;

/** The CRI config k0s generates from its defaults and the CRI drop-ins, at every start. */
export const K0S_CRI_CONFIG = "/run/k0s/containerd-cri.toml";
/** First line of a k0s-generated containerd.toml; without it k0s ignores its drop-ins. */
export const K0S_MANAGED_MARK = "# k0s_managed=true";

export interface EffectiveConfig {
  /** The main config's version: it decides plugin ids and merge semantics. */
  version: ConfigVersion;
  /** The merged document (plain objects). Built-in defaults are not included. */
  doc: TomlTable;
  /** Files merged, in containerd's load order (main first). */
  files: string[];
}

/** Reads a snapshot entry the planner depends on; a path never read is a caller bug. */
export function need(files: FileSnapshot, p: string): string | null {
  if (!Object.prototype.hasOwnProperty.call(files, p)) {
    throw new Error(
      `internal: ${p} is not in the file snapshot; build it with collectConfigFiles()`,
    );
  }
  return files[p];
}

export function isK0sManaged(text: string | null): boolean {
  if (text === null) return false;
  const first = text.split("\n").find((l) => l.trim().length > 0);
  return first !== undefined && first.replace(/\r$/, "") === K0S_MANAGED_MARK;
}

/** The template k3s/rke2 renders from next start: config-v3.toml.tmpl wins over config.toml.tmpl. */
export function activeTemplate(layout: ContainerdLayout, files: FileSnapshot): string | null {
  for (const t of [layout.templateV3, layout.template]) {
    if (t !== undefined && need(files, t) !== null) return t;
  }
  return null;
}

/**
 * The main config text containerd will load. For rendered distributions that is the config
 * the distribution renders at its next start: the last rendering, with the agent's block as
 * the template now has it (the rest of a template renders as before).
 */
export function mainConfigText(layout: ContainerdLayout, files: FileSnapshot): string {
  const rendered = need(files, layout.config);
  if (!isRendered(layout)) {
    if (rendered === null) {
      throw new ConfigError(
        layout.config,
        `${layout.config} does not exist, so containerd runs on built-in defaults; write them with \`containerd config default > ${layout.config}\` (or pass --containerd-config), then rerun.`,
      );
    }
    return rendered;
  }
  const template =
    layout.distribution === "microk8s" ? (layout.template ?? null) : activeTemplate(layout, files);
  const templateText = template === null ? null : need(files, template);
  let base = rendered;
  if (base === null) {
    if (layout.distribution !== "microk8s" || templateText === null) {
      throw new ConfigError(
        layout.config,
        `${layout.config} does not exist yet; ${layout.distribution} writes it when it starts, so start ${layout.distribution} once, then rerun.`,
      );
    }
    base = templateText; // microk8s templates are TOML with ${VARS} inside strings
  }
  // k3s rendered a template without the guard line with the BEGIN line glued to the line
  // before; recognise that too, so such a node is repaired rather than stuck.
  base = removeBlock(base, RUNTIME_BLOCK, layout.config, true, { glued: true });
  const range = templateText === null ? null : findBlock(templateText, RUNTIME_BLOCK, template!);
  return range === null
    ? base
    : upsertBlock(base, RUNTIME_BLOCK, blockBody(templateText!, range), layout.config);
}

/** A deep copy as plain objects (smol-toml tables have a null prototype). */
export function plain<T>(v: T): T {
  if (Array.isArray(v)) return v.map(plain) as T;
  if (isTable(v)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x);
    return o as T;
  }
  return v;
}

function isEmpty(v: unknown): boolean {
  if (v === "" || v === 0 || v === 0n || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isTable(v)) return Object.keys(v).length === 0;
  return false;
}

/** mergo WithOverride on a struct: non-empty source values win, tables merge field by field. */
function mergeStruct(to: TomlTable, from: TomlTable): void {
  for (const [k, v] of Object.entries(from)) {
    if (isTable(v) && isTable(to[k])) mergeStruct(to[k] as TomlTable, v);
    else if (!isEmpty(v) || to[k] === undefined) to[k] = plain(v);
  }
}

/** mergo on map[string]any with override: maps merge key by key, anything else is replaced. */
function mergeMaps(to: TomlTable, from: TomlTable): void {
  for (const [k, v] of Object.entries(from)) {
    if (isTable(v) && isTable(to[k])) mergeMaps(to[k] as TomlTable, v);
    else to[k] = plain(v);
  }
}

/** Maps containerd replaces entry by entry in both major versions. */
const REPLACED_MAPS = new Set(["proxy_plugins", "stream_processors", "timeouts"]);

/**
 * Merges one loaded file into the result like containerd's mergeConfig. containerd 1.x (config
 * version 2) replaces each plugin's whole section and appends lists; containerd 2.x merges
 * plugin config key by key (lists and values inside plugins replaced) and appends only list
 * items not already present. The version key is the main file's (drop-ins are migrated to it).
 */
export function mergeInto(to: TomlTable, from: TomlTable, version: ConfigVersion): void {
  for (const [k, v] of Object.entries(from)) {
    if (k === "version") continue;
    const cur = to[k];
    if (k === "plugins" && isTable(v)) {
      const plugins = (isTable(cur) ? cur : (to[k] = {})) as TomlTable;
      if (version === 2)
        for (const [id, section] of Object.entries(v)) plugins[id] = plain(section);
      else mergeMaps(plugins, v);
    } else if (REPLACED_MAPS.has(k) && isTable(v)) {
      const m = (isTable(cur) ? cur : (to[k] = {})) as TomlTable;
      for (const [id, x] of Object.entries(v)) m[id] = plain(x);
    } else if (Array.isArray(v)) {
      const list = Array.isArray(cur) ? [...cur] : [];
      for (const x of v)
        if (version === 2 || !list.some((y) => isDeepStrictEqual(plain(y), plain(x))))
          list.push(plain(x));
      to[k] = list;
    } else if (isTable(v)) {
      if (!isTable(cur)) to[k] = {};
      mergeStruct(to[k] as TomlTable, v);
    } else if (!isEmpty(v) || cur === undefined) {
      to[k] = v;
    }
  }
}

/** RFC 7396 merge patch, as k0s applies CRI drop-ins (TOML has no null, so nothing deletes). */
function mergePatch(to: TomlTable, patch: TomlTable): void {
  for (const [k, v] of Object.entries(patch)) {
    if (isTable(v)) {
      if (!isTable(to[k])) to[k] = {};
      mergePatch(to[k] as TomlTable, v);
    } else to[k] = plain(v);
  }
}

function hasCriSection(doc: TomlTable): boolean {
  const plugins = doc.plugins;
  return (
    isTable(plugins) &&
    Object.keys(plugins).some(
      (id) => id === "io.containerd.grpc.v1.cri" || id.startsWith("io.containerd.cri.v1."),
    )
  );
}

/** k0s drop-ins: the `.toml` files directly in its drop-in dir, in name order. */
export function k0sDropIns(layout: ContainerdLayout, files: FileSnapshot): string[] {
  const dir = layout.dropInDir;
  if (dir === undefined) return [];
  return Object.keys(files)
    .filter((f) => files[f] !== null && posix.dirname(f) === dir && f.endsWith(".toml"))
    .sort();
}

/**
 * The effective config of a snapshot. Throws ConfigError for what containerd would also refuse
 * (bad TOML, v1 or unknown version, a missing imported file). Not modeled: containerd's
 * built-in defaults, the migration of version 2 drop-ins under a version 3 main config, and
 * k0s's own CRI defaults (its generated CRI config is left out, its drop-ins are merged in).
 */
export function effectiveConfig(layout: ContainerdLayout, files: FileSnapshot): EffectiveConfig {
  const mainText = mainConfigText(layout, files);
  const main = parseContainerdConfig(mainText, layout.config);
  const version = main.version;
  const k0s = layout.distribution === "k0s" && isK0sManaged(mainText);
  const doc: TomlTable = { version };
  const order: string[] = [];
  const queue: { file: string; from: string | null }[] = [{ file: layout.config, from: null }];
  while (queue.length > 0) {
    const { file, from } = queue.shift()!;
    if (order.includes(file) || (k0s && file === K0S_CRI_CONFIG)) continue;
    const text = file === layout.config ? mainText : need(files, file);
    if (text === null) {
      throw new ConfigError(
        from!,
        `${from} imports ${file}, which does not exist; containerd would fail to start (remove the entry or create the file).`,
      );
    }
    const d = file === layout.config ? main.doc : parseToml(text, file);
    mergeInto(doc, d, version);
    order.push(file);
    const imports = resolveImportEntries(file, importsOf(d, file), version);
    for (const f of importedFiles(imports, files, file)) queue.push({ file: f, from: file });
  }
  if (k0s) {
    for (const f of k0sDropIns(layout, files)) {
      const d = parseToml(files[f]!, f);
      if (hasCriSection(d)) {
        const patch = plain(d);
        delete patch.version; // the drop-in's own version is not a setting
        mergePatch(doc, patch);
      } else mergeInto(doc, d, version);
      order.push(f);
    }
  }
  return { version, doc: plain(doc), files: order };
}

/** The runtime table of handler `name` in an effective config, or undefined. */
export function registeredHandler(effective: EffectiveConfig, name: string): TomlTable | undefined {
  return runtimeIn(effective.doc, effective.version, name);
}
