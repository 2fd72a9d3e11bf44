/**
 * The node agent's interface as the component deploys it: env vars, HTTP endpoints, defaults,
 * image paths and restart strategies.
 */

/** The env var through which the DaemonSet tells the agent its node (downward API). */
export const NODE_NAME_ENV = "NODE_NAME";

/** The env var through which the DaemonSet tells the agent its own namespace (downward API). */
export const POD_NAMESPACE_ENV = "POD_NAMESPACE";

/**
 * The env var through which the DaemonSet tells the agent its own pod's name (downward API), so
 * it can read the manager container's status (`--manager-container`).
 */
export const POD_NAME_ENV = "POD_NAME";

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

/** Paths inside the agent image (agent/Dockerfile puts things there); CLI defaults match. */
export const AGENT_IMAGE = {
  /** The vNode payload (shim and helper binaries) the image carries: `--payload-dir`'s default. */
  payloadDir: "/opt/vnode-payload",
} as const;

/**
 * The host's D-Bus system bus socket: `--restart systemd` asks systemd over it to restart
 * containerd, and the DaemonSet mounts its directory read-only for that strategy only.
 */
export const SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket";

/** How the agent may restart containerd (`--restart`); `command` is for operators and tests. */
export const RESTART_STRATEGIES = ["systemd", "kill", "command", "none"] as const;
