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
  // k3s with its flannel: conf in <data-dir>/agent/etc/cni/net.d, plugins in
  // <data-dir>/data/<release hash>/bin (the parent is mounted: the hash changes on upgrade);
  // with --flannel-backend=none containerd's defaults, so those too.
  [
    ContainerdDistribution.K3s,
    RestartStrategy.None,
    [
      config("/var/lib/rancher/k3s/agent/etc/containerd"),
      socket("/run/k3s/containerd"),
      BIN,
      {
        volume: "cni-conf",
        hostPath: "/var/lib/rancher/k3s/agent/etc/cni/net.d",
        type: "DirectoryOrCreate",
        readOnly: true,
      },
      { ...CNI[0], volume: "cni-conf-2" },
      CNI[1],
      {
        volume: "cni-bin",
        hostPath: "/var/lib/rancher/k3s/data",
        type: "DirectoryOrCreate",
        readOnly: false,
      },
      { ...CNI[2], volume: "cni-bin-2" },
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

test("the host PID namespace is shared only with restart kill or manager.hostPID", () => {
  const hostPID = (restartStrategy: RestartStrategy, managerHostPID?: boolean): unknown => {
    const plan = resolveArgs("v", {
      agentImage: { ref: "img" },
      restartStrategy,
      manager: { hostPID: managerHostPID },
    });
    const spec = buildDaemonSet(plan, plan.pools[0], "ns").spec as {
      template: { spec: { hostPID?: boolean } };
    };
    return spec.template.spec.hostPID;
  };
  expect(hostPID(RestartStrategy.Kill)).toBe(true);
  expect(hostPID(RestartStrategy.Systemd)).toBeUndefined();
  expect(hostPID(RestartStrategy.None)).toBeUndefined();
  expect(hostPID(RestartStrategy.None, false)).toBeUndefined();
  expect(hostPID(RestartStrategy.None, true)).toBe(true);
});

test("manager.socketPath drives the manager's mount, the agent's mount and --manager-socket", () => {
  const plan = resolveArgs("v", {
    agentImage: { ref: "img" },
    manager: {
      socketPath: "/var/run/vnode-mgr/m.sock",
      args: ["--log-level", "debug"],
      resources: { requests: { memory: "128Mi" } },
    },
  });
  type C = {
    name: string;
    args: string[];
    resources?: unknown;
    volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  };
  const spec = buildDaemonSet(plan, plan.pools[0], "ns").spec as {
    template: { spec: { containers: C[]; volumes: { name: string; hostPath?: unknown }[] } };
  };
  const [agent, manager] = spec.template.spec.containers;
  const run = (c: C) => c.volumeMounts.filter((m) => m.name === "vnode-run");
  expect(run(agent)).toEqual([
    { name: "vnode-run", mountPath: "/host/var/run/vnode-mgr", readOnly: true },
  ]);
  expect(run(manager)).toEqual([{ name: "vnode-run", mountPath: "/var/run/vnode-mgr" }]);
  expect(spec.template.spec.volumes.find((v) => v.name === "vnode-run")).toEqual({
    name: "vnode-run",
    hostPath: { path: "/var/run/vnode-mgr", type: "DirectoryOrCreate" },
  });
  const flag = agent.args.indexOf("--manager-socket");
  expect(agent.args.slice(flag, flag + 4)).toEqual([
    "--manager-socket",
    "/var/run/vnode-mgr/m.sock",
    "--manager-container",
    "vnode-manager",
  ]);
  expect([manager.name, manager.args, manager.resources]).toEqual([
    "vnode-manager",
    ["--log-level", "debug"],
    { requests: { memory: "128Mi" } },
  ]);
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
    "/var/run/secrets/kubernetes.io/serviceaccount",
    "/host/run/vnode",
  ]);
});

test("only the agent gets the ServiceAccount token: the pod opts out of automount and mounts the API-access volume in the agent", () => {
  // Without the opt-out, kubelet mounts the token into every container of the pod (automount is
  // per pod), so the privileged manager would hold the agent's credentials too.
  const plan = resolveArgs("v", { agentImage: { ref: "img" } });
  const pod = (
    buildDaemonSet(plan, plan.pools[0], "ns").spec as unknown as {
      template: { spec: unknown };
    }
  ).template.spec as {
    automountServiceAccountToken: boolean;
    containers: { name: string; volumeMounts: { name: string; mountPath: string }[] }[];
    volumes: { name: string; projected?: unknown }[];
  };
  const tokenMounts = pod.containers.map((c) => [
    c.name,
    c.volumeMounts.filter((m) => m.mountPath === "/var/run/secrets/kubernetes.io/serviceaccount"),
  ]);
  expect([pod.automountServiceAccountToken, tokenMounts]).toEqual([
    false,
    [
      [
        "agent",
        [
          {
            name: "kube-api-access",
            mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
            readOnly: true,
          },
        ],
      ],
      ["vnode-manager", []],
    ],
  ]);
  // What the ServiceAccount admission plugin injects for automount (Kubernetes >= 1.22).
  expect(pod.volumes.find((v) => v.name === "kube-api-access")).toEqual({
    name: "kube-api-access",
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        {
          downwardAPI: {
            items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }],
          },
        },
      ],
    },
  });
});
