/**
 * The agent's command line as one typed description: which flags `vnode-agent run`, `webhook`
 * and the installer commands take, the kind of value each takes, its choices and default. The
 * agent builds its commander program from it (agent/src/cli/flags.ts); the component writes the
 * DaemonSet's and the webhook Deployment's args with `agentArgv`, so a flag renamed here is
 * renamed on both sides, and test/component/agentCommandLines.test.ts parses every rendered
 * command line with the agent's real parser.
 */
import {
  AGENT_DEFAULTS,
  AGENT_HTTP,
  AGENT_IMAGE,
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
  RESTART_STRATEGIES,
} from "./agent";
import { CONTAINERD_DISTRIBUTIONS, type ContainerdDistribution } from "./distributions";
import { VNODE_CNI_CONF_DIR } from "./runtime";
import { ISOLATION_MODES, type IsolationMode } from "./modes";
import { ALWAYS_EXCLUDED_NAMESPACES, WEBHOOK_HTTPS } from "./webhook";
import {
  ALWAYS_PLATFORM_GROUPS,
  NAMESPACE_WEBHOOK_PATHS,
  POD_SECURITY_LEVELS,
  type PodSecurityLevel,
} from "./enforcement/namespaceGuard";

/** A listen address: `:PORT` (every interface), `HOST:PORT` or `[IPV6]:PORT`. */
export interface ListenAddress {
  /** Undefined listens on every interface (IPv6 and IPv4 where the host has both). */
  host: string | undefined;
  port: number;
}

/** What a flag's value is on the command line, and what it becomes once parsed. */
export type FlagSpec =
  /** One non-blank word or path. */
  | { kind: "string"; arg: string; help: string; default?: string; required?: true }
  /** One of `choices`. */
  | { kind: "choice"; arg: string; help: string; choices: readonly string[]; default?: string }
  /** A whole number >= `min`. */
  | { kind: "int"; arg: string; help: string; min: number; default?: number }
  /** A Go-style duration (`500ms`, `30s`, `1m30s`) >= `minMs`, parsed to milliseconds. */
  | { kind: "duration"; arg: string; help: string; minMs: number; default?: number }
  /** Comma-separated, at least one non-blank item: a string array. */
  | { kind: "list"; arg: string; help: string }
  /** `:PORT`, `HOST:PORT` or `[IPV6]:PORT`: a ListenAddress. */
  | { kind: "address"; arg: string; help: string; default: ListenAddress }
  /** Repeatable, one value each time: a string array, empty by default. */
  | { kind: "repeated"; arg: string; help: string }
  /** Repeatable `KEY=VALUE` with KEY one of `keys`, each at most once: a record. */
  | { kind: "keyed"; arg: string; help: string; keys: readonly string[] }
  /** Present or not: a boolean, false by default. */
  | { kind: "switch"; help: string };

export type FlagKind = FlagSpec["kind"];
export type FlagSet = Readonly<Record<string, FlagSpec>>;

/** The parsed value of one flag. */
export type FlagValue<S extends FlagSpec> = S extends { kind: "string" }
  ? string
  : S extends { kind: "choice"; choices: readonly (infer C)[] }
    ? C
    : S extends { kind: "int" | "duration" }
      ? number
      : S extends { kind: "list" | "repeated" }
        ? string[]
        : S extends { kind: "address" }
          ? ListenAddress
          : S extends { kind: "keyed"; keys: readonly (infer K extends string)[] }
            ? Partial<Record<K, string>>
            : S extends { kind: "switch" }
              ? boolean
              : never;

/** Flags that always have a value once parsed: a default, `required`, or a kind with an empty value. */
type Present<S extends FlagSpec> = S extends { default: unknown }
  ? true
  : S extends { required: true }
    ? true
    : S extends { kind: "repeated" | "keyed" | "switch" }
      ? true
      : false;

/** What the agent's parser hands its commands: every flag of `D` typed, defaults filled in. */
export type FlagValues<D extends FlagSet> = {
  -readonly [K in keyof D as Present<D[K]> extends true ? K : never]: FlagValue<D[K]>;
} & {
  -readonly [K in keyof D as Present<D[K]> extends true ? never : K]?: FlagValue<D[K]>;
};

/** What a writer of a command line gives: required flags, and any other it wants explicit. */
export type FlagArgs<D extends FlagSet> = {
  [K in keyof D as D[K] extends { required: true } ? K : never]: FlagValue<D[K]>;
} & {
  [K in keyof D as D[K] extends { required: true } ? never : K]?: FlagValue<D[K]>;
};

/** `hostRoot` → `--host-root`: the flag of an option key, as commander derives keys from flags. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * The flags of every command that touches the host (preflight, plan, install, uninstall,
 * status, run). `containerdDistribution` and `restart` take the contract's lists.
 */
export const INSTALLER_FLAGS = {
  hostRoot: {
    kind: "string",
    arg: "dir",
    help: "where the host's filesystem is mounted",
    default: AGENT_DEFAULTS.hostRoot,
  },
  containerdConfig: {
    kind: "string",
    arg: "path",
    help: "containerd config (host path); default: auto-detect",
  },
  containerdSocket: {
    kind: "string",
    arg: "path",
    help: "containerd CRI socket (host path); default: per layout",
  },
  containerdDistribution: {
    kind: "choice",
    arg: "name",
    help: "containerd layout",
    choices: ["auto", ...(Object.keys(CONTAINERD_DISTRIBUTIONS) as ContainerdDistribution[])],
    default: "auto",
  },
  handler: {
    kind: "string",
    arg: "name",
    help: "runtime handler name (RuntimeClass handler)",
    default: AGENT_DEFAULTS.handler,
  },
  runtimeType: {
    kind: "string",
    arg: "type",
    help: "containerd shim runtime type",
    default: AGENT_DEFAULTS.runtimeType,
  },
  runtimePath: {
    kind: "string",
    arg: "path",
    help: "shim binary path when not on containerd's PATH",
  },
  podAnnotations: {
    kind: "list",
    arg: "list",
    help: "comma-separated pod annotations passed to the runtime",
  },
  payloadDir: {
    kind: "string",
    arg: "dir",
    help: `files to install (default ${AGENT_IMAGE.payloadDir} if present)`,
  },
  installDir: {
    kind: "string",
    arg: "dir",
    help: "host dir for the payload",
    default: AGENT_DEFAULTS.installDir,
  },
  cniConfDir: {
    kind: "string",
    arg: "dir",
    help: "host dir of the vNode handler's CNI config (containerd's per-runtime cni_conf_dir)",
    default: VNODE_CNI_CONF_DIR,
  },
  stateDir: {
    kind: "string",
    arg: "dir",
    help: "host dir for the ledger and lock",
    default: AGENT_DEFAULTS.stateDir,
  },
  restart: {
    kind: "choice",
    arg: "strategy",
    help: "how to restart containerd",
    choices: RESTART_STRATEGIES,
    default: "systemd",
  },
  restartCommand: { kind: "string", arg: "cmd", help: "shell command for --restart command" },
  restartUnit: {
    kind: "string",
    arg: "unit",
    help: "systemd unit for --restart systemd (default per layout)",
  },
  verify: {
    kind: "choice",
    arg: "how",
    help: "how to verify the handler",
    choices: ["cri", "none"],
    default: "cri",
  },
  skipPreflight: {
    kind: "string",
    arg: "checks",
    help: "comma-separated checks to skip, or all",
  },
  minContainerd: {
    kind: "string",
    arg: "version",
    help: "lowest containerd version accepted",
    default: "1.7",
  },
} as const satisfies FlagSet;

/** `plan` and `status` print a JSON document instead of text with `--json`. */
export const OUTPUT_FLAGS = {
  json: { kind: "switch", help: "machine-readable output" },
} as const satisfies FlagSet;

/**
 * The daemon's own flags (`vnode-agent run`), after the installer's. The order is the order the
 * component writes them in: it is part of the DaemonSet's pod template, so reordering rolls every
 * node.
 */
export const DAEMON_FLAGS = {
  listen: {
    kind: "address",
    arg: "addr",
    help: "HTTP address for /healthz, /readyz, /metrics",
    default: { host: undefined, port: AGENT_HTTP.port },
  },
  interval: {
    kind: "duration",
    arg: "duration",
    help: "time between reconcile passes",
    minMs: 100,
    default: 30_000,
  },
  runtimeClasses: {
    kind: "list",
    arg: "list",
    help: "comma-separated RuntimeClasses using the handler (default: <handler> and <handler>-*)",
  },
  daemonset: {
    kind: "string",
    arg: "name",
    help: "the agent's DaemonSet, to tell a rolling update from a removal",
  },
  namespace: {
    kind: "string",
    arg: "ns",
    help: `the DaemonSet's namespace (default: $${POD_NAMESPACE_ENV})`,
  },
  managerCommand: {
    kind: "string",
    arg: "cmd",
    help: "the runtime's manager process to supervise (sh -c)",
  },
  managerSocket: {
    kind: "string",
    arg: "path",
    help: "the vNode manager's unix socket (host path): /readyz fails until a connect to it succeeds",
  },
  managerContainer: {
    kind: "string",
    arg: "name",
    help: `the manager's container in the agent's own pod ($${POD_NAME_ENV}): its restarts are counted and reported`,
  },
  forceUninstall: {
    kind: "switch",
    help: "uninstall on removal even while vNode pods run on the node",
  },
  maxRestarts: {
    kind: "int",
    arg: "n",
    help: "containerd restarts allowed per --restart-window",
    min: 0,
    default: 3,
  },
  restartWindow: {
    kind: "duration",
    arg: "duration",
    help: "window of --max-restarts",
    minMs: 1000,
    default: 600_000,
  },
  uninstallPodWait: {
    kind: "duration",
    arg: "duration",
    help: "on removal, how long to wait for vNode pods to go before refusing",
    minMs: 0,
    default: 30_000,
  },
  kubeApiServer: {
    kind: "string",
    arg: "url",
    help: "API server URL instead of the in-cluster config",
  },
  kubeTokenFile: {
    kind: "string",
    arg: "path",
    help: "bearer token file for --kube-api-server",
  },
} as const satisfies FlagSet;

/** `vnode-agent run`: the DaemonSet's command. */
export const RUN_FLAGS = { ...INSTALLER_FLAGS, ...DAEMON_FLAGS } as const satisfies FlagSet;

/** `vnode-agent webhook`: the enforcement Deployment's command. */
export const WEBHOOK_FLAGS = {
  listen: {
    kind: "address",
    arg: "addr",
    help: "HTTPS address, :PORT or HOST:PORT",
    default: { host: undefined, port: WEBHOOK_HTTPS.port },
  },
  tlsCertFile: {
    kind: "string",
    arg: "file",
    help: "PEM certificate (chain) served; re-read on change",
    required: true,
  },
  tlsKeyFile: {
    kind: "string",
    arg: "file",
    help: "PEM private key of the certificate; re-read on change",
    required: true,
  },
  class: {
    kind: "keyed",
    arg: "mode=name",
    help: `RuntimeClass of a mode (${ISOLATION_MODES.join(", ")}); repeat per mode, at least one`,
    keys: ISOLATION_MODES as readonly IsolationMode[],
  },
  defaultMode: {
    kind: "choice",
    arg: "mode",
    help: "mode of /mutate and of namespaces without the isolation label (default: the only mode, else per-namespace)",
    choices: ISOLATION_MODES as readonly IsolationMode[],
  },
  excludeNamespace: {
    kind: "repeated",
    arg: "name",
    help: `namespace never judged, repeatable; ${ALWAYS_EXCLUDED_NAMESPACES.join(", ")} and $${POD_NAMESPACE_ENV} always are`,
  },
  certReloadInterval: {
    kind: "duration",
    arg: "duration",
    help: "how often the certificate files are checked for a rotation",
    minMs: 100,
    default: 5000,
  },
  maxRequestBytes: {
    kind: "int",
    arg: "n",
    help: "largest AdmissionReview body accepted (larger: 413)",
    min: 1024,
    default: 3 * 1024 * 1024,
  },
  shutdownDelay: {
    kind: "duration",
    arg: "duration",
    help: "on SIGTERM, how long /readyz fails before the server stops, so the Service drains first",
    minMs: 0,
    default: 5000,
  },
  tenantSelector: {
    kind: "string",
    arg: "json",
    help: `label selector of the tenant namespaces (JSON, without the exclusions); serves ${NAMESPACE_WEBHOOK_PATHS.guard}, the namespace label guard`,
  },
  platformGroup: {
    kind: "repeated",
    arg: "group",
    help: `group whose members may change the guarded namespace labels, repeatable; ${ALWAYS_PLATFORM_GROUPS.join(", ")} always may`,
  },
  podSecurityLevel: {
    kind: "choice",
    arg: "level",
    help: `Pod Security level ${NAMESPACE_WEBHOOK_PATHS.podSecurity} sets on enforced namespaces (needs --tenant-selector)`,
    choices: POD_SECURITY_LEVELS as readonly PodSecurityLevel[],
  },
} as const satisfies FlagSet;

/** Every command of `vnode-agent` and its flags, in help order. */
export const AGENT_COMMANDS = {
  preflight: INSTALLER_FLAGS,
  plan: { ...INSTALLER_FLAGS, ...OUTPUT_FLAGS },
  install: INSTALLER_FLAGS,
  uninstall: INSTALLER_FLAGS,
  status: { ...INSTALLER_FLAGS, ...OUTPUT_FLAGS },
  run: RUN_FLAGS,
  webhook: WEBHOOK_FLAGS,
} as const satisfies Record<string, FlagSet>;
export type AgentCommand = keyof typeof AGENT_COMMANDS;

/** The parsed options of one command. */
export type RunOptions = FlagValues<typeof RUN_FLAGS>;
export type WebhookFlagOptions = FlagValues<typeof WEBHOOK_FLAGS>;
export type InstallerFlagOptions = FlagValues<typeof INSTALLER_FLAGS>;

/** `1500` → `1.5s`, `600000` → `10m`: the shortest duration text the agent parses back exactly. */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${Number((ms / 1000).toFixed(3))}s`;
  return `${ms}ms`;
}

/** `{ port: 8090 }` → `:8090`; IPv6 hosts in brackets. */
export function formatListen(address: ListenAddress): string {
  const host = address.host ?? "";
  return `${host.includes(":") ? `[${host}]` : host}:${address.port}`;
}

/** The command-line words of one value, without the flag; `[]` for a switch that is off. */
function formatValue(key: string, spec: FlagSpec, value: unknown): string[][] {
  const fail = (why: string) =>
    new Error(
      `${flagName(key)}: cannot write ${JSON.stringify(value)} on a command line (${why}).`,
    );
  switch (spec.kind) {
    case "switch":
      return value === true ? [[]] : [];
    case "int":
    case "duration":
      if (!Number.isSafeInteger(value) || (value as number) < 0) throw fail("not a whole number");
      return [[spec.kind === "int" ? String(value) : formatDuration(value as number)]];
    case "address":
      return [[formatListen(value as ListenAddress)]];
    case "list": {
      const items = value as readonly string[];
      if (items.length === 0 || items.some((i) => i.trim() === "" || i.includes(","))) {
        throw fail("a list needs at least one item, none blank or with a comma");
      }
      return [[items.join(",")]];
    }
    case "repeated":
      return (value as readonly string[]).map((v) => [v]);
    case "keyed": {
      const record = value as Readonly<Record<string, string | undefined>>;
      const unknown = Object.keys(record).filter((k) => !spec.keys.includes(k));
      if (unknown.length > 0) throw fail(`keys must be among ${spec.keys.join(", ")}`);
      // In the order of `keys`, so the same record always writes the same words.
      return spec.keys.filter((k) => record[k] !== undefined).map((k) => [`${k}=${record[k]}`]);
    }
    case "choice":
      if (!spec.choices.includes(value as string)) {
        throw fail(`must be one of ${spec.choices.join(", ")}`);
      }
      return [[value as string]];
    case "string":
      if (typeof value !== "string" || value.trim() === "") throw fail("blank");
      return [[value]];
  }
}

/**
 * The argv of `vnode-agent <command>` for typed options: `["run", "--handler", "vnode", ...]`.
 * Flags come in the description's order; unset (undefined) options are left to the agent's
 * defaults, and a value that would not parse back is an error here rather than on every node.
 */
export function agentArgv<C extends AgentCommand>(
  command: C,
  options: FlagArgs<(typeof AGENT_COMMANDS)[C]>,
): string[] {
  const flags: FlagSet = AGENT_COMMANDS[command];
  const given = options as Readonly<Record<string, unknown>>;
  const unknown = Object.keys(given).filter((k) => !(k in flags));
  if (unknown.length > 0) {
    throw new Error(`vnode-agent ${command} has no option ${unknown.join(", ")}.`);
  }
  const argv: string[] = [command];
  for (const [key, spec] of Object.entries(flags)) {
    if (given[key] === undefined) continue;
    for (const words of formatValue(key, spec, given[key])) argv.push(flagName(key), ...words);
  }
  return argv;
}
