/**
 * The component with only the required argument: every default, exactly, as registered with the
 * (mock) engine, plus parentage, stable names and outputs.
 */
import { VNodeRuntime } from "../../components/index";
import { Recorder, resolve, settle } from "./harness";

const recorder = new Recorder();
let runtime: VNodeRuntime;

const LABELS = {
  "app.kubernetes.io/name": "vnode-agent",
  "app.kubernetes.io/instance": "vnode",
  "app.kubernetes.io/part-of": "vnode",
  "app.kubernetes.io/managed-by": "pulumi",
};

beforeAll(async () => {
  await recorder.install();
  runtime = new VNodeRuntime("vnode", { agentImage: { ref: "ghcr.io/acme/vnode-agent:0.1.0" } });
  await settle(recorder, runtime);
});

test("registers exactly these children, with stable names, all parented to the component", () => {
  const children = recorder.of("vnode").filter((r) => r.type !== "vnode:index:VNodeRuntime");
  expect(children.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy vnode-agent-node-policy",
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding vnode-agent-node-policy-binding",
    "kubernetes:apps/v1:DaemonSet vnode-agent",
    "kubernetes:core/v1:Namespace vnode-namespace",
    "kubernetes:core/v1:ServiceAccount vnode-service-account",
    "kubernetes:node.k8s.io/v1:RuntimeClass vnode-runtime-class-vnode",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole vnode-cluster-role",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding vnode-cluster-role-binding",
    "kubernetes:rbac.authorization.k8s.io/v1:Role vnode-role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding vnode-role-binding",
  ]);
  for (const child of children) {
    expect(child.urn).toBe(
      `urn:pulumi:test::vnode-test::vnode:index:VNodeRuntime$${child.type}::${child.name}`,
    );
  }
  expect(recorder.one("vnode", "vnode:index:VNodeRuntime").urn).toBe(
    "urn:pulumi:test::vnode-test::vnode:index:VNodeRuntime::vnode",
  );
});

test("the namespace, and only it, is Pod Security privileged", () => {
  expect(recorder.one("vnode", "kubernetes:core/v1:Namespace").inputs).toEqual({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: "vnode-runtime",
      labels: {
        ...LABELS,
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
      },
    },
  });
  const others = recorder.of("vnode").filter((r) => r.type !== "kubernetes:core/v1:Namespace");
  for (const other of others) {
    expect(JSON.stringify(other.inputs)).not.toContain("pod-security.kubernetes.io");
  }
});

test("the DaemonSet runs the agent with every default, exactly", () => {
  expect(recorder.one("vnode", "kubernetes:apps/v1:DaemonSet").inputs).toEqual({
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: {
      name: "vnode-agent",
      namespace: "vnode-runtime",
      labels: { ...LABELS, "vnode.loft.sh/pool": "default" },
      // rollout.wait defaults to none: pulumi up does not wait for the rollout.
      annotations: { "pulumi.com/skipAwait": "true" },
    },
    spec: {
      selector: {
        matchLabels: {
          "app.kubernetes.io/name": "vnode-agent",
          "app.kubernetes.io/instance": "vnode",
          "vnode.loft.sh/pool": "default",
        },
      },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: {
          labels: { ...LABELS, "vnode.loft.sh/pool": "default" },
          annotations: {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "8090",
            "prometheus.io/path": "/metrics",
          },
        },
        spec: {
          serviceAccountName: "vnode-agent",
          automountServiceAccountToken: false,
          priorityClassName: "system-node-critical",
          terminationGracePeriodSeconds: 120,
          nodeSelector: { "kubernetes.io/os": "linux" },
          tolerations: [{ operator: "Exists" }],
          securityContext: { seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "agent",
              image: "ghcr.io/acme/vnode-agent:0.1.0",
              imagePullPolicy: "IfNotPresent",
              command: ["vnode-agent"],
              args: [
                "run",
                "--host-root",
                "/host",
                "--containerd-distribution",
                "containerd",
                "--handler",
                "vnode",
                "--restart",
                "systemd",
                "--listen",
                ":8090",
                "--runtime-classes",
                "vnode",
                "--daemonset",
                "vnode-agent",
                "--manager-socket",
                "/run/vnode/manager.sock",
                "--manager-container",
                "vnode-manager",
              ],
              env: [
                { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                {
                  name: "POD_NAMESPACE",
                  valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
                },
                { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                { name: "VNODE_PER_POD", value: "false" },
              ],
              ports: [{ name: "metrics", containerPort: 8090, protocol: "TCP" }],
              livenessProbe: {
                httpGet: { path: "/healthz", port: "metrics" },
                initialDelaySeconds: 10,
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 3,
              },
              readinessProbe: {
                httpGet: { path: "/readyz", port: "metrics" },
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 3,
              },
              resources: { requests: { cpu: "20m", memory: "64Mi" }, limits: { memory: "256Mi" } },
              terminationMessagePolicy: "FallbackToLogsOnError",
              securityContext: {
                runAsUser: 0,
                runAsGroup: 0,
                runAsNonRoot: false,
                privileged: false,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
                readOnlyRootFilesystem: true,
              },
              volumeMounts: [
                { name: "containerd-config", mountPath: "/host/etc/containerd", readOnly: false },
                { name: "containerd-socket", mountPath: "/host/run/containerd", readOnly: true },
                { name: "vnode-bin", mountPath: "/host/opt/vnode/bin", readOnly: false },
                { name: "cni-conf", mountPath: "/host/etc/cni/net.d", readOnly: true },
                { name: "vnode-cni-conf", mountPath: "/host/etc/vnode/cni/net.d", readOnly: false },
                { name: "cni-bin", mountPath: "/host/opt/cni/bin", readOnly: false },
                { name: "agent-state", mountPath: "/host/var/lib/vnode-agent", readOnly: false },
                { name: "dbus", mountPath: "/host/run/dbus", readOnly: true },
                { name: "tmp", mountPath: "/tmp" },
                {
                  name: "kube-api-access",
                  mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
                  readOnly: true,
                },
                { name: "vnode-run", mountPath: "/host/run/vnode", readOnly: true },
              ],
            },
            {
              name: "vnode-manager",
              image: "ghcr.io/acme/vnode-agent:0.1.0",
              imagePullPolicy: "IfNotPresent",
              command: ["/opt/vnode-payload/vnode-manager"],
              env: [
                { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                { name: "VNODE_PER_POD", value: "false" },
              ],
              terminationMessagePolicy: "FallbackToLogsOnError",
              securityContext: {
                privileged: true,
                seccompProfile: { type: "Unconfined" },
                runAsUser: 0,
                runAsGroup: 0,
                runAsNonRoot: false,
              },
              volumeMounts: [{ name: "vnode-run", mountPath: "/run/vnode" }],
            },
          ],
          volumes: [
            {
              name: "containerd-config",
              hostPath: { path: "/etc/containerd", type: "DirectoryOrCreate" },
            },
            { name: "containerd-socket", hostPath: { path: "/run/containerd", type: "Directory" } },
            { name: "vnode-bin", hostPath: { path: "/opt/vnode/bin", type: "DirectoryOrCreate" } },
            { name: "cni-conf", hostPath: { path: "/etc/cni/net.d", type: "DirectoryOrCreate" } },
            {
              name: "vnode-cni-conf",
              hostPath: { path: "/etc/vnode/cni/net.d", type: "DirectoryOrCreate" },
            },
            { name: "cni-bin", hostPath: { path: "/opt/cni/bin", type: "DirectoryOrCreate" } },
            {
              name: "agent-state",
              hostPath: { path: "/var/lib/vnode-agent", type: "DirectoryOrCreate" },
            },
            { name: "dbus", hostPath: { path: "/run/dbus", type: "Directory" } },
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
            {
              name: "kube-api-access",
              projected: {
                defaultMode: 0o644,
                sources: [
                  { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
                  {
                    configMap: {
                      name: "kube-root-ca.crt",
                      items: [{ key: "ca.crt", path: "ca.crt" }],
                    },
                  },
                  {
                    downwardAPI: {
                      items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }],
                    },
                  },
                ],
              },
            },
            { name: "vnode-run", hostPath: { path: "/run/vnode", type: "DirectoryOrCreate" } },
          ],
        },
      },
    },
  });
});

test("one RuntimeClass `vnode` pins pods to nodes where the runtime is ready in per-namespace mode", () => {
  expect(recorder.one("vnode", "kubernetes:node.k8s.io/v1:RuntimeClass").inputs).toEqual({
    apiVersion: "node.k8s.io/v1",
    kind: "RuntimeClass",
    metadata: {
      name: "vnode",
      labels: { ...LABELS, "vnode.loft.sh/isolation-mode": "per-namespace" },
    },
    handler: "vnode",
    overhead: { podFixed: { cpu: "10m", memory: "32Mi" } },
    scheduling: {
      nodeSelector: {
        "vnode.loft.sh/runtime": "ready",
        "vnode.loft.sh/isolation-mode": "per-namespace",
      },
    },
  });
});

test("no Secret and no PodMonitor without env values or pod-monitor metrics", () => {
  expect(recorder.byType("vnode", "kubernetes:core/v1:Secret")).toEqual([]);
  expect(recorder.byType("vnode", "kubernetes:apiextensions.k8s.io:CustomResource")).toEqual([]);
});

test("outputs", async () => {
  expect(await resolve(runtime.namespace)).toBe("vnode-runtime");
  expect(await resolve(runtime.runtimeClassNames)).toEqual({ "per-namespace": "vnode" });
  expect(await resolve(runtime.daemonSetNames)).toEqual(["vnode-agent"]);
  expect(await resolve(runtime.isolationModes)).toEqual(["per-namespace"]);
  expect(await resolve(runtime.vnodePerPod)).toBe(false);
  expect(await resolve(runtime.agentImageRef)).toBe("ghcr.io/acme/vnode-agent:0.1.0");
});
