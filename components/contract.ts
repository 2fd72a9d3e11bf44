/**
 * The contract between the Pulumi component and the node agent it deploys: the node labels the
 * agent sets and the RuntimeClasses select on, the agent's HTTP endpoints, the Kubernetes API
 * calls it makes (and so the RBAC it is granted), and the host paths it touches.
 *
 * Both sides import this file (the agent bundle through esbuild), so they cannot drift apart.
 * It must stay free of Pulumi and Node.js imports.
 */

/** Prefix of every node label and annotation the agent owns. */
export const LABEL_PREFIX = "vnode.loft.sh";

/** Node label with the runtime's state on that node; see {@link RuntimeState}. */
export const RUNTIME_LABEL = `${LABEL_PREFIX}/runtime`;

/** Node label with the node's isolation mode (`per-namespace` or `per-pod`). */
export const ISOLATION_MODE_LABEL = `${LABEL_PREFIX}/isolation-mode`;

/** Values of {@link RUNTIME_LABEL}. Only `ready` admits vNode pods. */
export const RuntimeState = {
  Installing: "installing",
  Ready: "ready",
  Failed: "failed",
  Uninstalling: "uninstalling",
} as const;
export type RuntimeState = (typeof RuntimeState)[keyof typeof RuntimeState];

/** The env var that sets vNode's node-wide isolation granularity. */
export const VNODE_PER_POD_ENV = "VNODE_PER_POD";

/** The env var through which the DaemonSet tells the agent its node (downward API). */
export const NODE_NAME_ENV = "NODE_NAME";

/** The env var through which the DaemonSet tells the agent its own namespace (downward API). */
export const POD_NAMESPACE_ENV = "POD_NAMESPACE";

/** The agent's HTTP server: health, readiness and Prometheus metrics. */
export const AGENT_HTTP = {
  port: 8090,
  portName: "metrics",
  healthz: "/healthz",
  readyz: "/readyz",
  metrics: "/metrics",
} as const;

/** Defaults shared by the agent CLI and the component. */
export const AGENT_DEFAULTS = {
  handler: "vnode",
  runtimeType: "io.containerd.vnode.v2",
  installDir: "/opt/vnode/bin",
  stateDir: "/var/lib/vnode-agent",
  hostRoot: "/host",
} as const;

/**
 * Every Kubernetes API call the agent makes. The component grants exactly these verbs and a
 * test checks that the agent's client uses no other, so RBAC stays least-privilege.
 */
export const AGENT_CLUSTER_RULES = [
  { apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
] as const;

/** Namespaced calls: the agent reads its own DaemonSets to tell a rollout from a removal. */
export const AGENT_NAMESPACE_RULES = [
  { apiGroups: ["apps"], resources: ["daemonsets"], verbs: ["get"] },
] as const;

/**
 * Where each Kubernetes distribution keeps containerd's config and socket, as host paths. The
 * agent auto-detects among these; the component mounts the chosen one's directories.
 * `template` is the file the distribution renders `config` from on every start, so the agent
 * must edit the template (k3s/rke2/microk8s), and `dropInDir` is a directory containerd
 * already imports where there is one.
 */
export const CONTAINERD_DISTRIBUTIONS = {
  containerd: {
    config: "/etc/containerd/config.toml",
    dropInDir: "/etc/containerd/conf.d",
    socket: "/run/containerd/containerd.sock",
  },
  k3s: {
    config: "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
    template: "/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl",
    socket: "/run/k3s/containerd/containerd.sock",
  },
  rke2: {
    config: "/var/lib/rancher/rke2/agent/etc/containerd/config.toml",
    template: "/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl",
    socket: "/run/k3s/containerd/containerd.sock",
  },
  microk8s: {
    config: "/var/snap/microk8s/current/args/containerd.toml",
    template: "/var/snap/microk8s/current/args/containerd-template.toml",
    socket: "/var/snap/microk8s/common/run/containerd.sock",
  },
  k0s: {
    config: "/etc/k0s/containerd.toml",
    dropInDir: "/etc/k0s/containerd.d",
    socket: "/run/k0s/containerd.sock",
  },
} as const;
export type ContainerdDistribution = keyof typeof CONTAINERD_DISTRIBUTIONS;

/** Paths inside the agent image (agent/Dockerfile puts things there); CLI defaults match. */
export const AGENT_IMAGE = {
  /** The vNode payload (shim and helper binaries) the image carries: `--payload-dir`'s default. */
  payloadDir: "/opt/vnode-payload",
} as const;

/**
 * Namespace label that picks the isolation mode (`per-namespace` or `per-pod`) of a tenant
 * namespace's pods under tenancy enforcement. Unset or another value: the default mode.
 */
export const NAMESPACE_ISOLATION_LABEL = `${LABEL_PREFIX}/isolation`;

/** Namespaces tenancy enforcement never touches, whatever the user configures. */
export const ALWAYS_EXCLUDED_NAMESPACES = ["kube-system", "kube-node-lease"] as const;

/**
 * The admission webhook server (`vnode-agent webhook`), HTTPS only. `mutate` serves the default
 * mode's RuntimeClass, `mutate/<mode>` that mode's; the component routes each namespace to one
 * of them by namespaceSelector, since a webhook never sees namespace labels.
 */
export const WEBHOOK_HTTPS = {
  port: 8443,
  portName: "https",
  mutate: "/mutate",
  validate: "/validate",
  healthz: "/healthz",
  readyz: "/readyz",
} as const;

/**
 * The host's D-Bus system bus socket: `--restart systemd` asks systemd over it to restart
 * containerd, and the DaemonSet mounts its directory read-only for that strategy only.
 */
export const SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket";

/** How the agent may restart containerd (`--restart`); `command` is for operators and tests. */
export const RESTART_STRATEGIES = ["systemd", "kill", "command", "none"] as const;
