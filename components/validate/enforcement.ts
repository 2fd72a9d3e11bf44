/** `enforcement` and `certManager`: tenancy enforcement at admission and its TLS. */
import { checkPlatformGroups, ENFORCEMENT_EXEMPT_LABEL, NamespaceGuardError } from "vnode-contract";
import {
  EnforcementBackend,
  EnforcementMode,
  EnforcementScope,
  PodSecurityLevel,
  FailurePolicy,
  IssuerKind,
  MutatingPolicyApiVersion,
} from "../args";
import { webhookName } from "../names";
import { fail, show } from "./errors";
import { checkNamespaceSelector } from "./labels";
import { checkDnsSubdomain } from "./names";
import { checkBoolean, checkEnum, checkObject } from "./values";

export function checkEnforcement(name: string, enforcement: unknown, certManager: unknown): void {
  if (enforcement === undefined) {
    if (certManager !== undefined) {
      fail(
        "certManager only applies with enforcement (backend webhook), which gets its TLS certificate from cert-manager; enforcement is not set.",
      );
    }
    return;
  }
  if (
    typeof enforcement === "object" &&
    enforcement !== null &&
    (enforcement as Record<string, unknown>).failurePolicy !== undefined
  ) {
    fail(
      "enforcement.failurePolicy is replaced by enforcement.mutateFailurePolicy and enforcement.validateFailurePolicy (validation fails open only with acknowledgeValidationFailOpen: true); remove failurePolicy.",
    );
  }
  const e = checkObject("enforcement", enforcement, [
    "namespaceSelector",
    "mode",
    "mutateFailurePolicy",
    "validateFailurePolicy",
    "acknowledgeValidationFailOpen",
    "backend",
    "mutatingPolicyApiVersion",
    "scope",
    "namespaceLabelGuard",
    "podSecurityLevel",
  ]);
  const modes: string[] = Object.values(EnforcementMode);
  if (e.mode === undefined) {
    fail(`enforcement.mode is required: one of ${modes.join(", ")}.`);
  }
  checkEnum("enforcement.mode", e.mode, modes);
  checkEnum("enforcement.backend", e.backend, Object.values(EnforcementBackend));
  checkFailurePolicies(e);
  checkEnum(
    "enforcement.mutatingPolicyApiVersion",
    e.mutatingPolicyApiVersion,
    Object.values(MutatingPolicyApiVersion),
  );
  checkScope(e);
  checkNamespaceLabelGuard(e);
  const backend = (e.backend as EnforcementBackend | undefined) ?? EnforcementBackend.Webhook;
  if (e.mutatingPolicyApiVersion !== undefined) {
    if (backend !== EnforcementBackend.AdmissionPolicy) {
      fail(
        `enforcement.mutatingPolicyApiVersion only applies with enforcement.backend ${EnforcementBackend.AdmissionPolicy}; enforcement.backend is ${backend}.`,
      );
    }
    if (e.mode === EnforcementMode.Validate && e.podSecurityLevel === undefined) {
      fail(
        `enforcement.mutatingPolicyApiVersion only applies when enforcement.mode mutates (${EnforcementMode.Mutate} or ${EnforcementMode.MutateAndValidate}) or with enforcement.podSecurityLevel; enforcement.mode is ${EnforcementMode.Validate}.`,
      );
    }
  }
  if (backend === EnforcementBackend.Webhook) {
    // The Service name is a DNS-1035 label.
    const service = webhookName(name);
    if (service.length > 63) {
      fail(
        `name is too long for enforcement.backend webhook: the webhook Service name ${show(service)} has ${service.length} characters, at most 63 are allowed.`,
      );
    }
  }
  if (certManager === undefined) {
    return;
  }
  if (backend !== EnforcementBackend.Webhook) {
    fail(
      `certManager only applies with enforcement.backend ${EnforcementBackend.Webhook}; enforcement.backend is ${backend}, which needs no certificate.`,
    );
  }
  const c = checkObject("certManager", certManager, ["install", "issuerRef"]);
  checkBoolean("certManager.install", c.install);
  if (c.issuerRef !== undefined) {
    const ref = checkObject("certManager.issuerRef", c.issuerRef, ["name", "kind", "group"]);
    if (ref.name === undefined) {
      fail(
        'certManager.issuerRef.name is required: the name of the cert-manager Issuer (in the runtime namespace) or ClusterIssuer, e.g. "ca-issuer".',
      );
    }
    checkDnsSubdomain("certManager.issuerRef.name", ref.name);
    checkEnum("certManager.issuerRef.kind", ref.kind, Object.values(IssuerKind));
    checkDnsSubdomain("certManager.issuerRef.group", ref.group);
  }
}

/** `scope`: `selected` needs the tenant selector, `all-except-exempt` has its own. */
function checkScope(e: Record<string, unknown>): void {
  checkEnum("enforcement.scope", e.scope, Object.values(EnforcementScope));
  if (e.scope === EnforcementScope.AllExceptExempt) {
    if (e.namespaceSelector !== undefined) {
      fail(
        `enforcement.namespaceSelector does not apply with enforcement.scope ${EnforcementScope.AllExceptExempt}, which enforces every namespace not labelled ${ENFORCEMENT_EXEMPT_LABEL}=true (and the always excluded ones); remove namespaceSelector, or use scope ${EnforcementScope.Selected}.`,
      );
    }
    return;
  }
  checkNamespaceSelector("enforcement.namespaceSelector", e.namespaceSelector);
}

/**
 * `namespaceLabelGuard` and `podSecurityLevel`. The guard may only be switched off where nothing
 * depends on it: an exemption label or a Pod Security level that anyone could change is no
 * control at all.
 */
function checkNamespaceLabelGuard(e: Record<string, unknown>): void {
  checkEnum("enforcement.podSecurityLevel", e.podSecurityLevel, Object.values(PodSecurityLevel));
  if (e.namespaceLabelGuard === undefined) return;
  const g = checkObject("enforcement.namespaceLabelGuard", e.namespaceLabelGuard, [
    "enabled",
    "platformGroups",
  ]);
  checkBoolean("enforcement.namespaceLabelGuard.enabled", g.enabled);
  if (g.platformGroups !== undefined) {
    if (!Array.isArray(g.platformGroups)) {
      fail(
        `enforcement.namespaceLabelGuard.platformGroups must be a list of group names; got ${show(g.platformGroups)}.`,
      );
    }
    try {
      checkPlatformGroups(g.platformGroups);
    } catch (err) {
      if (!(err instanceof NamespaceGuardError)) throw err;
      fail(`enforcement.namespaceLabelGuard.platformGroups: ${err.message}`);
    }
  }
  if (g.enabled === false) {
    if (g.platformGroups !== undefined) {
      fail(
        "enforcement.namespaceLabelGuard.platformGroups only applies while the guard is enabled; enforcement.namespaceLabelGuard.enabled is false.",
      );
    }
    if (e.scope === EnforcementScope.AllExceptExempt) {
      fail(
        `enforcement.namespaceLabelGuard.enabled false is not allowed with enforcement.scope ${EnforcementScope.AllExceptExempt}: without the guard anyone who may update a namespace could label it ${ENFORCEMENT_EXEMPT_LABEL}=true and leave enforcement.`,
      );
    }
    if (e.podSecurityLevel !== undefined) {
      fail(
        "enforcement.namespaceLabelGuard.enabled false is not allowed with enforcement.podSecurityLevel: without the guard anyone who may update a namespace could lower its pod-security.kubernetes.io/enforce label.",
      );
    }
  }
}

/**
 * Mutation and validation fail separately. Validation failing open lets any pod through while the
 * enforcement is down, so `Ignore` there needs an explicit acknowledgement, and the
 * acknowledgement is refused where it acknowledges nothing.
 */
function checkFailurePolicies(e: Record<string, unknown>): void {
  const policies = Object.values(FailurePolicy);
  checkEnum("enforcement.mutateFailurePolicy", e.mutateFailurePolicy, policies);
  checkEnum("enforcement.validateFailurePolicy", e.validateFailurePolicy, policies);
  checkBoolean("enforcement.acknowledgeValidationFailOpen", e.acknowledgeValidationFailOpen);
  const failsOpen = e.validateFailurePolicy === FailurePolicy.Ignore;
  if (failsOpen && e.acknowledgeValidationFailOpen !== true) {
    fail(
      "enforcement.validateFailurePolicy Ignore admits every pod unchecked (any RuntimeClass, runc included) while the enforcement cannot answer; set enforcement.acknowledgeValidationFailOpen: true to accept that hole, or use Fail (the default).",
    );
  }
  if (!failsOpen && e.acknowledgeValidationFailOpen === true) {
    fail(
      `enforcement.acknowledgeValidationFailOpen only applies with enforcement.validateFailurePolicy Ignore; enforcement.validateFailurePolicy is ${(e.validateFailurePolicy as string | undefined) ?? "Fail (the default)"}.`,
    );
  }
  if (e.mode === EnforcementMode.Mutate && e.validateFailurePolicy !== undefined) {
    fail(
      `enforcement.validateFailurePolicy only applies when enforcement.mode validates (${EnforcementMode.Validate} or ${EnforcementMode.MutateAndValidate}); enforcement.mode is ${EnforcementMode.Mutate}.`,
    );
  }
  if (e.mode === EnforcementMode.Validate && e.mutateFailurePolicy !== undefined) {
    fail(
      `enforcement.mutateFailurePolicy only applies when enforcement.mode mutates (${EnforcementMode.Mutate} or ${EnforcementMode.MutateAndValidate}); enforcement.mode is ${EnforcementMode.Validate}.`,
    );
  }
}
