/**
 * The flags of `vnode-agent webhook` and their translation into server options. Light on
 * purpose (commander and pure modules only): main.ts imports it eagerly for `--help`, the server
 * loads when the command runs.
 */
import { type Command, Option } from "commander";
import {
  enforcementRules,
  type EnforcementRules,
  EnforcementRulesError,
  isIsolationMode,
  ISOLATION_MODES,
  type IsolationMode,
  POD_NAMESPACE_ENV,
  WEBHOOK_HTTPS,
} from "vnode-contract";
import { parseDuration } from "../lib/duration";
import { badInput } from "../lib/errors";
import { type ListenAddress, parseListen } from "../daemon/health";

/** The flags as commander hands them over. */
export interface WebhookFlags {
  listen: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  class: string[];
  defaultMode?: string;
  excludeNamespace: string[];
  certReloadInterval: string;
  maxRequestBytes: string;
  shutdownDelay: string;
}

export const WEBHOOK_FLAG_DEFAULTS = {
  listen: `:${WEBHOOK_HTTPS.port}`,
  certReloadInterval: "5s",
  maxRequestBytes: String(3 * 1024 * 1024),
  shutdownDelay: "5s",
} as const;

const collect = (value: string, previous: string[]) => [...previous, value];

export function withWebhookFlags(cmd: Command): Command {
  return cmd
    .option("--listen <addr>", "HTTPS address, :PORT or HOST:PORT", WEBHOOK_FLAG_DEFAULTS.listen)
    .requiredOption("--tls-cert-file <file>", "PEM certificate (chain) served; re-read on change")
    .requiredOption(
      "--tls-key-file <file>",
      "PEM private key of the certificate; re-read on change",
    )
    .option(
      "--class <mode=name>",
      `RuntimeClass of a mode (${ISOLATION_MODES.join(", ")}); repeat per mode, at least one`,
      collect,
      [],
    )
    .addOption(
      new Option(
        "--default-mode <mode>",
        "mode of /mutate and of namespaces without the isolation label (default: the only mode, else per-namespace)",
      ).choices([...ISOLATION_MODES]),
    )
    .option(
      "--exclude-namespace <name>",
      `namespace never judged, repeatable; kube-system, kube-node-lease and $${POD_NAMESPACE_ENV} always are`,
      collect,
      [],
    )
    .option(
      "--cert-reload-interval <duration>",
      "how often the certificate files are checked for a rotation",
      WEBHOOK_FLAG_DEFAULTS.certReloadInterval,
    )
    .option(
      "--max-request-bytes <n>",
      "largest AdmissionReview body accepted (larger: 413)",
      WEBHOOK_FLAG_DEFAULTS.maxRequestBytes,
    )
    .option(
      "--shutdown-delay <duration>",
      "on SIGTERM, how long /readyz fails before the server stops, so the Service drains first",
      WEBHOOK_FLAG_DEFAULTS.shutdownDelay,
    );
}

export interface WebhookOptions {
  listen: ListenAddress;
  tlsCertFile: string;
  tlsKeyFile: string;
  rules: EnforcementRules;
  reloadIntervalMs: number;
  maxBodyBytes: number;
  shutdownDelayMs: number;
}

/** Parses `--class per-pod=vnode-per-pod` values into classes per mode. */
export function parseClasses(values: readonly string[]): Partial<Record<IsolationMode, string>> {
  if (values.length === 0) {
    throw badInput(
      `--class is required: give MODE=RUNTIMECLASS for at least one mode of ${ISOLATION_MODES.join(", ")}, e.g. --class per-namespace=vnode.`,
    );
  }
  const classes: Partial<Record<IsolationMode, string>> = {};
  for (const value of values) {
    const m = value.match(/^([^=]*)=(.*)$/);
    if (!m) {
      throw badInput(`--class must be MODE=RUNTIMECLASS; got ${JSON.stringify(value)}.`);
    }
    const [, mode, cls] = m;
    if (!isIsolationMode(mode)) {
      throw badInput(
        `--class mode must be one of ${ISOLATION_MODES.join(", ")}; got ${JSON.stringify(mode)} in ${JSON.stringify(value)}.`,
      );
    }
    if (classes[mode] !== undefined) {
      throw badInput(
        `--class ${mode} is given twice (${classes[mode]} and ${cls}); give one RuntimeClass per mode.`,
      );
    }
    classes[mode] = cls;
  }
  return classes;
}

export function webhookOptions(
  f: WebhookFlags,
  env: Readonly<Record<string, string | undefined>> = process.env,
): WebhookOptions {
  const own = env[POD_NAMESPACE_ENV]?.trim();
  let rules: EnforcementRules;
  try {
    rules = enforcementRules({
      classes: parseClasses(f.class),
      defaultMode: f.defaultMode,
      excludedNamespaces: [...f.excludeNamespace, ...(own ? [own] : [])],
    });
  } catch (err) {
    if (!(err instanceof EnforcementRulesError)) throw err;
    const flag = {
      classes: "--class",
      defaultMode: "--default-mode",
      excludedNamespaces: `--exclude-namespace (or ${POD_NAMESPACE_ENV})`,
    }[err.field];
    throw badInput(`${flag}: ${err.message}`);
  }
  const maxBodyBytes = Number(f.maxRequestBytes);
  if (!/^\d+$/.test(f.maxRequestBytes.trim()) || maxBodyBytes < 1024) {
    throw badInput(
      `--max-request-bytes must be an integer of at least 1024; got ${JSON.stringify(f.maxRequestBytes)}.`,
    );
  }
  return {
    listen: parseListen(f.listen),
    tlsCertFile: f.tlsCertFile,
    tlsKeyFile: f.tlsKeyFile,
    rules,
    reloadIntervalMs: parseDuration("--cert-reload-interval", f.certReloadInterval, 100),
    maxBodyBytes,
    shutdownDelayMs: parseDuration("--shutdown-delay", f.shutdownDelay),
  };
}
