/** The DaemonSet builder's pure parts: host mounts per distribution and restart strategy, args, env. */
import { ContainerdDistribution, IsolationMode, RestartStrategy } from "../../components/index";
import { buildDaemonSet, hostMounts } from "../../components/daemonSet";
import { resolveArgs } from "../../components/defaults";

const BIN = {
  volume: "vnode-bin",
  hostPath: "/opt/vnode/bin",
  type: "DirectoryOrCreate",
  readOnly: false,
};
/** The CNI dirs: the host's network config (read), the vNode chain (written), the plugin bin dir. */
const CNI = [
  { volume: "cni-conf", hostPath: "/etc/cni/net.d", type: "DirectoryOrCreate", readOnly: true },
  {
    volume: "vnode-cni-conf",
    hostPath: "/etc/vnode/cni/net.d",
    type: "DirectoryOrCreate",
    readOnly: false,
  },
  { volume: "cni-bin", hostPath: "/opt/cni/bin", type: "DirectoryOrCreate", readOnly: false },
];
const STATE = {
  volume: "agent-state",
  hostPath: "/var/lib/vnode-agent",
  type: "DirectoryOrCreate",
  readOnly: false,
};
const DBUS = { volume: "dbus", hostPath: "/run/dbus", type: "Directory", readOnly: true };
const config = (hostPath: string): unknown => ({
  volume: "containerd-config",
  hostPath,
  type: "DirectoryOrCreate",
  readOnly: false,
});
const socket = (hostPath: string): unknown => ({
  volume: "containerd-socket",
  hostPath,
  type: "Directory",
  readOnly: true,
});

test.each([
  [
    ContainerdDistribution.Containerd,
    RestartStrategy.Systemd,
    [config("/etc/containerd"), socket("/run/containerd"), BIN, ...CNI, STATE, DBUS],
  ],
  [
    ContainerdDistribution.Containerd,
    RestartStrategy.Kill,
    [config("/etc/containerd"), socket("/run/containerd"), BIN, ...CNI, STATE],
  ],
  [
    ContainerdDistribution.K3s,
    RestartStrategy.None,
    [
      config("/var/lib/rancher/k3s/agent/etc/containerd"),
      socket("/run/k3s/containerd"),
      BIN,
      ...CNI,
      STATE,
    ],
  ],
  [
    ContainerdDistribution.Rke2,
    RestartStrategy.Systemd,
    [
      config("/var/lib/rancher/rke2/agent/etc/containerd"),
      socket("/run/k3s/containerd"),
      BIN,
      ...CNI,
      STATE,
      DBUS,
    ],
  ],
  [
    ContainerdDistribution.Microk8s,
    RestartStrategy.Systemd,
    [
      config("/var/snap/microk8s/current/args"),
      socket("/var/snap/microk8s/common/run"),
      BIN,
      ...CNI,
      STATE,
      DBUS,
    ],
  ],
  // k0s's drop-in dir /etc/k0s/containerd.d lies inside the config dir: one mount covers both.
  [
    ContainerdDistribution.K0s,
    RestartStrategy.Kill,
    [config("/etc/k0s"), socket("/run/k0s"), BIN, ...CNI, STATE],
  ],
])(
  "%s with restart %s mounts exactly what the agent touches",
  (distribution, restart, expected) => {
    expect(hostMounts(distribution, restart)).toEqual(expected);
  },
);

test("VNODE_PER_POD is explicit for both modes", () => {
  const perPod = (isolationMode: IsolationMode): unknown => {
    const plan = resolveArgs("v", { agentImage: { ref: "img" }, isolationMode });
    const spec = buildDaemonSet(plan, plan.pools[0], "ns").spec as {
      template: { spec: { containers: { env: { name: string; value?: string }[] }[] } };
    };
    return spec.template.spec.containers[0].env.find((e) => e.name === "VNODE_PER_POD")?.value;
  };
  expect(perPod(IsolationMode.PerPod)).toBe("true");
  expect(perPod(IsolationMode.PerNamespace)).toBe("false");
});

test("the host PID namespace is shared only with restart kill", () => {
  const hostPID = (restartStrategy: RestartStrategy): unknown => {
    const plan = resolveArgs("v", { agentImage: { ref: "img" }, restartStrategy });
    const spec = buildDaemonSet(plan, plan.pools[0], "ns").spec as {
      template: { spec: { hostPID?: boolean } };
    };
    return spec.template.spec.hostPID;
  };
  expect(hostPID(RestartStrategy.Kill)).toBe(true);
  expect(hostPID(RestartStrategy.Systemd)).toBeUndefined();
  expect(hostPID(RestartStrategy.None)).toBeUndefined();
});

test("mount paths are the host paths under /host", () => {
  const plan = resolveArgs("v", {
    agentImage: { ref: "img" },
    containerdDistribution: ContainerdDistribution.K0s,
  });
  const spec = buildDaemonSet(plan, plan.pools[0], "ns").spec as {
    template: { spec: { containers: { volumeMounts: { mountPath: string }[] }[] } };
  };
  expect(spec.template.spec.containers[0].volumeMounts.map((m) => m.mountPath)).toEqual([
    "/host/etc/k0s",
    "/host/run/k0s",
    "/host/opt/vnode/bin",
    "/host/etc/cni/net.d",
    "/host/etc/vnode/cni/net.d",
    "/host/opt/cni/bin",
    "/host/var/lib/vnode-agent",
    "/host/run/dbus",
    "/tmp",
    "/host/run/vnode",
  ]);
});
