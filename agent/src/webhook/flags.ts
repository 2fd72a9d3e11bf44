/**
 * The parsed flags of `vnode-agent webhook` turned into server options: each value is already
 * typed and checked by the CLI (cli/flags.ts, from the contract's WEBHOOK_FLAGS); this joins them
 * with the pod's own namespace and checks the enforcement rules they make up.
 */
import {
  type LabelSelector,
  namespaceGuard,
  type NamespaceGuard,
  NamespaceGuardError,
  enforcementRules,
  type EnforcementRules,
  EnforcementRulesError,
  ISOLATION_MODES,
  type ListenAddress,
  POD_NAMESPACE_ENV,
  type WebhookFlagOptions,
} from "vnode-contract";
import * as z from "zod/mini";
import { badInput } from "../lib/errors";

export interface WebhookOptions {
  listen: ListenAddress;
  tlsCertFile: string;
  tlsKeyFile: string;
  rules: EnforcementRules;
  reloadIntervalMs: number;
  maxBodyBytes: number;
  shutdownDelayMs: number;
  /** The namespace label guard (and Pod Security labelling), with --tenant-selector. */
  namespaceGuard: NamespaceGuard | undefined;
}

const SelectorSchema = z.strictObject({
  matchLabels: z.optional(z.record(z.string(), z.string())),
  matchExpressions: z.optional(
    z.array(
      z.strictObject({
        key: z.string(),
        operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
        values: z.optional(z.array(z.string())),
      }),
    ),
  ),
});

/** `--tenant-selector`: a meta/v1 LabelSelector as JSON, as the component writes it. */
function tenantSelector(json: string): LabelSelector {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw badInput(
      `--tenant-selector must be a label selector as JSON; got ${JSON.stringify(json)} (${(err as Error).message}).`,
    );
  }
  const r = z.safeParse(SelectorSchema, value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw badInput(
      `--tenant-selector must be a label selector as JSON ({"matchLabels": {...}, "matchExpressions": [{"key", "operator": In|NotIn|Exists|DoesNotExist, "values"}]}): ${issue.path.map(String).join(".") || "the value"}: ${issue.message}.`,
    );
  }
  return r.data as LabelSelector;
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
  let guard: NamespaceGuard | undefined;
  if (f.tenantSelector === undefined) {
    if (f.platformGroup.length > 0 || f.podSecurityLevel !== undefined) {
      throw badInput(
        "--platform-group and --pod-security-level need --tenant-selector: the namespace routes judge namespaces by it.",
      );
    }
  } else {
    try {
      guard = namespaceGuard(
        {
          tenantSelector: tenantSelector(f.tenantSelector),
          platformGroups: f.platformGroup,
          podSecurityLevel: f.podSecurityLevel,
        },
        rules,
      );
    } catch (err) {
      if (!(err instanceof NamespaceGuardError)) throw err;
      const flag = { platformGroups: "--platform-group", podSecurityLevel: "--pod-security-level" }[
        err.field
      ];
      throw badInput(`${flag}: ${err.message}`);
    }
  }
  return {
    listen: f.listen,
    tlsCertFile: f.tlsCertFile,
    tlsKeyFile: f.tlsKeyFile,
    rules,
    reloadIntervalMs: f.certReloadInterval,
    maxBodyBytes: f.maxRequestBytes,
    shutdownDelayMs: f.shutdownDelay,
    namespaceGuard: guard,
  };
}
