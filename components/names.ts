/**
 * Names of the Kubernetes objects the component creates. Validation and the builders share these,
 * so a name is checked exactly as it will be used.
 */
import { ISOLATION_MODES } from "vnode-contract";
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

/**
 * Pulumi names. A Pulumi name must change exactly when the Kubernetes object it manages changes
 * identity (kind, namespace, name): a Pulumi rename of the same object is a create (which the
 * provider turns into an upsert of the live object) followed by a delete of that same object. So
 * each name below is keyed on the object's Kubernetes name, never on a mode or a pool's position.
 * The namespace is left out: every namespaced child lives in the runtime namespace, which may be
 * an Output (unknown when names are chosen); when it changes, the provider replaces each
 * namespaced object, creating the new one (another identity, no collision) before deleting the
 * old.
 */

/** Pulumi name of a pool's DaemonSet: its Kubernetes name, which already starts with `<name>-`. */
export function daemonSetResourceName(daemonSet: string): string {
  return daemonSet;
}

/** Pulumi name of a RuntimeClass: keyed on its Kubernetes name, not on the mode it serves. */
export function runtimeClassResourceName(name: string, runtimeClass: string): string {
  return `${name}-runtime-class-${runtimeClass}`;
}

/**
 * Pulumi names of the same DaemonSet before names were keyed on Kubernetes identity: the pool-less
 * DaemonSet `<name>-agent` was `<name>-agent-default`. Aliases, so upgrading renames nothing.
 */
export function legacyDaemonSetResourceNames(name: string, pool: string | undefined): string[] {
  return pool === undefined ? [`${name}-agent-${DEFAULT_POOL}`] : [];
}

/**
 * Pulumi names of a RuntimeClass before names were keyed on Kubernetes identity:
 * `<name>-runtime-class-<mode>`. With one class in use, either mode's old name held it (the class
 * kept its Kubernetes name across mode switches); with two, each held its own mode's. No old name
 * is claimed by two classes, which the engine would refuse.
 */
export function legacyRuntimeClassResourceNames(
  name: string,
  mode: IsolationMode,
  modesInUse: readonly IsolationMode[],
): string[] {
  const modes =
    modesInUse.length === 1 ? [mode, ...ISOLATION_MODES.filter((m) => m !== mode)] : [mode];
  return modes.map((m) => `${name}-runtime-class-${m}`);
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

/** The namespace label guard's ValidatingAdmissionPolicy and binding (backend `admission-policy`). */
export function namespaceGuardName(name: string): string {
  return `${name}-namespace-guard`;
}

/** The Pod Security MutatingAdmissionPolicy and binding (backend `admission-policy`). */
export function podSecurityPolicyName(name: string): string {
  return `${name}-namespace-pod-security`;
}

/** The webhook configurations of the namespace routes (backend `webhook`). */
export function namespaceWebhookName(name: string): string {
  return `${webhookName(name)}-namespaces`;
}
