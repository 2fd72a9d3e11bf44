/**
 * One list of admission cases for both enforcement backends: the webhook handler
 * (webhook-policy.test.ts) and the CEL admission policies (webhook-cel.test.ts) must give each
 * case exactly the expected result, so they agree with each other on every case.
 *
 * Bodies are real AdmissionReview v1 documents, as the API server sends them for a pod created
 * by a ReplicaSet (defaults applied, managedFields included).
 */
import {
  type EnforcementRulesInput,
  NAMESPACE_ISOLATION_LABEL,
  NAMESPACE_NAME_LABEL,
} from "vnode-contract";

/** The rules most cases run under: a cluster with both modes, per-namespace by default. */
export const RULES: EnforcementRulesInput = {
  classes: { "per-namespace": "vnode", "per-pod": "vnode-per-pod" },
  defaultMode: "per-namespace",
  excludedNamespaces: ["vnode-runtime"],
};

export interface Port {
  name?: string;
  containerPort: number;
  protocol?: string;
  hostPort?: number;
  hostIP?: string;
}
export interface Container {
  name: string;
  ports?: Port[];
}
export interface PodShape {
  runtimeClassName?: string;
  hostNetwork?: boolean;
  containers: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
}

export interface AdmissionCase {
  name: string;
  rules?: EnforcementRulesInput;
  namespace: string;
  namespaceLabels?: Record<string, string>;
  operation?: "CREATE" | "UPDATE";
  /** Another resource than pods, or a subresource: the policy must not judge it. */
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  pod: PodShape;
  /** The runtimeClassName the mutation sets, or null when the pod is left unchanged. */
  mutatedTo: string | null;
  /** The exact denial message of the validation, or null when allowed. */
  denied: string | null;
}

/** The tail of a runtime-class denial: the namespace's mode and its class. */
const requirement = (ns: string, mode = "per-namespace", cls = "vnode") =>
  `; namespace "${ns}" has isolation mode ${mode}, whose pods must use RuntimeClass "${cls}"`;
const perPod = (ns: string) => requirement(ns, "per-pod", "vnode-per-pod");
const NO_CLASS = "pod has no runtimeClassName";
/** The denial in a namespace whose isolation label this cluster cannot honour. */
const labelDenied = (ns: string, head: string, allowed = "one of per-namespace, per-pod") =>
  `namespace "${ns}" has label vnode.loft.sh/isolation${head}; no pod is admitted there until the label is ${allowed} or is removed (default mode per-namespace)`;
const UNKNOWN_VALUE = " with a value that is not an isolation mode";
const HOST_NETWORK =
  "hostNetwork is not supported by vNode: the pod sets spec.hostNetwork: true (for such pods the API server also sets every port's hostPort to its containerPort)";
const web = (ports?: Port[]): Container => ({ name: "web", ...(ports ? { ports } : {}) });

export const CASES: AdmissionCase[] = [
  {
    name: "no class, namespace without isolation label: the default mode's class",
    namespace: "team-a",
    pod: { containers: [web([{ containerPort: 8080 }])] },
    mutatedTo: "vnode",
    denied: `${NO_CLASS}${requirement("team-a")}`,
  },
  {
    name: "no class, namespace labelled per-pod: the per-pod class",
    namespace: "team-b",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-pod" },
    pod: { containers: [web()] },
    mutatedTo: "vnode-per-pod",
    denied: `${NO_CLASS}${perPod("team-b")}`,
  },
  {
    name: "no class, namespace labelled per-namespace",
    namespace: "team-c",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-namespace", team: "c" },
    pod: { containers: [web()] },
    mutatedTo: "vnode",
    denied: `${NO_CLASS}${requirement("team-c")}`,
  },
  {
    name: "unknown isolation label value: mutated to the default mode's class, denied with the label",
    namespace: "team-d",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "fast" },
    pod: { containers: [web()] },
    mutatedTo: "vnode",
    denied: labelDenied("team-d", UNKNOWN_VALUE),
  },
  {
    name: "empty runtimeClassName counts as none",
    namespace: "team-a",
    pod: { runtimeClassName: "", containers: [web()] },
    mutatedTo: "vnode",
    denied: `${NO_CLASS}${requirement("team-a")}`,
  },
  {
    name: "another class: left alone by the mutation, denied by the validation",
    namespace: "team-a",
    pod: { runtimeClassName: "runc", containers: [web()] },
    mutatedTo: null,
    denied: `pod uses runtimeClassName "runc", which is not a vNode RuntimeClass${requirement("team-a")}`,
  },
  {
    name: "another class with a hostPort: only the class is reported",
    namespace: "team-b",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-pod" },
    pod: {
      runtimeClassName: "gvisor",
      containers: [web([{ containerPort: 80, hostPort: 80 }])],
    },
    mutatedTo: null,
    denied: `pod uses runtimeClassName "gvisor", which is not a vNode RuntimeClass${perPod("team-b")}`,
  },
  {
    name: "vNode class with plain container ports: allowed",
    namespace: "team-a",
    pod: {
      runtimeClassName: "vnode",
      containers: [web([{ name: "http", containerPort: 8080, protocol: "TCP" }])],
      initContainers: [{ name: "setup" }],
    },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "vNode class with hostPort 0 (unset): allowed",
    namespace: "team-a",
    pod: { runtimeClassName: "vnode", containers: [web([{ containerPort: 8080, hostPort: 0 }])] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "vNode class with a hostPort",
    namespace: "team-a",
    pod: {
      runtimeClassName: "vnode",
      containers: [web([{ containerPort: 8080, hostPort: 8080, protocol: "TCP" }])],
    },
    mutatedTo: null,
    denied: `pod uses hostPort 8080 in container "web", which vNode does not support`,
  },
  {
    name: "vNode class with a hostIP only, in an init container",
    namespace: "team-a",
    pod: {
      runtimeClassName: "vnode",
      containers: [web()],
      initContainers: [{ name: "setup", ports: [{ containerPort: 53, hostIP: "10.0.0.5" }] }],
    },
    mutatedTo: null,
    denied: `pod uses hostIP 10.0.0.5 in init container "setup", which vNode does not support`,
  },
  {
    name: "per-pod class with host ports in every kind of container: all reported, in order",
    namespace: "team-b",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-pod" },
    pod: {
      runtimeClassName: "vnode-per-pod",
      containers: [
        web([{ containerPort: 8080, hostPort: 8080 }, { containerPort: 9090 }]),
        {
          name: "sidecar",
          ports: [{ containerPort: 9100, hostPort: 9100, hostIP: "127.0.0.1" }],
        },
      ],
      initContainers: [{ name: "setup", ports: [{ containerPort: 53, hostIP: "0.0.0.0" }] }],
      ephemeralContainers: [{ name: "debug", ports: [{ containerPort: 2345, hostPort: 2345 }] }],
    },
    mutatedTo: null,
    denied:
      `pod uses hostPort 8080 in container "web" and hostPort 9100 on hostIP 127.0.0.1 in container "sidecar" ` +
      `and hostIP 0.0.0.0 in init container "setup" and hostPort 2345 in ephemeral container "debug", ` +
      `which vNode does not support`,
  },
  {
    name: "two host ports in one container",
    namespace: "team-a",
    pod: {
      runtimeClassName: "vnode",
      containers: [
        web([
          { containerPort: 80, hostPort: 80 },
          { containerPort: 443, hostPort: 443 },
        ]),
      ],
    },
    mutatedTo: null,
    denied: `pod uses hostPort 80 in container "web" and hostPort 443 in container "web", which vNode does not support`,
  },
  {
    name: "the per-pod class in an unlabelled (default per-namespace) namespace: denied",
    namespace: "team-a",
    pod: { runtimeClassName: "vnode-per-pod", containers: [web()] },
    mutatedTo: null,
    denied: `pod uses runtimeClassName "vnode-per-pod", the RuntimeClass of isolation mode per-pod${requirement("team-a")}`,
  },
  {
    name: "the per-namespace class in a namespace labelled per-pod: denied",
    namespace: "build",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-pod" },
    pod: { runtimeClassName: "vnode", containers: [web()] },
    mutatedTo: null,
    denied: `pod uses runtimeClassName "vnode", the RuntimeClass of isolation mode per-namespace${perPod("build")}`,
  },
  {
    name: "the per-pod class in a namespace labelled per-pod: allowed",
    namespace: "build",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-pod" },
    pod: { runtimeClassName: "vnode-per-pod", containers: [web([{ containerPort: 8080 }])] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "an empty isolation label is not unset: denied with the label",
    namespace: "team-e",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "" },
    pod: { runtimeClassName: "vnode", containers: [web()] },
    mutatedTo: null,
    denied: labelDenied("team-e", UNKNOWN_VALUE),
  },
  {
    name: "a label that is a mode only in another case (Per-Pod): denied with the label",
    namespace: "team-f",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "Per-Pod" },
    pod: { runtimeClassName: "vnode-per-pod", containers: [web()] },
    mutatedTo: null,
    denied: labelDenied("team-f", UNKNOWN_VALUE),
  },
  {
    name: "hostNetwork under the namespace's class: the hostNetwork message, not the defaulted hostPorts",
    namespace: "team-a",
    pod: {
      runtimeClassName: "vnode",
      hostNetwork: true,
      // What the API server stores for a hostNetwork pod: hostPort defaulted to containerPort.
      containers: [web([{ containerPort: 80, hostPort: 80 }])],
    },
    mutatedTo: null,
    denied: HOST_NETWORK,
  },
  {
    name: "hostNetwork under another class: the class is reported first",
    namespace: "team-a",
    pod: {
      runtimeClassName: "runc",
      hostNetwork: true,
      containers: [web([{ containerPort: 80, hostPort: 80 }])],
    },
    mutatedTo: null,
    denied: `pod uses runtimeClassName "runc", which is not a vNode RuntimeClass${requirement("team-a")}`,
  },
  {
    name: "hostNetwork false is the default: allowed",
    namespace: "team-a",
    pod: { runtimeClassName: "vnode", hostNetwork: false, containers: [web()] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "kube-system is never touched",
    namespace: "kube-system",
    pod: { containers: [web([{ containerPort: 53, hostPort: 53 }])] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "kube-node-lease is never touched",
    namespace: "kube-node-lease",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-pod" },
    pod: { runtimeClassName: "runc", containers: [web()] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "the runtime's own namespace is never touched",
    namespace: "vnode-runtime",
    pod: { containers: [{ name: "agent" }] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "UPDATE of a pod without a class: not judged",
    namespace: "team-a",
    operation: "UPDATE",
    pod: { containers: [web()] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "CREATE of the pods/binding subresource: not judged",
    namespace: "team-a",
    subResource: "binding",
    pod: { containers: [web()] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "CREATE of another resource: not judged",
    namespace: "team-a",
    resource: { group: "apps", version: "v1", resource: "deployments" },
    pod: { containers: [web()] },
    mutatedTo: null,
    denied: null,
  },
  {
    name: "single per-pod cluster: an unlabelled namespace gets its one class",
    rules: { classes: { "per-pod": "vnode" } },
    namespace: "ci",
    pod: { containers: [web()] },
    mutatedTo: "vnode",
    denied: `${NO_CLASS}${requirement("ci", "per-pod", "vnode")}`,
  },
  {
    name: "single per-pod cluster: a namespace labelled per-namespace (not offered) is denied",
    rules: { classes: { "per-pod": "vnode" } },
    namespace: "ci",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-namespace" },
    pod: { runtimeClassName: "vnode", containers: [web()] },
    mutatedTo: null,
    denied:
      'namespace "ci" has label vnode.loft.sh/isolation=per-namespace, an isolation mode this cluster does not offer; no pod is admitted there until the label is per-pod or is removed (default mode per-pod)',
  },
  {
    name: "single per-namespace cluster: a namespace labelled per-pod is mutated, then denied",
    rules: { classes: { "per-namespace": "vnode" } },
    namespace: "builds",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-pod" },
    pod: { containers: [web()] },
    mutatedTo: "vnode",
    denied:
      'namespace "builds" has label vnode.loft.sh/isolation=per-pod, an isolation mode this cluster does not offer; no pod is admitted there until the label is per-namespace or is removed (default mode per-namespace)',
  },
  {
    name: "default mode per-pod: unlabelled namespaces get the per-pod class",
    rules: { ...RULES, defaultMode: "per-pod" },
    namespace: "builds",
    pod: { containers: [web()] },
    mutatedTo: "vnode-per-pod",
    denied: `${NO_CLASS}${perPod("builds")}`,
  },
  {
    name: "default mode per-pod: a namespace labelled per-namespace gets that class",
    rules: { ...RULES, defaultMode: "per-pod" },
    namespace: "tenant",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "per-namespace" },
    pod: { containers: [web()] },
    mutatedTo: "vnode",
    denied: `${NO_CLASS}${requirement("tenant")}`,
  },
  {
    name: "default mode per-pod: an unknown label names the default mode per-pod",
    rules: { ...RULES, defaultMode: "per-pod" },
    namespace: "tenant",
    namespaceLabels: { [NAMESPACE_ISOLATION_LABEL]: "isolated" },
    pod: { runtimeClassName: "vnode-per-pod", containers: [web()] },
    mutatedTo: null,
    denied:
      'namespace "tenant" has label vnode.loft.sh/isolation with a value that is not an isolation mode; no pod is admitted there until the label is one of per-namespace, per-pod or is removed (default mode per-pod)',
  },
];

/** The namespace object the API server would hand a policy (`namespaceObject`). */
export function namespaceObject(c: AdmissionCase) {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: c.namespace,
      uid: "4f6a4a9e-9d0c-4d7e-8d0c-2b6a1f0c9e11",
      labels: { [NAMESPACE_NAME_LABEL]: c.namespace, ...(c.namespaceLabels ?? {}) },
    },
    spec: { finalizers: ["kubernetes"] },
    status: { phase: "Active" },
  };
}

const container = (c: Container, image: string) => ({
  name: c.name,
  image,
  ...(c.ports ? { ports: c.ports.map((p) => ({ protocol: "TCP", ...p })) } : {}),
  resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
  env: [{ name: "LOG_LEVEL", value: "info" }],
  volumeMounts: [
    {
      name: "kube-api-access-x7k2p",
      readOnly: true,
      mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
    },
  ],
  terminationMessagePath: "/dev/termination-log",
  terminationMessagePolicy: "File",
  imagePullPolicy: "IfNotPresent",
});

/** A pod as a ReplicaSet creates it, after the API server's defaulting. */
export function podObject(c: AdmissionCase) {
  const s = c.pod;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "web-6d4cf56db6-",
      namespace: c.namespace,
      labels: { app: "web", "pod-template-hash": "6d4cf56db6" },
      annotations: { "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z" },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: "web-6d4cf56db6",
          uid: "0b5e8a2c-3f3e-4b8e-9c1a-7d2f8e6a4b10",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      managedFields: [
        {
          manager: "kube-controller-manager",
          operation: "Update",
          apiVersion: "v1",
          time: "2025-01-01T00:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:metadata": { "f:generateName": {}, "f:labels": { ".": {} } } },
        },
      ],
    },
    spec: {
      ...(s.runtimeClassName !== undefined ? { runtimeClassName: s.runtimeClassName } : {}),
      ...(s.hostNetwork !== undefined ? { hostNetwork: s.hostNetwork } : {}),
      volumes: [{ name: "kube-api-access-x7k2p", projected: { defaultMode: 420, sources: [] } }],
      containers: s.containers.map((x) => container(x, "registry.example/web:1.4.2")),
      ...(s.initContainers
        ? { initContainers: s.initContainers.map((x) => container(x, "busybox:1.36")) }
        : {}),
      ...(s.ephemeralContainers
        ? { ephemeralContainers: s.ephemeralContainers.map((x) => container(x, "busybox:1.36")) }
        : {}),
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      serviceAccountName: "default",
      serviceAccount: "default",
      securityContext: {},
      schedulerName: "default-scheduler",
      tolerations: [
        {
          key: "node.kubernetes.io/not-ready",
          operator: "Exists",
          effect: "NoExecute",
          tolerationSeconds: 300,
        },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: "PreemptLowerPriority",
    },
    status: {},
  };
}

/** The AdmissionReview v1 request the API server sends for the case. */
export function admissionReview(c: AdmissionCase, uid = "705ab4f5-6393-11e8-b7cc-42010a800002") {
  const resource = c.resource ?? { group: "", version: "v1", resource: "pods" };
  const operation = c.operation ?? "CREATE";
  const object = podObject(c);
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource,
      ...(c.subResource ? { subResource: c.subResource } : {}),
      requestKind: { group: "", version: "v1", kind: "Pod" },
      requestResource: resource,
      namespace: c.namespace,
      operation,
      userInfo: {
        username: "system:serviceaccount:kube-system:replicaset-controller",
        uid: "8a6f1c1e-5b7e-4c55-9a55-0d2a7b0f3c21",
        groups: [
          "system:serviceaccounts",
          "system:serviceaccounts:kube-system",
          "system:authenticated",
        ],
      },
      object,
      oldObject: operation === "UPDATE" ? object : null,
      dryRun: false,
      options: {
        apiVersion: "meta.k8s.io/v1",
        kind: operation === "UPDATE" ? "UpdateOptions" : "CreateOptions",
      },
    },
  };
}
