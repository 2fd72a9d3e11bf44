/**
 * The containerd config format: parsing with a real TOML parser, the config version, where the
 * CRI runtime plugin keeps its runtimes in each version, and the runtime table the agent
 * registers. Pure: text in, values out; errors name the file and what is allowed.
 */
import { parse, TomlError, type TomlTable } from "smol-toml";
import { AgentError, ExitCode } from "../../lib/errors";

export type ConfigVersion = 2 | 3 | 4;
export const SUPPORTED_CONFIG_VERSIONS: readonly ConfigVersion[] = [2, 3, 4];
const SUPPORTED = "version 2 (containerd 1.6/1.7) or version 3 or 4 (containerd 2.x)";

/**
 * A containerd config (or template, or drop-in) the agent cannot read or must not edit. Bad
 * input for the CLI (exit 2); `file` is the host path of the offending file.
 */
export class ConfigError extends AgentError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message, ExitCode.BadInput);
    this.name = "ConfigError";
  }
}

export interface ParsedConfig {
  version: ConfigVersion;
  doc: TomlTable;
}

/** Why `text` is not valid TOML ("line L, column C: reason"), or null when it is. */
export function tomlSyntaxError(text: string): string | null {
  try {
    parse(text, { integersAsBigInt: "asNeeded" });
    return null;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = err.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    return `line ${err.line}, column ${err.column}: ${reason}`;
  }
}

/** Parses TOML text; a syntax error becomes a ConfigError naming the file, line and column. */
export function parseToml(text: string, file: string): TomlTable {
  try {
    return parse(text, { integersAsBigInt: "asNeeded" });
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    throw new ConfigError(
      file,
      `${file} is not valid TOML (${tomlSyntaxError(text)}); fix it so containerd can load it, then rerun.`,
    );
  }
}

function versionOf(doc: TomlTable, file: string): number | null {
  const v = doc.version;
  if (v === undefined) return null;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "bigint") return Number(v);
  throw new ConfigError(
    file,
    `${file} has a non-integer version ${JSON.stringify(String(v))}; supported: ${SUPPORTED}.`,
  );
}

/**
 * The `version` of a containerd config, or null when it has none (the v1 format). Throws a
 * ConfigError when the file is not valid TOML. For the preflight, which judges the value.
 */
export function readConfigVersion(text: string, file: string): number | null {
  return versionOf(parseToml(text, file), file);
}

export function configVersionSupported(version: number | null): version is ConfigVersion {
  return version === 2 || version === 3 || version === 4;
}

/**
 * Parses a containerd config and checks its version. No version (v1, removed in containerd
 * 2.0) or any other unsupported version is refused, so the caller never edits such a file.
 */
export function parseContainerdConfig(text: string, file: string): ParsedConfig {
  const doc = parseToml(text, file);
  const version = versionOf(doc, file);
  if (version === null) {
    throw new ConfigError(
      file,
      `${file} has no version key, so containerd reads it as the deprecated version 1 format; supported: ${SUPPORTED}; convert it (containerd 2.x's \`containerd config migrate\` does), then rerun.`,
    );
  }
  if (!configVersionSupported(version)) {
    throw new ConfigError(file, `${file} has version ${version}; supported: ${SUPPORTED}.`);
  }
  return { version, doc };
}

/** Where the CRI plugin keeps its runtimes: `plugins.<id>.containerd.runtimes`. */
export interface CriRuntimePlugin {
  id: string;
  /** Keys from the plugin's table down to the runtimes table. */
  runtimesPath: readonly ["containerd", "runtimes"];
}

/** containerd 1.x's CRI plugin, which owns the runtimes in config version 2. */
export const CRI_PLUGIN_V1 = "io.containerd.grpc.v1.cri";
/** containerd 2.x's CRI runtime plugin (config versions 3 and 4). */
export const CRI_RUNTIME_PLUGIN_V2 = "io.containerd.cri.v1.runtime";

/** Which CRI sections a document defines under `plugins`. */
export function criSections(doc: TomlTable): { v1: boolean; v2: boolean } {
  const plugins = doc.plugins;
  const has = (id: string) => isTable(plugins) && plugins[id] !== undefined;
  return { v1: has(CRI_PLUGIN_V1), v2: has(CRI_RUNTIME_PLUGIN_V2) };
}

/**
 * The CRI plugin that owns runtimes: `io.containerd.grpc.v1.cri` in version 2 (containerd
 * 1.x); containerd 2.x split CRI and moved them to `io.containerd.cri.v1.runtime` (versions
 * 3 and 4 share the plugin ids). A version 2 `doc` that uses only the 2.x plugin id is a config
 * for containerd 2.x: 2.x migrates a version 2 config only when it has a grpc.v1.cri section
 * (containerd plugins/cri/runtime/plugin.go, configMigration), so its runtimes are read from
 * cri.v1.runtime as written, and that is where the handler goes.
 */
export function criRuntimePlugin(version: ConfigVersion, doc?: TomlTable): CriRuntimePlugin {
  const sections = doc === undefined ? null : criSections(doc);
  const v2Only = version === 2 && sections !== null && sections.v2 && !sections.v1;
  return {
    id: version === 2 && !v2Only ? CRI_PLUGIN_V1 : CRI_RUNTIME_PLUGIN_V2,
    runtimesPath: ["containerd", "runtimes"],
  };
}

/** The runtime handler the agent registers. */
export interface HandlerSpec {
  /** Runtime handler name, what a RuntimeClass's `handler` selects (`--handler`). */
  name: string;
  /** containerd shim, e.g. `io.containerd.vnode.v2` (`--runtime-type`). */
  runtimeType: string;
  /** Absolute path of the shim binary when it is not on containerd's PATH (`--runtime-path`). */
  runtimePath?: string;
  /** Pod annotations passed through to the runtime (`--pod-annotations`). */
  podAnnotations?: readonly string[];
  /** The handler's own CNI conf dir (`cni_conf_dir`, containerd 1.6+), host path. */
  cniConfDir?: string;
  /** How many network configs containerd loads from `cniConfDir` (`cni_max_conf_num`). */
  cniMaxConfNum?: number;
  /** The runtime's `options` table (shim specific), rarely needed. */
  options?: Readonly<Record<string, string | number | boolean>>;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const RUNTIME_TYPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){2,}$/;
const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** Checks a HandlerSpec; errors name the CLI flag and what is allowed. */
export function validateHandlerSpec(spec: HandlerSpec): void {
  const bad = (m: string) => new AgentError(m, ExitCode.BadInput);
  if (spec.name.length > 63 || !DNS_LABEL.test(spec.name)) {
    throw bad(
      `--handler must be a DNS label (lowercase letters, digits and "-", at most 63 characters, as a RuntimeClass handler); got "${spec.name}".`,
    );
  }
  if (!RUNTIME_TYPE.test(spec.runtimeType)) {
    throw bad(
      `--runtime-type must be a containerd shim name like io.containerd.vnode.v2; got "${spec.runtimeType}".`,
    );
  }
  if (spec.runtimePath !== undefined && !/^\/[^\0\n]*$/.test(spec.runtimePath)) {
    throw bad(`--runtime-path must be an absolute path on the host; got "${spec.runtimePath}".`);
  }
  if (spec.cniConfDir !== undefined && !/^\/[^\0\n]*$/.test(spec.cniConfDir)) {
    throw bad(`--cni-conf-dir must be an absolute path on the host; got "${spec.cniConfDir}".`);
  }
  for (const a of spec.podAnnotations ?? []) {
    if (a.length === 0 || /[\s\0]/.test(a)) {
      throw bad(
        `--pod-annotations entries must be annotation keys or key patterns without spaces; got "${a}".`,
      );
    }
  }
  for (const k of Object.keys(spec.options ?? {})) {
    if (!BARE_KEY.test(k)) throw bad(`runtime option names must be plain TOML keys; got "${k}".`);
  }
}

/** The runtime table containerd reads for the handler (keys as containerd names them). */
export function runtimeTable(spec: HandlerSpec): TomlTable {
  const t: TomlTable = { runtime_type: spec.runtimeType };
  if (spec.runtimePath !== undefined) t.runtime_path = spec.runtimePath;
  if (spec.podAnnotations !== undefined && spec.podAnnotations.length > 0)
    t.pod_annotations = [...spec.podAnnotations];
  if (spec.cniConfDir !== undefined) t.cni_conf_dir = spec.cniConfDir;
  if (spec.cniMaxConfNum !== undefined) t.cni_max_conf_num = spec.cniMaxConfNum;
  if (spec.options !== undefined && Object.keys(spec.options).length > 0)
    t.options = { ...spec.options };
  return t;
}

export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + '"';
}

export function tomlKey(k: string): string {
  return BARE_KEY.test(k) ? k : tomlString(k);
}

function tomlValue(v: unknown): string {
  if (typeof v === "string") return tomlString(v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  throw new Error(`cannot render ${typeof v} as a TOML value`);
}

/**
 * TOML text declaring runtimes under the CRI plugin of `version`: one table per runtime, with
 * its `options` as a sub-table, each line indented two spaces like containerd's own output.
 */
export function renderRuntimeTables(
  version: ConfigVersion,
  runtimes: Readonly<Record<string, TomlTable>>,
  plugin: CriRuntimePlugin = criRuntimePlugin(version),
): string {
  const prefix = `plugins.${tomlString(plugin.id)}.${plugin.runtimesPath.join(".")}`;
  const out: string[] = [];
  for (const [name, table] of Object.entries(runtimes)) {
    const header = `${prefix}.${tomlKey(name)}`;
    out.push(`[${header}]`);
    for (const [k, v] of Object.entries(table)) {
      if (k !== "options") out.push(`  ${tomlKey(k)} = ${tomlValue(v)}`);
    }
    const options = table.options as TomlTable | undefined;
    if (options !== undefined) {
      out.push(`[${header}.options]`);
      for (const [k, v] of Object.entries(options)) out.push(`  ${tomlKey(k)} = ${tomlValue(v)}`);
    }
  }
  return out.join("\n") + "\n";
}

/**
 * The runtime `name` in a parsed (or effective) config document, if declared, under the CRI
 * plugin `pluginDoc` (the effective config; by default `doc` itself) keeps its runtimes in.
 */
export function runtimeIn(
  doc: TomlTable,
  version: ConfigVersion,
  name: string,
  pluginDoc: TomlTable = doc,
): TomlTable | undefined {
  const plugin = criRuntimePlugin(version, pluginDoc);
  const runtimes = tableAt(doc, ["plugins", plugin.id, ...plugin.runtimesPath]);
  const t = runtimes?.[name];
  return isTable(t) ? t : undefined;
}

export function isTable(v: unknown): v is TomlTable {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** The table at `keys` below `doc`, or undefined when a key is missing or not a table. */
export function tableAt(doc: TomlTable, keys: readonly string[]): TomlTable | undefined {
  let t: unknown = doc;
  for (const k of keys) {
    if (!isTable(t)) return undefined;
    t = t[k];
  }
  return isTable(t) ? t : undefined;
}
