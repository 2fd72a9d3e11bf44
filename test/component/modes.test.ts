/**
 * Isolation modes, pools and their RuntimeClass scheduling, and the other knobs, as registered
 * with the (mock) engine.
 */
import * as k8s from "@pulumi/kubernetes";
import {
  ContainerdDistribution,
  IsolationMode,
  MetricsMode,
  RestartStrategy,
  VNodeRuntime,
} from "../../components/index";
import { Recorder, Registered, resolve, settle } from "./harness";

const recorder = new Recorder();
const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };
const DAEMONSET = "kubernetes:apps/v1:DaemonSet";
const RUNTIME_CLASS = "kubernetes:node.k8s.io/v1:RuntimeClass";

type PodSpec = {
  hostPID?: boolean;
  nodeSelector: Record<string, string>;
  tolerations: unknown[];
  affinity?: unknown;
  priorityClassName: string;
  terminationGracePeriodSeconds: number;
  containers: {
    name: string;
    args: string[];
    env: { name: string; value?: string; valueFrom?: unknown }[];
    resources: unknown;
    volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  }[];
  volumes: { name: string; hostPath?: { path: string; type: string } }[];
};
type DaemonSetInputs = {
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: {
    updateStrategy: unknown;
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: PodSpec;
    };
  };
};
const ds = (r: Registered): DaemonSetInputs => r.inputs as unknown as DaemonSetInputs;
const podSpec = (r: Registered): PodSpec => ds(r).spec.template.spec;
/** The labels the component puts on every object of a component named `instance`. */
const labels = (instance: string, extra: Record<string, string> = {}): Record<string, string> => ({
  "app.kubernetes.io/name": "vnode-agent",
  "app.kubernetes.io/instance": instance,
  "app.kubernetes.io/part-of": "vnode",
  "app.kubernetes.io/managed-by": "pulumi",
  ...extra,
});
const classMeta = (instance: string, name: string, mode: string): unknown => ({
  name,
  labels: labels(instance, { "vnode.loft.sh/isolation-mode": mode }),
});
/** VNODE_PER_POD of the agent and of vNode's manager, which must agree. */
const perPodEnv = (r: Registered): unknown => {
  const [agent, manager] = podSpec(r).containers.map((c) =>
    c.env.find((e) => e.name === "VNODE_PER_POD"),
  );
  expect(podSpec(r).containers.map((c) => c.name)).toEqual(["agent", "vnode-manager"]);
  expect(manager).toEqual(agent);
  return agent;
};

beforeAll(() => recorder.install());

describe("single pool, per-pod", () => {
  let runtime: VNodeRuntime;
  beforeAll(async () => {
    runtime = new VNodeRuntime("solo", { agentImage: IMAGE, isolationMode: IsolationMode.PerPod });
    await settle(recorder, runtime);
  });

  test('VNODE_PER_POD is exactly "true"', () => {
    expect(perPodEnv(recorder.one("solo", DAEMONSET))).toEqual({
      name: "VNODE_PER_POD",
      value: "true",
    });
  });

  test("the one class keeps the plain name and selects per-pod nodes, with the dearer overhead", () => {
    const runtimeClass = recorder.one("solo", RUNTIME_CLASS);
    expect(runtimeClass.name).toBe("solo-runtime-class-vnode");
    expect(runtimeClass.inputs).toEqual({
      apiVersion: "node.k8s.io/v1",
      kind: "RuntimeClass",
      metadata: classMeta("solo", "vnode", "per-pod"),
      handler: "vnode",
      overhead: { podFixed: { cpu: "50m", memory: "96Mi" } },
      scheduling: {
        nodeSelector: {
          "vnode.loft.sh/runtime": "ready",
          "vnode.loft.sh/isolation-mode": "per-pod",
        },
      },
    });
  });

  test("outputs", async () => {
    expect(await resolve(runtime.runtimeClassNames)).toEqual({ "per-pod": "vnode" });
    expect(await resolve(runtime.isolationModes)).toEqual(["per-pod"]);
    expect(await resolve(runtime.vnodePerPod)).toBe(true);
    expect(await resolve(runtime.daemonSetNames)).toEqual(["solo-agent"]);
  });
});

describe("two pools of different modes", () => {
  let runtime: VNodeRuntime;
  beforeAll(async () => {
    runtime = new VNodeRuntime("mixed", {
      agentImage: IMAGE,
      nodeSelector: { "node.kubernetes.io/instance-type": "m6i.xlarge" },
      runtimeClassTolerations: [{ key: "sandbox", operator: "Exists", effect: "NoSchedule" }],
      overhead: { perPod: { memory: "160Mi" } },
      pools: [
        {
          name: "builds",
          isolationMode: IsolationMode.PerPod,
          nodeSelector: { pool: "builds" },
          tolerations: [{ key: "ci", operator: "Equal", value: "builds", effect: "NoSchedule" }],
        },
        { name: "services", nodeSelector: { pool: "services" } },
      ],
    });
    await settle(recorder, runtime);
  });

  test("one DaemonSet per pool, each with its mode, selector and name", () => {
    const [builds, services] = recorder
      .byType("mixed", DAEMONSET)
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(builds.name).toBe("mixed-agent-builds");
    expect(services.name).toBe("mixed-agent-services");
    expect(ds(builds).metadata.name).toBe("mixed-agent-builds");
    expect(perPodEnv(builds)).toEqual({ name: "VNODE_PER_POD", value: "true" });
    expect(perPodEnv(services)).toEqual({ name: "VNODE_PER_POD", value: "false" });
    expect(podSpec(builds).nodeSelector).toEqual({
      "kubernetes.io/os": "linux",
      "node.kubernetes.io/instance-type": "m6i.xlarge",
      pool: "builds",
    });
    expect(podSpec(services).nodeSelector).toEqual({
      "kubernetes.io/os": "linux",
      "node.kubernetes.io/instance-type": "m6i.xlarge",
      pool: "services",
    });
    // Both pools' agents know both classes: a pod of either blocks an uninstall.
    expect(podSpec(builds).containers[0].args.slice(-8)).toEqual([
      "--runtime-classes",
      "vnode,vnode-per-pod",
      "--daemonset",
      "mixed-agent-builds",
      "--manager-socket",
      "/run/vnode/manager.sock",
      "--manager-container",
      "vnode-manager",
    ]);
    expect(podSpec(services).containers[0].args.slice(-8)).toEqual([
      "--runtime-classes",
      "vnode,vnode-per-pod",
      "--daemonset",
      "mixed-agent-services",
      "--manager-socket",
      "/run/vnode/manager.sock",
      "--manager-container",
      "vnode-manager",
    ]);
    // The agent itself still tolerates every taint: pool tolerations are for the sandboxed pods.
    expect(podSpec(builds).tolerations).toEqual([{ operator: "Exists" }]);
  });

  test("one RuntimeClass per mode, each pinned to nodes of its mode", () => {
    const classes = recorder
      .byType("mixed", RUNTIME_CLASS)
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(classes.map((c) => [c.name, c.inputs])).toEqual([
      [
        "mixed-runtime-class-vnode",
        {
          apiVersion: "node.k8s.io/v1",
          kind: "RuntimeClass",
          metadata: classMeta("mixed", "vnode", "per-namespace"),
          handler: "vnode",
          overhead: { podFixed: { cpu: "10m", memory: "32Mi" } },
          scheduling: {
            nodeSelector: {
              "vnode.loft.sh/runtime": "ready",
              "vnode.loft.sh/isolation-mode": "per-namespace",
            },
            tolerations: [{ key: "sandbox", operator: "Exists", effect: "NoSchedule" }],
          },
        },
      ],
      [
        "mixed-runtime-class-vnode-per-pod",
        {
          apiVersion: "node.k8s.io/v1",
          kind: "RuntimeClass",
          metadata: classMeta("mixed", "vnode-per-pod", "per-pod"),
          handler: "vnode",
          overhead: { podFixed: { cpu: "50m", memory: "160Mi" } },
          scheduling: {
            nodeSelector: {
              "vnode.loft.sh/runtime": "ready",
              "vnode.loft.sh/isolation-mode": "per-pod",
            },
            tolerations: [
              { key: "sandbox", operator: "Exists", effect: "NoSchedule" },
              { key: "ci", operator: "Equal", value: "builds", effect: "NoSchedule" },
            ],
          },
        },
      ],
    ]);
  });

  test("the Role may read exactly this component's DaemonSets", () => {
    expect(
      recorder.one("mixed", "kubernetes:rbac.authorization.k8s.io/v1:Role").inputs.rules,
    ).toEqual([
      {
        apiGroups: ["apps"],
        resources: ["daemonsets"],
        resourceNames: ["mixed-agent-builds", "mixed-agent-services"],
        verbs: ["get"],
      },
    ]);
  });

  test("outputs: both classes, both DaemonSets, no single VNODE_PER_POD", async () => {
    expect(await resolve(runtime.runtimeClassNames)).toEqual({
      "per-namespace": "vnode",
      "per-pod": "vnode-per-pod",
    });
    expect(await resolve(runtime.daemonSetNames)).toEqual([
      "mixed-agent-builds",
      "mixed-agent-services",
    ]);
    expect(await resolve(runtime.isolationModes)).toEqual(["per-namespace", "per-pod"]);
    expect(await resolve(runtime.vnodePerPod)).toBeUndefined();
  });
});

describe("two pools of one mode, a named per-pod class, overhead off", () => {
  let runtime: VNodeRuntime;
  beforeAll(async () => {
    runtime = new VNodeRuntime("same", {
      agentImage: IMAGE,
      isolationMode: IsolationMode.PerPod,
      perPodRuntimeClassName: "sandbox",
      overhead: { enabled: false },
      pools: [
        {
          name: "amd64",
          nodeSelector: { "kubernetes.io/arch": "amd64" },
          tolerations: [{ key: "t", operator: "Exists" }],
        },
        {
          name: "arm64",
          nodeSelector: { "kubernetes.io/arch": "arm64" },
          tolerations: [{ key: "t", operator: "Exists" }],
        },
      ],
    });
    await settle(recorder, runtime);
  });

  test("one class, named as asked, without overhead, tolerations without duplicates", () => {
    expect(recorder.one("same", RUNTIME_CLASS).inputs).toEqual({
      apiVersion: "node.k8s.io/v1",
      kind: "RuntimeClass",
      metadata: classMeta("same", "sandbox", "per-pod"),
      handler: "vnode",
      scheduling: {
        nodeSelector: {
          "vnode.loft.sh/runtime": "ready",
          "vnode.loft.sh/isolation-mode": "per-pod",
        },
        tolerations: [{ key: "t", operator: "Exists" }],
      },
    });
  });

  test("both DaemonSets are per-pod", async () => {
    expect(recorder.byType("same", DAEMONSET).map(perPodEnv)).toEqual([
      { name: "VNODE_PER_POD", value: "true" },
      { name: "VNODE_PER_POD", value: "true" },
    ]);
    expect(await resolve(runtime.vnodePerPod)).toBe(true);
    expect(await resolve(runtime.runtimeClassNames)).toEqual({ "per-pod": "sandbox" });
  });
});

describe("every other knob", () => {
  let runtime: VNodeRuntime;
  const affinity: k8s.types.input.core.v1.Affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: "sandbox", operator: "In", values: ["true"] }] },
        ],
      },
    },
  };
  beforeAll(async () => {
    runtime = new VNodeRuntime("knobs", {
      agentImage: IMAGE,
      namespace: "platform-vnode",
      createNamespace: false,
      runtimeClassName: "sandboxed",
      handler: "vnode-sandbox",
      containerdDistribution: ContainerdDistribution.K3s,
      restartStrategy: RestartStrategy.Kill,
      tolerations: [
        { key: "dedicated", operator: "Equal", value: "sandbox", effect: "NoSchedule" },
      ],
      affinity,
      priorityClassName: "platform-critical",
      resources: { requests: { cpu: "50m" }, limits: { cpu: "500m" } },
      updateStrategy: { maxUnavailable: 3 },
      terminationGracePeriodSeconds: 300,
      labels: { team: "platform" },
      annotations: { "example.com/owner": "platform@example.com" },
      metrics: {
        mode: MetricsMode.PodMonitor,
        interval: "1m",
        podMonitorLabels: { release: "prometheus" },
      },
    });
    await settle(recorder, runtime);
  });

  test("no Namespace is created and every namespaced object uses the given one", async () => {
    expect(recorder.byType("knobs", "kubernetes:core/v1:Namespace")).toEqual([]);
    for (const r of recorder.of("knobs")) {
      const metadata = r.inputs.metadata as { namespace?: string } | undefined;
      if (metadata?.namespace !== undefined) {
        expect(metadata.namespace).toBe("platform-vnode");
      }
    }
    expect(await resolve(runtime.namespace)).toBe("platform-vnode");
  });

  test("the DaemonSet carries every setting", () => {
    const daemonSet = recorder.one("knobs", DAEMONSET);
    const spec = podSpec(daemonSet);
    expect(spec.containers[0].args).toEqual([
      "run",
      "--host-root",
      "/host",
      "--containerd-distribution",
      "k3s",
      "--handler",
      "vnode-sandbox",
      "--restart",
      "kill",
      "--listen",
      ":8090",
      "--runtime-classes",
      "sandboxed",
      "--daemonset",
      "knobs-agent",
      "--manager-socket",
      "/run/vnode/manager.sock",
      "--manager-container",
      "vnode-manager",
    ]);
    expect(spec.hostPID).toBe(true);
    expect(spec.tolerations).toEqual([
      { key: "dedicated", operator: "Equal", value: "sandbox", effect: "NoSchedule" },
    ]);
    expect(spec.affinity).toEqual(affinity);
    expect(spec.priorityClassName).toBe("platform-critical");
    expect(spec.terminationGracePeriodSeconds).toBe(300);
    expect(spec.containers[0].resources).toEqual({
      requests: { cpu: "50m", memory: "64Mi" },
      limits: { cpu: "500m", memory: "256Mi" },
    });
    expect(ds(daemonSet).spec.updateStrategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 3 },
    });
    expect(spec.volumes.filter((v) => v.hostPath !== undefined)).toEqual([
      {
        name: "containerd-config",
        hostPath: { path: "/var/lib/rancher/k3s/agent/etc/containerd", type: "DirectoryOrCreate" },
      },
      { name: "containerd-socket", hostPath: { path: "/run/k3s/containerd", type: "Directory" } },
      { name: "vnode-bin", hostPath: { path: "/opt/vnode/bin", type: "DirectoryOrCreate" } },
      {
        name: "cni-conf",
        hostPath: { path: "/var/lib/rancher/k3s/agent/etc/cni/net.d", type: "DirectoryOrCreate" },
      },
      { name: "cni-conf-2", hostPath: { path: "/etc/cni/net.d", type: "DirectoryOrCreate" } },
      {
        name: "vnode-cni-conf",
        hostPath: { path: "/etc/vnode/cni/net.d", type: "DirectoryOrCreate" },
      },
      {
        name: "cni-bin",
        hostPath: { path: "/var/lib/rancher/k3s/data", type: "DirectoryOrCreate" },
      },
      { name: "cni-bin-2", hostPath: { path: "/opt/cni/bin", type: "DirectoryOrCreate" } },
      {
        name: "agent-state",
        hostPath: { path: "/var/lib/vnode-agent", type: "DirectoryOrCreate" },
      },
      { name: "vnode-run", hostPath: { path: "/run/vnode", type: "DirectoryOrCreate" } },
    ]);
    // PodMonitor mode: no scrape annotations, only the user's.
    expect(ds(daemonSet).spec.template.metadata.annotations).toEqual({
      "example.com/owner": "platform@example.com",
    });
    expect(ds(daemonSet).spec.template.metadata.labels.team).toBe("platform");
  });

  test("user labels and annotations are on every object", () => {
    const objects = recorder.of("knobs").filter((r) => r.type.startsWith("kubernetes:"));
    expect(objects.length).toBe(10);
    for (const r of objects) {
      const metadata = r.inputs.metadata as {
        labels: Record<string, string>;
        annotations: Record<string, string>;
      };
      expect([r.name, metadata.labels.team]).toEqual([r.name, "platform"]);
      // The DaemonSet also tells the Kubernetes provider not to await its rollout (rollout.wait).
      expect([r.name, metadata.annotations]).toEqual([
        r.name,
        {
          "example.com/owner": "platform@example.com",
          ...(r.type === DAEMONSET ? { "pulumi.com/skipAwait": "true" } : {}),
        },
      ]);
    }
  });

  test("the RuntimeClass uses the given name and handler", () => {
    const runtimeClass = recorder.one("knobs", RUNTIME_CLASS).inputs;
    expect([(runtimeClass.metadata as { name: string }).name, runtimeClass.handler]).toEqual([
      "sandboxed",
      "vnode-sandbox",
    ]);
  });

  test("a PodMonitor scrapes every agent pod of the component", () => {
    expect(recorder.one("knobs", "kubernetes:monitoring.coreos.com/v1:PodMonitor").inputs).toEqual({
      apiVersion: "monitoring.coreos.com/v1",
      kind: "PodMonitor",
      metadata: {
        name: "knobs-agent",
        namespace: "platform-vnode",
        labels: labels("knobs", { team: "platform", release: "prometheus" }),
        annotations: { "example.com/owner": "platform@example.com" },
      },
      spec: {
        selector: {
          matchLabels: {
            "app.kubernetes.io/name": "vnode-agent",
            "app.kubernetes.io/instance": "knobs",
          },
        },
        podMetricsEndpoints: [{ port: "metrics", path: "/metrics", interval: "1m" }],
      },
    });
  });
});

test("metrics mode none: no scrape annotations and no PodMonitor", async () => {
  const runtime = new VNodeRuntime("quiet", {
    agentImage: IMAGE,
    metrics: { mode: MetricsMode.None },
  });
  await settle(recorder, runtime);
  expect(ds(recorder.one("quiet", DAEMONSET)).spec.template.metadata.annotations).toBeUndefined();
  expect(recorder.of("quiet").map((r) => r.type)).not.toContain(
    "kubernetes:monitoring.coreos.com/v1:PodMonitor",
  );
});

test("a Kubernetes provider given through opts reaches every child; the component builds none", async () => {
  const provider = new k8s.Provider("other-cluster", { kubeconfig: "{}", context: "other" });
  const runtime = new VNodeRuntime("prov", { agentImage: IMAGE }, { providers: [provider] });
  await settle(recorder, runtime);
  const [urn, id] = [await resolve(provider.urn), await resolve(provider.id)];
  const children = recorder.of("prov").filter((r) => r.type.startsWith("kubernetes:"));
  expect(children.length).toBe(10);
  for (const child of children) {
    expect([child.name, child.provider]).toEqual([child.name, `${urn}::${id}`]);
  }
  expect(
    recorder.resources.filter((r) => r.type === "pulumi:providers:kubernetes").map((r) => r.name),
  ).toEqual(["other-cluster"]);
});
