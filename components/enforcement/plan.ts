/**
 * Tenancy enforcement with every default applied: which backend, which rules (classes per mode,
 * default mode, exclusions, from rules.ts), the tenant selector, failure policies, and for the
 * webhook backend its names and TLS source. Pure: the builders in webhook.ts, certManager.ts and
 * policy.ts turn it into Kubernetes objects.
 */
import {
  CertManagerArgs,
  EnforcementArgs,
  EnforcementBackend,
  EnforcementMode,
  FailurePolicy,
  IsolationMode,
  IssuerKind,
  LabelSelectorArgs,
  MutatingPolicyApiVersion,
} from "../args";
import {
  webhookCaName,
  webhookName,
  webhookSelfSignedName,
  webhookTlsName,
  policyName,
  namespaceGuardName,
  podSecurityPolicyName,
} from "../names";
import {
  enforcementRules,
  type EnforcementRules,
  EnforcementScope,
  type LabelSelector,
  namespaceGuard,
  type NamespaceGuard,
  scopeSelector,
} from "vnode-contract";

/** The defaults of `enforcement` and `certManager`; `DEFAULTS` in defaults.ts quotes them. */
export const ENFORCEMENT_DEFAULTS = {
  backend: EnforcementBackend.Webhook,
  /** Opt-in, as before `scope` existed: opt-out would enforce every unlabelled namespace at once. */
  scope: EnforcementScope.Selected,
  /** The guard is on: without it the tenant labels are a switch anyone with namespace update flips. */
  namespaceLabelGuard: { enabled: true },
  /** Validation fails closed (no pod admitted unchecked), mutation open (validation still judges). */
  failurePolicy: { mutate: FailurePolicy.Ignore, validate: FailurePolicy.Fail },
  mutatingPolicyApiVersion: MutatingPolicyApiVersion.V1,
  /** Two replicas and a PodDisruptionBudget of one: a drain or a rollout never stops admission. */
  webhookReplicas: 2,
  /** Short: the API server waits this long on every pod CREATE when a replica hangs. */
  webhookTimeoutSeconds: 5,
  /**
   * Measured with the bundle and these NODE_OPTIONS on Node 24 (`npm run bench:webhook`, plain
   * and `--hostile`, 2026-11-30): 102.2 MiB peak under legit load (c=16), 144.8-149.7 MiB peak
   * while 16 clients post crafted 3 MiB reviews (the one-3-MiB-string body; the million-empty-
   * objects one peaks at ~118 MiB, refused while it streams in). The review thread that keeps
   * large bodies off the event loop (agent/src/webhook/reviewWorker.ts) costs ~12 MiB of that.
   * The limit is set so that the attack peak stays under 60% of it: 150 / 0.6 = 250 MiB, so 320Mi
   * (47%, room for run-to-run spread); 256Mi would be 58%, 128Mi an OOM kill (then a fail-closed
   * validation outage). The request covers the legit peak, so node-pressure eviction (which goes
   * first for pods above their request) passes the webhook over in normal operation.
   */
  webhookResources: { requests: { cpu: "20m", memory: "112Mi" }, limits: { memory: "320Mi" } },
  /**
   * V8 heap caps of the webhook process (NODE_OPTIONS), well inside the memory limit: with them
   * V8 collects the garbage of large reviews before growing the heap, instead of sizing its heap
   * from the node's memory. `--expose-gc` lets the review thread collect each large review's
   * garbage at once (agent/src/webhook/reviewThread.ts says why). `npm run bench:webhook --
   * --hostile` runs the server with these.
   */
  webhookNodeOptions: "--max-old-space-size=48 --max-semi-space-size=2 --expose-gc",
  /**
   * Scheduled (and kept) ahead of tenant pods under node pressure: admission of every tenant
   * pod depends on it. Usable outside kube-system since Kubernetes 1.17.
   */
  webhookPriorityClassName: "system-cluster-critical",
  /** An unprivileged uid and gid for the webhook (it touches no host file). */
  webhookUser: 65532,
  certManager: {
    install: false,
    /** Where `certManager.install` puts cert-manager. */
    namespace: "cert-manager",
    issuerKind: IssuerKind.Issuer,
    issuerGroup: "cert-manager.io",
  },
} as const;

/** Where the webhook's serving certificate comes from. */
export type IssuerPlan =
  | {
      /** A self-signed Issuer signs a CA Certificate; a CA Issuer from it signs the serving one. */
      source: "self-signed";
      selfSignedIssuerName: string;
      /** Name of the CA Certificate, its Secret and the CA Issuer. */
      caName: string;
    }
  | { source: "issuer-ref"; name: string; kind: IssuerKind; group: string };

export interface WebhookPlan {
  /** Deployment, Service, ServiceAccount, PodDisruptionBudget and webhook configurations. */
  name: string;
  replicas: number;
  timeoutSeconds: number;
  /** The serving Certificate and the Secret cert-manager writes (`tls.crt`, `tls.key`, `ca.crt`). */
  tlsName: string;
  /** The names the API server may call the Service by: `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`. */
  dnsNames: string[];
  /** Install cert-manager, and its namespace (excluded from enforcement). */
  certManager: { install: boolean; namespace: string };
  issuer: IssuerPlan;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  user: number;
}

export interface EnforcementPlan {
  mode: EnforcementMode;
  mutate: boolean;
  validate: boolean;
  backend: EnforcementBackend;
  rules: EnforcementRules;
  scope: EnforcementScope;
  /** The tenant selector of the scope (the user's, or "not exempt"), as plain data for webhookRoutes.ts. */
  tenantSelector: LabelSelector;
  /** The namespace label guard with the Pod Security level, or undefined when disabled. */
  namespaceGuard: NamespaceGuard | undefined;
  /** The guard's policy and binding name, and the Pod Security mutation's (backend `admission-policy`). */
  namespaceGuardPolicyName: string;
  podSecurityPolicyName: string;
  failurePolicy: { mutate: FailurePolicy; validate: FailurePolicy };
  /** Policy and binding name (backend `admission-policy`). */
  policyName: string;
  mutatingPolicyApiVersion: MutatingPolicyApiVersion;
  /** Set with backend `webhook` only. */
  webhook: WebhookPlan | undefined;
}

/**
 * Applies the defaults to validated `enforcement` and `certManager` args. `classes` are the
 * RuntimeClasses the component creates, per mode; `isolationMode` (the component's) is the mode of
 * namespaces without an isolation label when it has a class, else the only mode there is.
 */
export function planEnforcement(
  name: string,
  enforcement: EnforcementArgs,
  certManager: CertManagerArgs | undefined,
  context: {
    namespace: string;
    isolationMode: IsolationMode;
    classes: readonly { isolationMode: IsolationMode; name: string }[];
  },
): EnforcementPlan {
  const backend = enforcement.backend ?? ENFORCEMENT_DEFAULTS.backend;
  const webhookBackend = backend === EnforcementBackend.Webhook;
  const install =
    webhookBackend && (certManager?.install ?? ENFORCEMENT_DEFAULTS.certManager.install);
  const classes: Partial<Record<IsolationMode, string>> = Object.fromEntries(
    context.classes.map((c) => [c.isolationMode, c.name]),
  );
  const defaultMode: IsolationMode =
    classes[context.isolationMode] !== undefined
      ? context.isolationMode
      : context.classes[0].isolationMode;
  const rules = enforcementRules({
    classes,
    defaultMode,
    // cert-manager's own pods must start before the webhook has a certificate.
    excludedNamespaces: [
      context.namespace,
      ...(install ? [ENFORCEMENT_DEFAULTS.certManager.namespace] : []),
    ],
  });
  const mode = enforcement.mode;
  const scope = enforcement.scope ?? ENFORCEMENT_DEFAULTS.scope;
  const tenantSelector = scopeSelector(scope, labelSelector(enforcement.namespaceSelector));
  const guarded =
    enforcement.namespaceLabelGuard?.enabled ?? ENFORCEMENT_DEFAULTS.namespaceLabelGuard.enabled;
  return {
    mode,
    mutate: mode !== EnforcementMode.Validate,
    validate: mode !== EnforcementMode.Mutate,
    backend,
    rules,
    scope,
    tenantSelector,
    namespaceGuard: guarded
      ? namespaceGuard(
          {
            tenantSelector,
            platformGroups: enforcement.namespaceLabelGuard?.platformGroups ?? [],
            podSecurityLevel: enforcement.podSecurityLevel,
          },
          rules,
        )
      : undefined,
    namespaceGuardPolicyName: namespaceGuardName(name),
    podSecurityPolicyName: podSecurityPolicyName(name),
    failurePolicy: {
      mutate: enforcement.mutateFailurePolicy ?? ENFORCEMENT_DEFAULTS.failurePolicy.mutate,
      validate: enforcement.validateFailurePolicy ?? ENFORCEMENT_DEFAULTS.failurePolicy.validate,
    },
    policyName: policyName(name),
    mutatingPolicyApiVersion:
      enforcement.mutatingPolicyApiVersion ?? ENFORCEMENT_DEFAULTS.mutatingPolicyApiVersion,
    webhook: webhookBackend
      ? planWebhook(name, context.namespace, install, certManager?.issuerRef)
      : undefined,
  };
}

function planWebhook(
  name: string,
  namespace: string,
  install: boolean,
  issuerRef: CertManagerArgs["issuerRef"],
): WebhookPlan {
  const service = webhookName(name);
  return {
    name: service,
    replicas: ENFORCEMENT_DEFAULTS.webhookReplicas,
    timeoutSeconds: ENFORCEMENT_DEFAULTS.webhookTimeoutSeconds,
    tlsName: webhookTlsName(name),
    dnsNames: [service, `${service}.${namespace}`, `${service}.${namespace}.svc`],
    certManager: { install, namespace: ENFORCEMENT_DEFAULTS.certManager.namespace },
    issuer:
      issuerRef === undefined
        ? {
            source: "self-signed",
            selfSignedIssuerName: webhookSelfSignedName(name),
            caName: webhookCaName(name),
          }
        : {
            source: "issuer-ref",
            name: issuerRef.name,
            kind: issuerRef.kind ?? ENFORCEMENT_DEFAULTS.certManager.issuerKind,
            group: issuerRef.group ?? ENFORCEMENT_DEFAULTS.certManager.issuerGroup,
          },
    resources: {
      requests: { ...ENFORCEMENT_DEFAULTS.webhookResources.requests },
      limits: { ...ENFORCEMENT_DEFAULTS.webhookResources.limits },
    },
    user: ENFORCEMENT_DEFAULTS.webhookUser,
  };
}

/** A copy of the user's selector without unset fields. */
function labelSelector(selector: LabelSelectorArgs | undefined): LabelSelector {
  if (selector === undefined) return {};
  return {
    ...(selector.matchLabels !== undefined ? { matchLabels: { ...selector.matchLabels } } : {}),
    ...(selector.matchExpressions !== undefined
      ? {
          matchExpressions: selector.matchExpressions.map((e) => ({
            key: e.key,
            operator: e.operator,
            ...(e.values !== undefined && e.values.length > 0 ? { values: [...e.values] } : {}),
          })),
        }
      : {}),
  };
}
