/** containerd layouts per Kubernetes distribution, as host paths. */

import { CNI_HOST_DEFAULTS } from "./runtime";

/** containerd's own CNI defaults, for configs that set no `cni` dirs. */
const CNI_DEFAULT_DIRS = { conf: [CNI_HOST_DEFAULTS.confDir], bin: [CNI_HOST_DEFAULTS.binDir] };

/**
 * k3s's CNI dirs. With its embedded flannel, k3s renders `conf_dir` = `<data-dir>/agent/etc/cni/net.d`
 * and `bin_dir` = the directory of `host-local` on its PATH, `<data-dir>/data/<hash>/bin`, where
 * `<hash>` names the k3s release (k3s-io/k3s pkg/agent/config/config.go sets CNIConfDir/CNIBinDir;
 * cmd/k3s/main.go `stageAndRun` puts `<data-dir>/data/<hash>/bin` first on PATH; the containerd
 * template writes `[...cri.cni] bin_dir/conf_dir` only `{{ if not .NodeConfig.NoFlannel }}`).
 * `data/` is mounted, not `data/<hash>/bin`: the hash changes with every k3s upgrade. With
 * `--flannel-backend=none` k3s writes no `cni` section and containerd's defaults apply, so those
 * are mounted too.
 */
const K3S_CNI_DIRS = {
  conf: ["/var/lib/rancher/k3s/agent/etc/cni/net.d", ...CNI_DEFAULT_DIRS.conf],
  bin: ["/var/lib/rancher/k3s/data", ...CNI_DEFAULT_DIRS.bin],
} as const;

/**
 * Where each Kubernetes distribution keeps containerd's config and socket, as host paths. The
 * agent auto-detects among these; the component mounts the chosen one's directories.
 * `template` is the file the distribution renders `config` from on every start, so the agent
 * must edit the template (k3s/rke2/microk8s), and `dropInDir` is a directory containerd
 * already imports where there is one. `cni` lists the dirs the distribution's containerd may read
 * CNI network configs from (`conf`) and run plugins from (`bin`, or a parent of it): the agent
 * reads the real `cni.conf_dir`/`bin_dir` from containerd's config, the DaemonSet mounts these.
 */
export const CONTAINERD_DISTRIBUTIONS = {
  containerd: {
    config: "/etc/containerd/config.toml",
    dropInDir: "/etc/containerd/conf.d",
    socket: "/run/containerd/containerd.sock",
    cni: CNI_DEFAULT_DIRS,
  },
  k3s: {
    config: "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
    template: "/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl",
    socket: "/run/k3s/containerd/containerd.sock",
    cni: K3S_CNI_DIRS,
  },
  rke2: {
    config: "/var/lib/rancher/rke2/agent/etc/containerd/config.toml",
    template: "/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl",
    socket: "/run/k3s/containerd/containerd.sock",
    // rke2 runs k3s's agent with FlannelBackend "none" (rancher/rke2 pkg/cli/defaults/defaults.go)
    // and installs its CNI (canal, calico, cilium, flannel) as Helm charts that use the standard
    // dirs (docs.rke2.io "Network Options"): containerd's defaults.
    cni: CNI_DEFAULT_DIRS,
  },
  microk8s: {
    config: "/var/snap/microk8s/current/args/containerd.toml",
    template: "/var/snap/microk8s/current/args/containerd-template.toml",
    socket: "/var/snap/microk8s/common/run/containerd.sock",
    // Not checked against microk8s's template yet: containerd's defaults.
    cni: CNI_DEFAULT_DIRS,
  },
  k0s: {
    config: "/etc/k0s/containerd.toml",
    dropInDir: "/etc/k0s/containerd.d",
    socket: "/run/k0s/containerd.sock",
    cni: CNI_DEFAULT_DIRS,
  },
} as const;
export type ContainerdDistribution = keyof typeof CONTAINERD_DISTRIBUTIONS;
