/**
 * Names of the Kubernetes objects the component creates. Validation and the builders share these,
 * so a name is checked exactly as it will be used.
 */
import { IsolationMode } from "./args";

/** The pool the component creates when `pools` is not set. */
export const DEFAULT_POOL = "default";

/** ServiceAccount, ClusterRole(Binding), Role(Binding) and PodMonitor of a component named `name`. */
export function agentName(name: string): string {
  return `${name}-agent`;
}

/**
 * The DaemonSet of a pool. Without `pools` there is one DaemonSet named `<name>-agent`; with pools
 * each is `<name>-agent-<pool>`. The agent gets this name through `--daemonset`.
 */
export function daemonSetName(name: string, pool: string | undefined): string {
  return pool === undefined ? agentName(name) : `${agentName(name)}-${pool}`;
}

/** The Secret holding env values only known at deploy time (possibly Pulumi secrets). */
export function envSecretName(name: string): string {
  return `${agentName(name)}-env`;
}

/**
 * RuntimeClass name per mode in use: the per-namespace class is `runtimeClassName`; the per-pod
 * class is `perPodRuntimeClassName`, else `<runtimeClassName>-per-pod` when both modes are in use,
 * else `runtimeClassName` (a single per-pod cluster keeps the familiar `runtimeClassName: vnode`).
 */
export function runtimeClassNames(
  runtimeClassName: string,
  perPodRuntimeClassName: string | undefined,
  modes: readonly IsolationMode[],
): Partial<Record<IsolationMode, string>> {
  const both = modes.includes(IsolationMode.PerNamespace) && modes.includes(IsolationMode.PerPod);
  const names: Partial<Record<IsolationMode, string>> = {};
  if (modes.includes(IsolationMode.PerNamespace)) {
    names[IsolationMode.PerNamespace] = runtimeClassName;
  }
  if (modes.includes(IsolationMode.PerPod)) {
    names[IsolationMode.PerPod] =
      perPodRuntimeClassName ?? (both ? `${runtimeClassName}-per-pod` : runtimeClassName);
  }
  return names;
}

/**
 * The enforcement webhook's Deployment, Service, ServiceAccount, PodDisruptionBudget and
 * Mutating/ValidatingWebhookConfigurations. The Service name is a DNS-1035 label: at most 63.
 */
export function webhookName(name: string): string {
  return `${name}-webhook`;
}

/** The serving Certificate of the webhook and the Secret cert-manager writes it to. */
export function webhookTlsName(name: string): string {
  return `${webhookName(name)}-tls`;
}

/** The self-signed CA of the webhook: its Certificate, Secret and CA Issuer. */
export function webhookCaName(name: string): string {
  return `${webhookName(name)}-ca`;
}

/** The self-signed Issuer that signs the webhook's CA. */
export function webhookSelfSignedName(name: string): string {
  return `${webhookName(name)}-selfsigned`;
}

/** The Validating/MutatingAdmissionPolicies of enforcement and their bindings. */
export function policyName(name: string): string {
  return `${name}-enforcement`;
}
