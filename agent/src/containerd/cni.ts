/**
 * The vNode handler's CNI configuration: the host's active network list with `vnode-cni`
 * appended, in a directory of its own that containerd uses for the handler only. Pure: config
 * documents and file texts in, settings and file text out.
 *
 * What containerd does with it (containerd 1.6.x, 1.7 and 2.x, `pkg/cri` / `internal/cri`):
 * - `Runtime.NetworkPluginConfDir` (`cni_conf_dir`) and `NetworkPluginMaxConfNum`
 *   (`cni_max_conf_num`, 0 = the global `max_conf_num`): `initPlatform` builds one CNI plugin
 *   per runtime that sets a conf dir, and `setupPodNetwork` picks it by the sandbox's runtime
 *   handler (`getNetworkPlugin`), falling back to the global one. Other handlers are untouched.
 * - a `cniNetConfSyncer` (fsnotify) per conf dir reloads the dir when a file in it changes, so a
 *   rewritten conflist takes effect without a containerd restart.
 * - go-cni loads the files of a dir with the extensions `.conf`, `.conflist`, `.json`, sorted by
 *   name, up to `max_conf_num` (default 1): the first file is the host's active network. A
 *   `.conf` (one plugin) becomes a list of that one plugin. A loopback network is added by
 *   containerd itself.
 * - plugins of a list run in order, each getting the previous result (`prevResult`), so
 *   `vnode-cni` runs after the host's plugins, as vNode's architecture page requires.
 *
 * The chained list keeps the host network's `name`: IPAM plugins (host-local keeps its leases
 * under `/var/lib/cni/networks/<name>`) then share one address pool between vNode pods and the
 * rest, instead of handing out the same addresses twice.
 */
import * as path from "node:path";
import type { TomlTable } from "smol-toml";
import { CNI_HOST_DEFAULTS, PAYLOAD_ROLES } from "vnode-contract";
import {
  ConfigError,
  type ConfigVersion,
  criRuntimePlugin,
  isTable,
  tableAt,
} from "./config/config";

/** The CNI settings of containerd's CRI plugin, with containerd's defaults. */
export interface CniSettings {
  confDir: string;
  /** Where plugin binaries are looked up (`bin_dir`, or 2.1+'s `bin_dirs`); the first is ours. */
  binDirs: string[];
  maxConfNum: number;
}

export const CNI_DEFAULTS: CniSettings = {
  confDir: CNI_HOST_DEFAULTS.confDir,
  binDirs: [CNI_HOST_DEFAULTS.binDir],
  maxConfNum: 1,
};

/** The CNI settings in an effective containerd config (the CRI plugin's `cni` table). */
export function cniSettings(doc: TomlTable, version: ConfigVersion): CniSettings {
  const cni = tableAt(doc, ["plugins", criRuntimePlugin(version).id, "cni"]) ?? {};
  const str = (v: unknown): string | undefined =>
    typeof v === "string" && v.trim() !== "" ? v : undefined;
  const binDirs = Array.isArray(cni.bin_dirs)
    ? cni.bin_dirs.filter((d): d is string => typeof d === "string" && d !== "")
    : [];
  const bin = str(cni.bin_dir);
  const max = Number(cni.max_conf_num);
  return {
    confDir: str(cni.conf_dir) ?? CNI_DEFAULTS.confDir,
    binDirs: binDirs.length > 0 ? binDirs : bin ? [bin] : CNI_DEFAULTS.binDirs,
    maxConfNum: Number.isInteger(max) && max >= 0 && cni.max_conf_num !== undefined ? max : 1,
  };
}

const CNI_EXTENSIONS = [".conf", ".conflist", ".json"];

/** The file go-cni loads first from a conf dir (the host's active network), or null. */
export function activeConfFile(names: readonly string[]): string | null {
  const candidates = names.filter((n) => CNI_EXTENSIONS.includes(path.extname(n))).sort();
  return candidates[0] ?? null;
}

/** The name of the conflist the agent writes in the handler's conf dir. */
export const VNODE_CONFLIST = "10-vnode.conflist";

/**
 * The chained network list: the host's `file` (a `.conflist`, or a single-plugin `.conf` /
 * `.json`) with `vnode-cni` appended, as the text the agent writes. Throws a ConfigError naming
 * the file when it is not a network configuration CNI would load.
 */
export function chainedConfList(file: string, text: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      file,
      `${file} is the host's active CNI configuration but is not valid JSON (${(err as Error).message}); the vNode handler's network chain is built from it.`,
    );
  }
  if (!isTable(doc as TomlTable)) {
    throw new ConfigError(file, `${file} must hold a JSON object (a CNI network configuration).`);
  }
  const conf = doc as Record<string, unknown>;
  let list: Record<string, unknown>;
  if (file.endsWith(".conflist")) {
    if (!Array.isArray(conf.plugins) || conf.plugins.length === 0) {
      throw new ConfigError(
        file,
        `${file} is a CNI network list without plugins; CNI would not load it, so no vNode chain can be built from it.`,
      );
    }
    list = { ...conf, plugins: [...(conf.plugins as unknown[])] };
  } else {
    if (typeof conf.type !== "string" || conf.type === "") {
      throw new ConfigError(file, `${file} is a CNI network configuration without a "type".`);
    }
    const { cniVersion, name, ...plugin } = conf;
    list = { cniVersion, name, plugins: [plugin] };
  }
  const plugins = list.plugins as Record<string, unknown>[];
  if (!plugins.some((p) => isTable(p as TomlTable) && p.type === PAYLOAD_ROLES.cni)) {
    plugins.push({ type: PAYLOAD_ROLES.cni });
  }
  return `${JSON.stringify(list, null, 2)}\n`;
}
