/**
 * The parsed flags of `vnode-agent webhook` turned into server options: each value is already
 * typed and checked by the CLI (cli/flags.ts, from the contract's WEBHOOK_FLAGS); this joins them
 * with the pod's own namespace and checks the enforcement rules they make up.
 */
import {
  enforcementRules,
  type EnforcementRules,
  EnforcementRulesError,
  ISOLATION_MODES,
  type ListenAddress,
  POD_NAMESPACE_ENV,
  type WebhookFlagOptions,
} from "vnode-contract";
import { badInput } from "../lib/errors";

export interface WebhookOptions {
  listen: ListenAddress;
  tlsCertFile: string;
  tlsKeyFile: string;
  rules: EnforcementRules;
  reloadIntervalMs: number;
  maxBodyBytes: number;
  shutdownDelayMs: number;
}

export function webhookOptions(
  f: WebhookFlagOptions,
  env: Readonly<Record<string, string | undefined>> = process.env,
): WebhookOptions {
  if (Object.keys(f.class).length === 0) {
    throw badInput(
      `--class is required: give MODE=RUNTIMECLASS for at least one mode of ${ISOLATION_MODES.join(", ")}, e.g. --class per-namespace=vnode.`,
    );
  }
  const own = env[POD_NAMESPACE_ENV]?.trim();
  let rules: EnforcementRules;
  try {
    rules = enforcementRules({
      classes: f.class,
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
  return {
    listen: f.listen,
    tlsCertFile: f.tlsCertFile,
    tlsKeyFile: f.tlsKeyFile,
    rules,
    reloadIntervalMs: f.certReloadInterval,
    maxBodyBytes: f.maxRequestBytes,
    shutdownDelayMs: f.shutdownDelay,
  };
}
