/** containerd layouts per Kubernetes distribution, as host paths. */

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
