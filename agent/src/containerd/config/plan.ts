/**
 * Plans the file changes that register (or remove) the runtime handler in the node's
 * containerd config, preserving every other byte. Pure: a snapshot of host files in, a list of
 * whole-file changes out; the orchestrator writes them atomically and records them in the
 * ledger. Every plan is checked before it is returned: the effective config after the change
 * must equal the one before plus exactly the handler (or minus exactly the agent's part).
 *
 * Strategies, by config version and distribution:
 * - version 2 (containerd 1.6/1.7): an imported file replaces whole plugin sections, so a
 *   drop-in would have to copy the complete CRI section. Instead the agent appends a marked
 *   block with the runtime tables to the file that owns the CRI section (the last one in load
 *   order that defines it; the main config when none does).
 * - version 3/4 (containerd 2.x): imports merge key by key, so a minimal drop-in is enough. It
 *   goes where the main config already imports a glob (containerd 2.2+ ships
 *   `imports = ['/etc/containerd/conf.d/*.toml']`, k3s `config-v3.toml.d/*.toml`); otherwise to
 *   the layout's drop-in dir, with an `imports` entry added to the main config.
 * - k3s/rke2 (no import glob, or version 2): the marked block goes into the template k3s renders
 *   the config from (`config-v3.toml.tmpl` or `config.toml.tmpl`); a template the agent creates
 *   is `{{ template "base" . }}` plus the block, so it never freezes a copy of the config.
 * - microk8s: the block goes into `containerd-template.toml`.
 * - k0s (a k0s-managed containerd.toml): a drop-in in `/etc/k0s/containerd.d`, which k0s merges
 *   into its CRI config; an unmanaged containerd.toml is treated like plain containerd.
 */
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import type { TomlTable } from "smol-toml";
import {
  ConfigError,
  type ConfigVersion,
  CRI_PLUGIN_V1,
  CRI_RUNTIME_PLUGIN_V2,
  type CriRuntimePlugin,
  criRuntimePlugin,
  criSections,
  type HandlerSpec,
  isTable,
  parseToml,
  renderRuntimeTables,
  tomlSyntaxError,
  runtimeIn,
  runtimeTable,
  tableAt,
  validateHandlerSpec,
} from "./config";
import {
  activeTemplate,
  type EffectiveConfig,
  effectiveConfig,
  isK0sManaged,
  mainConfigText,
  need,
  plain,
} from "./effective";
import {
  addImportEntry,
  type FileSnapshot,
  dropInNameUnderGlob,
  importsOf,
  removeImportEntry,
  resolveImportEntries,
} from "./imports";
import { type ContainerdLayout, DROP_IN_NAME, isGoTemplate, isRendered, ownDropIn } from "./layout";
import { removeTableSections } from "./tables";
import {
  findBlock,
  IMPORTS_BLOCK,
  isWholeBlock,
  removeBlock,
  renderBlock,
  RUNTIME_BLOCK,
  TEMPLATE_GUARD,
  upsertBlock,
} from "./managed-block";

const posix = path.posix;

/** One whole-file change. `before`/`after` null: the file is absent / is to be deleted. */
export interface FileChange {
  path: string;
  before: string | null;
  after: string | null;
  purpose: string;
}

const ADOPT_NOTE = (name: string) =>
  `remove runtime "${name}", which vnode-agent added and another tool rewrote without its block`;

/** What k3s/rke2 renders as its stock config; a template the agent creates starts with it. */
export const BASE_TEMPLATE = '{{ template "base" . }}\n';

/** Where and how the handler is registered. */
export type Strategy =
  | {
      kind: "block";
      file: string;
      version: ConfigVersion;
      plugin: CriRuntimePlugin;
      injectRunc: boolean;
    }
  | { kind: "drop-in"; file: string; version: ConfigVersion; importFrom: string | null };

function isGeneratedConfig(layout: ContainerdLayout, p: string): boolean {
  return isRendered(layout) && p === layout.config;
}

/** The guard line before the agent's block in `p`, when `p` is a Go template. */
function guardOf(layout: ContainerdLayout, p: string): string | undefined {
  return isGoTemplate(layout, p) ? TEMPLATE_GUARD : undefined;
}

/** Files the agent may edit: everything in the snapshot but a rendered config (k3s rewrites it). */
function editable(layout: ContainerdLayout, files: FileSnapshot): string[] {
  return Object.keys(files).filter((p) => !isGeneratedConfig(layout, p));
}

/**
 * The snapshot with everything the agent adds removed: its marked blocks, the files that are
 * only its block (drop-ins; templates that are only the base plus the block), its import entry.
 */
export function withoutAgent(
  layout: ContainerdLayout,
  files: FileSnapshot,
): Record<string, string | null> {
  const out: Record<string, string | null> = { ...files };
  const dropIn = ownDropIn(layout);
  for (const p of editable(layout, files)) {
    let t = files[p];
    if (t === null) continue;
    if (isWholeBlock(t, RUNTIME_BLOCK, p)) {
      out[p] = null;
      continue;
    }
    t = removeBlock(t, RUNTIME_BLOCK, p, true, { guard: guardOf(layout, p) });
    if (
      (p === layout.template || p === layout.templateV3) &&
      layout.distribution !== "microk8s" &&
      t === BASE_TEMPLATE &&
      t !== files[p]
    ) {
      out[p] = null;
      continue;
    }
    t = removeBlock(t, IMPORTS_BLOCK, p, false);
    // An unparsable main config keeps its entries; the effective config reports the file.
    if (p === layout.config && tomlSyntaxError(t) === null) t = removeImportEntry(t, p, dropIn);
    out[p] = t;
  }
  return out;
}

/**
 * A runtime table the ledger says the agent added: after another tool re-serialized the file
 * (dropping comments, so the block's markers) it is still the agent's, and is re-adopted.
 */
export interface AdoptedRuntime {
  name: string;
  table: TomlTable;
}

/**
 * The snapshot with every editable file's copy of `adopt` (under either CRI plugin id, as a
 * migration may have moved it) cut out when it equals the recorded table exactly; the files
 * changed that way. A matching table that cannot be cut out as [table] sections is refused.
 */
function withoutAdopted(
  layout: ContainerdLayout,
  files: FileSnapshot,
  adopt: AdoptedRuntime | undefined,
): { files: Record<string, string | null>; adopted: string[] } {
  const out: Record<string, string | null> = { ...files };
  const adopted: string[] = [];
  if (adopt === undefined) return { files: out, adopted };
  for (const p of editable(layout, files)) {
    const text = files[p];
    if (text === null || tomlSyntaxError(text) !== null) continue;
    const doc = parseToml(text, p);
    for (const id of [CRI_PLUGIN_V1, CRI_RUNTIME_PLUGIN_V2]) {
      const keys = ["plugins", id, "containerd", "runtimes", adopt.name];
      const found = tableAt(doc, keys);
      if (found === undefined || !isDeepStrictEqual(plain(found), plain(adopt.table))) continue;
      if (findBlock(text, RUNTIME_BLOCK, p) !== null) continue; // ours, in its block
      const cut = removeTableSections(out[p]!, keys);
      if (cut === null) {
        throw new ConfigError(
          p,
          `${p} still registers runtime "${adopt.name}" as vnode-agent recorded it, but another tool rewrote it without the vnode-agent block and not as [table] sections the agent can cut out; remove plugins."${id}".containerd.runtimes.${adopt.name} by hand, then rerun.`,
        );
      }
      out[p] = cut;
      adopted.push(p);
    }
  }
  return { files: out, adopted };
}

/** A drop-in path the main config's import globs already cover, or null. */
function globDropIn(
  mainDoc: TomlTable,
  version: ConfigVersion,
  layout: ContainerdLayout,
): string | null {
  for (const r of resolveImportEntries(layout.config, importsOf(mainDoc, layout.config), version)) {
    if (!r.glob) continue;
    const dir = posix.dirname(r.path);
    if (/[*?[\\]/.test(dir)) continue;
    const name = dropInNameUnderGlob(posix.basename(r.path));
    if (name !== null) return posix.join(dir, name);
  }
  return null;
}

/** The last file in load order whose own text defines the plugin `id`. */
function owner(files: FileSnapshot, before: EffectiveConfig, id: string, main: string): string {
  let found = main;
  for (const f of before.files) {
    if (f === main) continue;
    const plugins = parseToml(need(files, f)!, f).plugins;
    if (isTable(plugins) && plugins[id] !== undefined) found = f;
  }
  return found;
}

function chooseStrategy(
  layout: ContainerdLayout,
  clean: FileSnapshot,
  before: EffectiveConfig,
): Strategy {
  const version = before.version;
  const mainText = mainConfigText(layout, clean);
  if (layout.distribution === "k0s" && isK0sManaged(mainText)) {
    return {
      kind: "drop-in",
      file: posix.join(layout.dropInDir!, DROP_IN_NAME),
      version,
      importFrom: null,
    };
  }
  if (version >= 3) {
    const glob = globDropIn(parseToml(mainText, layout.config), version, layout);
    if (glob !== null) return { kind: "drop-in", file: glob, version, importFrom: null };
  }
  if (isRendered(layout)) {
    let file: string;
    if (layout.distribution === "microk8s") file = layout.template!;
    else
      file =
        activeTemplate(layout, clean) ?? (version >= 3 ? layout.templateV3! : layout.template!);
    const plugin = criRuntimePlugin(version, before.doc);
    return { kind: "block", file, version, plugin, injectRunc: false };
  }
  if (version >= 3)
    return { kind: "drop-in", file: ownDropIn(layout), version, importFrom: layout.config };
  const plugin = criRuntimePlugin(version, before.doc);
  const runtimes = tableAt(before.doc, ["plugins", plugin.id, ...plugin.runtimesPath]);
  const defaultName = tableAt(before.doc, [
    "plugins",
    plugin.id,
    "containerd",
  ])?.default_runtime_name;
  // containerd 1.x replaces its built-in runtimes map with the declared one: a config that
  // declares none relies on the built-in runc, which declaring only our handler would drop.
  // (containerd 2.x keeps its built-in runtimes, so only a 1.x section needs this.)
  const injectRunc =
    plugin.id === CRI_PLUGIN_V1 &&
    (runtimes === undefined || Object.keys(runtimes).length === 0) &&
    (defaultName === undefined || defaultName === "runc");
  return {
    kind: "block",
    file: owner(clean, before, plugin.id, layout.config),
    version,
    plugin,
    injectRunc,
  };
}

/** The runtimes the strategy declares: the handler, plus runc when it must be kept. */
function declaredRuntimes(strategy: Strategy, spec: HandlerSpec): Record<string, TomlTable> {
  const runtimes: Record<string, TomlTable> = {};
  if (strategy.kind === "block" && strategy.injectRunc)
    runtimes.runc = { runtime_type: "io.containerd.runc.v2" };
  runtimes[spec.name] = runtimeTable(spec);
  return runtimes;
}

/**
 * containerd 2.x reads a drop-in of version 3 under a version 3 or 4 main config (it migrates
 * older drop-ins and, from 2.3, refuses newer ones), so drop-ins say 3 for both.
 */
function dropInVersion(v: ConfigVersion): ConfigVersion {
  return v === 4 ? 3 : v;
}

function blockBodyFor(strategy: Strategy, spec: HandlerSpec): string {
  const runtimes = declaredRuntimes(strategy, spec);
  if (strategy.kind === "block")
    return renderRuntimeTables(strategy.version, runtimes, strategy.plugin);
  const v = dropInVersion(strategy.version);
  return `version = ${v}\n\n${renderRuntimeTables(v, runtimes)}`;
}

function conflictCheck(
  layout: ContainerdLayout,
  clean: FileSnapshot,
  before: EffectiveConfig,
  name: string,
  recorded: boolean,
): void {
  if (runtimeIn(before.doc, before.version, name) === undefined) return;
  const plugin = criRuntimePlugin(before.version, before.doc);
  let file = layout.config;
  for (const f of before.files) {
    const text = f === layout.config ? mainConfigText(layout, clean) : clean[f];
    if (
      text !== null &&
      runtimeIn(parseToml(text, f), before.version, name, before.doc) !== undefined
    )
      file = f;
  }
  // With a ledger record the agent did register the handler once: another tool rewrote the
  // config without the block (otherwise the table was re-adopted) and changed the table too.
  throw new ConfigError(
    file,
    recorded
      ? `${file} defines runtime "${name}" under plugins."${plugin.id}".containerd.runtimes outside a vnode-agent block and not as vnode-agent recorded it (another tool rewrote the config and changed the table); vnode-agent leaves it alone: remove the table or restore it as recorded, and the handler is registered again.`
      : `${file} already defines runtime "${name}" under plugins."${plugin.id}".containerd.runtimes, not in a vnode-agent block; remove it or choose another --handler, then rerun.`,
  );
}

/**
 * The editable files holding a copy of `adopt` outside the agent's block that another tool
 * rewrote (the ones {@link planRegister} re-adopts); throws as planRegister does.
 */
export function rewrittenCopies(
  layout: ContainerdLayout,
  original: FileSnapshot,
  adopt: AdoptedRuntime | undefined,
): string[] {
  return withoutAdopted(layout, original, adopt).adopted;
}

/** The last file in load order whose own text has `has(doc)`, else the main config. */
function lastDefining(
  layout: ContainerdLayout,
  clean: FileSnapshot,
  before: EffectiveConfig,
  has: (doc: TomlTable) => boolean,
): string {
  let file = layout.config;
  for (const f of before.files) {
    const text = f === layout.config ? mainConfigText(layout, clean) : clean[f];
    if (text !== null && has(parseToml(text, f))) file = f;
  }
  return file;
}

/**
 * The CRI plugin ids whose absence leaves the kubelet without a CRI runtime service, per
 * config version (ids as `disabled_plugins` takes them; version 2 matches full ids only,
 * containerd services/server: V2DisabledFilter compares the plugin URI).
 */
function criPluginIds(version: ConfigVersion): string[] {
  return version === 2
    ? [CRI_PLUGIN_V1]
    : [CRI_PLUGIN_V1, CRI_RUNTIME_PLUGIN_V2, "io.containerd.cri.v1.images"];
}

/**
 * Refuses configs where the handler could never work or where its place depends on which
 * containerd release reads the file: a disabled CRI plugin, and a version 2 config that mixes
 * the 1.x and 2.x CRI plugin ids.
 */
function criUsable(layout: ContainerdLayout, clean: FileSnapshot, before: EffectiveConfig): void {
  const disabled = Array.isArray(before.doc.disabled_plugins) ? before.doc.disabled_plugins : [];
  const off = criPluginIds(before.version).filter((id) => disabled.includes(id));
  if (off.length > 0) {
    const file = lastDefining(
      layout,
      clean,
      before,
      (d) =>
        Array.isArray(d.disabled_plugins) &&
        d.disabled_plugins.some((x) => off.includes(x as string)),
    );
    throw new ConfigError(
      file,
      `${file} disables the CRI plugin (disabled_plugins contains ${off.map((id) => JSON.stringify(id)).join(", ")}), so containerd serves the kubelet no runtime and the "vnode" handler could never be used; remove ${off.length === 1 ? "it" : "them"} from disabled_plugins (Docker's packaged config disables CRI), then rerun.`,
    );
  }
  const sections = criSections(before.doc);
  if (before.version === 2 && sections.v1 && sections.v2) {
    const file = lastDefining(layout, clean, before, (d) => criSections(d).v2);
    // containerd 2.x migrates a version 2 grpc.v1.cri section into cri.v1.runtime
    // (plugins/cri/runtime/plugin.go, configMigration): 2.0 replaces the cri.v1.runtime section
    // with it, later releases keep each cri.v1.runtime key and drop the migrated one (a
    // runtimes table there hides every migrated runtime). containerd 1.x ignores cri.v1.runtime.
    throw new ConfigError(
      file,
      `${file} is a version 2 config but defines both plugins."${CRI_PLUGIN_V1}" (containerd 1.x) and plugins."${CRI_RUNTIME_PLUGIN_V2}" (containerd 2.x); containerd 2.x migrates the first into the second (2.0 replaces your ${CRI_RUNTIME_PLUGIN_V2} settings with it, later releases drop its runtimes) and 1.x ignores the second, so a handler in either would be lost on some release; for containerd 2.x set version = 3 and keep only the 2.x sections (\`containerd config migrate\` prints them), for 1.x remove the ${CRI_RUNTIME_PLUGIN_V2} sections, then rerun.`,
    );
  }
}

/** Throws a ConfigError naming the target when the agent's edit does not parse. */
function checkParses(text: string, file: string, what: string): void {
  const err = tomlSyntaxError(text);
  if (err === null) return;
  throw new ConfigError(
    file,
    `cannot add ${what} to ${file}: the result would not be valid TOML (${err}), most likely because the file defines those tables inline or with dotted keys; rewrite them as [table] sections, then rerun.`,
  );
}

interface Desired {
  files: Record<string, string | null>;
  purposes: Map<string, string[]>;
}

function note(d: Desired, p: string, purpose: string): void {
  const list = d.purposes.get(p) ?? [];
  list.push(purpose);
  d.purposes.set(p, list);
}

function importsIn(text: string | null, file: string): string[] {
  return text === null ? [] : importsOf(parseToml(text, file), file);
}

/** The snapshot with the agent's parts removed from every editable file but those in `keep`. */
function removeAgentExcept(
  layout: ContainerdLayout,
  files: FileSnapshot,
  keep: ReadonlySet<string>,
): Desired {
  const clean = withoutAgent(layout, files);
  const d: Desired = { files: { ...files }, purposes: new Map() };
  const dropIn = ownDropIn(layout);
  for (const p of editable(layout, files)) {
    const cur = files[p];
    if (keep.has(p) || cur === null || clean[p] === cur) continue;
    d.files[p] = clean[p];
    if (clean[p] === null) {
      note(d, p, "delete the file vnode-agent created");
      continue;
    }
    if (findBlock(cur, RUNTIME_BLOCK, p) !== null) note(d, p, "remove the vnode-agent block");
    if (findBlock(cur, IMPORTS_BLOCK, p) !== null)
      note(d, p, "remove the vnode-agent imports line");
    else if (p === layout.config && importsIn(cur, p).includes(dropIn))
      note(d, p, `remove the import of ${dropIn}`);
  }
  return d;
}

function changes(files: FileSnapshot, d: Desired, first: string | null): FileChange[] {
  const out: FileChange[] = [];
  for (const p of Object.keys(d.files)) {
    const before = need(files, p);
    const after = d.files[p];
    if (before === after) continue;
    out.push({ path: p, before, after, purpose: (d.purposes.get(p) ?? []).join("; ") });
  }
  const rank = (p: string) => (p === first ? "" : p);
  return out.sort((a, b) =>
    rank(a.path) < rank(b.path) ? -1 : rank(a.path) > rank(b.path) ? 1 : 0,
  );
}

/** The effective config `before` plus the declared runtimes: what a correct plan must yield. */
function expectedAfter(
  before: EffectiveConfig,
  plugin: CriRuntimePlugin,
  runtimes: Record<string, TomlTable>,
): TomlTable {
  const doc = plain(before.doc);
  let t: TomlTable = doc;
  for (const k of ["plugins", plugin.id, ...plugin.runtimesPath]) {
    if (!isTable(t[k])) t[k] = {};
    t = t[k] as TomlTable;
  }
  for (const [name, table] of Object.entries(runtimes)) t[name] = plain(table);
  return doc;
}

/**
 * The changes that register `spec` in the node's containerd config; empty when it already is.
 * A changed spec rewrites only the agent's block or drop-in. Throws a ConfigError (before any
 * change is planned) when the config cannot be read or cannot take the handler.
 */
export function planRegister(
  layout: ContainerdLayout,
  original: FileSnapshot,
  spec: HandlerSpec,
  adopt?: AdoptedRuntime,
): FileChange[] {
  validateHandlerSpec(spec);
  const { files, adopted } = withoutAdopted(layout, original, adopt);
  const clean = withoutAgent(layout, files);
  const before = effectiveConfig(layout, clean);
  criUsable(layout, clean, before);
  conflictCheck(layout, clean, before, spec.name, adopt !== undefined);
  const strategy = chooseStrategy(layout, clean, before);
  const target = strategy.file;
  const main = strategy.kind === "drop-in" ? strategy.importFrom : null;
  const d = removeAgentExcept(layout, files, new Set(main === null ? [target] : [target, main]));
  const handler = `runtime handler "${spec.name}"`;
  for (const p of adopted) note(d, p, ADOPT_NOTE(adopt!.name));

  const body = blockBodyFor(strategy, spec);
  const cur = need(files, target);
  let next: string;
  if (cur === null) {
    const created = strategy.kind === "drop-in";
    next = created
      ? renderBlock(RUNTIME_BLOCK, body)
      : upsertBlock(BASE_TEMPLATE, RUNTIME_BLOCK, body, target, guardOf(layout, target));
    note(
      d,
      target,
      created
        ? `create a drop-in with ${handler}`
        : `create a template: the ${layout.distribution} base config plus ${handler}`,
    );
  } else {
    next = upsertBlock(cur, RUNTIME_BLOCK, body, target, guardOf(layout, target));
    if (next !== cur) {
      const updating = findBlock(cur, RUNTIME_BLOCK, target) !== null;
      note(
        d,
        target,
        updating
          ? `update ${handler} in the vnode-agent block`
          : `add ${handler} in a vnode-agent block`,
      );
    }
  }
  // A template is not TOML; its rendering is checked through the effective config below.
  if (!(strategy.kind === "block" && isRendered(layout)))
    checkParses(next, target, `the ${handler}`);
  d.files[target] = next;

  if (main !== null) {
    // The main config keeps its bytes; only a stale block of ours goes and the import comes in.
    let text = removeBlock(need(files, main)!, RUNTIME_BLOCK, main);
    if (text !== files[main]) note(d, main, "remove the vnode-agent block");
    if (!importsIn(text, main).includes(target)) {
      text = addImportEntry(text, main, target);
      checkParses(text, main, `an imports entry for ${target}`);
      note(d, main, `import ${target}`);
    }
    d.files[main] = text;
  }

  const after = effectiveConfig(layout, d.files);
  const plugin =
    strategy.kind === "drop-in"
      ? criRuntimePlugin(dropInVersion(strategy.version))
      : strategy.plugin;
  const expected = expectedAfter(before, plugin, declaredRuntimes(strategy, spec));
  if (main !== null && !importsIn(clean[main], main).includes(target)) {
    // The main config's entries come first in the merged list; ours is now the last of them.
    const list = Array.isArray(expected.imports) ? [...expected.imports] : [];
    list.splice(importsIn(clean[main], main).length, 0, target);
    expected.imports = list;
  }
  if (!isDeepStrictEqual(after.doc, expected)) {
    throw new Error(
      `internal: registering ${handler} in ${target} would change more than the handler; refusing.`,
    );
  }
  return changes(original, d, target);
}

/**
 * The changes that remove everything the agent added (its block, drop-in, created template,
 * imports entry), leaving every other byte as it is; empty when there is nothing. The config
 * must still load afterwards (a ConfigError otherwise, and nothing is planned).
 */
export function planUnregister(
  layout: ContainerdLayout,
  original: FileSnapshot,
  adopt?: AdoptedRuntime,
): FileChange[] {
  const { files, adopted } = withoutAdopted(layout, original, adopt);
  const d = removeAgentExcept(layout, files, new Set());
  for (const p of adopted) note(d, p, ADOPT_NOTE(adopt!.name));
  effectiveConfig(layout, d.files);
  return changes(original, d, null);
}
