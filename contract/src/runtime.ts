/**
 * vNode's node runtime as the agent installs it and the DaemonSet runs it: the names its
 * multi-call binary acts by, and the manager process's defaults.
 *
 * vNode's architecture page: the vnode-runtime image's main binary is a multi-call binary (like
 * busybox) that acts by the name it is called with (argv[0]). containerd calls it as the shim,
 * containerd's CNI calls it as a plugin, and the node runs it as the long-running manager.
 */

/** The roles of the multi-call binary and the name each is called by. */
export const PAYLOAD_ROLES = {
  /** Called by containerd for the handler; only returns the running manager's socket path. */
  shim: "containerd-shim-vnode-v2",
  /** Called by containerd's CNI for vNode pods, after the host's CNI plugins. */
  cni: "vnode-cni",
  /** The long-running coordinator on each node; reads VNODE_PER_POD. */
  manager: "vnode-manager",
} as const;
export type PayloadRole = keyof typeof PAYLOAD_ROLES;

/** Every role, in a fixed order. */
export const PAYLOAD_ROLE_NAMES: readonly PayloadRole[] = ["shim", "cni", "manager"];

/**
 * The vNode manager as the DaemonSet runs it. vNode does not document the manager's socket path
 * or flags: the socket is the component input `manager.socketPath` (this default), and the agent
 * only checks that something accepts connections on it (`--manager-socket`).
 */
export const MANAGER_DEFAULTS = {
  /** The manager's container in the agent's pod. */
  container: "vnode-manager",
  /** Host path of the manager's unix socket (its directory is shared with the agent). */
  socket: "/run/vnode/manager.sock",
} as const;

/**
 * Where the agent keeps the CNI configuration of the vNode handler (containerd's per-runtime
 * `cni_conf_dir`): the host's active network list plus `vnode-cni`.
 */
export const VNODE_CNI_CONF_DIR = "/etc/vnode/cni/net.d";

/**
 * containerd's CNI defaults (the CRI plugin's `cni.conf_dir` and `cni.bin_dir`): the agent reads
 * the real values from containerd's config; the DaemonSet mounts these.
 */
export const CNI_HOST_DEFAULTS = { confDir: "/etc/cni/net.d", binDir: "/opt/cni/bin" } as const;
