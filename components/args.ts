/**
 * The arguments of `VNodeRuntime`. Pulumi infers the package schema for Python, Go and YAML
 * from these declarations, so they use the package's own flat interfaces and enum-like constants
 * only (an `as const` object plus the string-literal union of its values, the shape Pulumi's
 * generated SDKs use, which the schema Analyzer reads as an enum): no other union types, no
 * functions, and no interface name that collides with another. Flags that decide whether
 * a child exists are plain values (never `Input<...>`), so the decision is synchronous; values that
 * only go into Kubernetes objects are `Input<...>` (they may come from another resource), checked
 * when known (see validate/known.ts). Kubernetes types are `@pulumi/kubernetes`'s own input types.
 */
import type * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import { EnforcementScope, IsolationMode, PodSecurityLevel } from "vnode-contract";

/**
 * vNode's isolation granularity (`per-namespace` or `per-pod`), defined once in the contract
 * with its `VNODE_PER_POD` encoding. It is node-wide: every vNode on a node uses its agent's mode.
 * `"per-pod"` and `IsolationMode.PerPod` both type-check.
 */
export { IsolationMode };

/**
 * Which namespaces tenancy enforcement applies to: `selected` (those `namespaceSelector` selects,
 * opt-in) or `all-except-exempt` (every namespace unless labelled
 * `vnode.loft.sh/enforcement-exempt=true`, opt-out). Values are the contract's.
 */
export { EnforcementScope };

/**
 * Pod Security Standards level set on the namespaces enforcement enforces (`baseline` or
 * `restricted`). Values are the contract's.
 */
export { PodSecurityLevel };

/**
 * How far a ValidatingAdmissionPolicy confines the agent's node writes beyond RBAC, which can
 * only grant `patch` on every node and every field. Values are the contract's `AgentConfinement`.
 */
export enum AgentConfinement {
  /**
   * Only the node named in the agent's token (user extra `authentication.kubernetes.io/node-name`,
   * Kubernetes >= 1.30 by default) and only the agent's own label keys.
   */
  NodeAndLabels = "node-and-labels",
  /**
   * Only the agent's own label keys, on any node: the fallback for clusters whose tokens carry no
   * node name (the feature gate `ServiceAccountTokenPodNodeInfo` off).
   */
  LabelsOnly = "labels-only",
  /** No policy: RBAC alone. Also for clusters without ValidatingAdmissionPolicy v1 (< 1.30). */
  None = "none",
}

/** Where the node's containerd keeps its config and socket; picks the host paths the agent mounts. */
export const ContainerdDistribution = {
  /** Plain containerd (kubeadm, kind, EKS, GKE, AKS): `/etc/containerd`. */
  Containerd: "containerd",
  /** k3s: `/var/lib/rancher/k3s/agent/etc/containerd`, config rendered from a template. */
  K3s: "k3s",
  /** RKE2: `/var/lib/rancher/rke2/agent/etc/containerd`, config rendered from a template. */
  Rke2: "rke2",
  /** MicroK8s: `/var/snap/microk8s/current/args`. */
  Microk8s: "microk8s",
  /** k0s: `/etc/k0s`. */
  K0s: "k0s",
} as const;
export type ContainerdDistribution =
  (typeof ContainerdDistribution)[keyof typeof ContainerdDistribution];

/** How the agent restarts containerd after it changed containerd's config. */
export const RestartStrategy = {
  /** Ask systemd over the host's D-Bus socket to restart the containerd unit. */
  Systemd: "systemd",
  /** Send containerd SIGTERM and let its supervisor restart it; needs the host PID namespace. */
  Kill: "kill",
  /** Never restart; an operator restarts containerd. */
  None: "none",
} as const;
export type RestartStrategy = (typeof RestartStrategy)[keyof typeof RestartStrategy];

/** How Prometheus finds the agent's `/metrics` endpoint. */
export const MetricsMode = {
  /** `prometheus.io/scrape`, `prometheus.io/port` and `prometheus.io/path` annotations on the agent pods. */
  Annotations: "annotations",
  /** A `monitoring.coreos.com/v1` PodMonitor for the Prometheus Operator (its CRDs must be installed). */
  PodMonitor: "pod-monitor",
  /** Neither. */
  None: "none",
} as const;
export type MetricsMode = (typeof MetricsMode)[keyof typeof MetricsMode];

/**
 * Platforms the agent image can be built for. The agent and vNode run on Linux nodes only. The
 * Dockerfile's build stage runs on the build machine's platform (the bundle is plain JavaScript),
 * so only the small runtime stage is built per platform.
 */
export const AgentImagePlatform = {
  /** x86-64 nodes. */
  LinuxAmd64: "linux/amd64",
  /**
   * 64-bit ARM nodes (AWS Graviton, Ampere). Building it on an x86-64 machine needs an arm64
   * builder or QEMU registered through binfmt_misc for the runtime stage, and the vNode payload
   * (`vnodeImage`) must be a multi-platform image with arm64 binaries.
   */
  LinuxArm64: "linux/arm64",
} as const;
export type AgentImagePlatform = (typeof AgentImagePlatform)[keyof typeof AgentImagePlatform];

/** The registry the built agent image is pushed to, and the credentials to push with. */
export interface AgentImageRegistryArgs {
  /**
   * Host (and port) of the registry, without scheme or path, e.g. `ghcr.io`, `docker.io`,
   * `123456789012.dkr.ecr.eu-west-1.amazonaws.com` or `registry.example.com:5000`. Required.
   * Becomes the first part of the image name and the Image's `registries[0].address`.
   */
  address: pulumi.Input<string>;
  /**
   * User name to push with. Set together with `password`; with neither, the builder uses the
   * credentials it already has (e.g. `docker login`).
   */
  username?: pulumi.Input<string>;
  /**
   * Password or token to push with, set together with `username`. Always handled as a Pulumi
   * secret: encrypted in state, never part of a Kubernetes object.
   */
  password?: pulumi.Input<string>;
}

/**
 * Builds the agent image from this repository's `agent/Dockerfile` with `@pulumi/docker-build`
 * and pushes it. The DaemonSets run the pushed image by digest (`<name>:<tag>@sha256:...`), so a
 * build whose content changed rolls the agents and an unchanged one does not, whatever the tag.
 */
export interface AgentImageBuildArgs {
  /** Where the image is pushed. Required. */
  registry: AgentImageRegistryArgs;
  /**
   * Repository path inside the registry, e.g. `acme/vnode-agent`; the image name is
   * `<registry.address>/<repository>`. Required. Lowercase path components separated by `/`.
   */
  repository: pulumi.Input<string>;
  /**
   * Tag pushed, e.g. `0.1.0`. Defaults to the agent package's version (`agent/package.json`). Also
   * becomes the image's `org.opencontainers.image.version` label (build arg `VERSION`) unless
   * `buildArgs.VERSION` is set. Pushing new content under an existing tag still rolls the
   * agents, because they run the image by digest.
   */
  tag?: string;
  /**
   * Push the image. Defaults to `true`, and must be `true`: the nodes pull the agent image from
   * the registry, and the DaemonSets run it by the digest the push returns, so an image that is
   * only built cannot run. `false` is rejected; to check that the image builds without pushing,
   * run `pulumi preview` (docker-build builds on preview and never pushes then).
   */
  push?: boolean;
  /**
   * Platforms built into one multi-platform image. Defaults to `["linux/amd64"]`. Add
   * `linux/arm64` for ARM nodes (see `AgentImagePlatform`). The cache of a multi-platform build is
   * unreliable (docker/buildx discussion 1382); prefer one platform when `cacheTo` is set.
   */
  platforms?: AgentImagePlatform[];
  /**
   * Registry cache images to import layers from, e.g. `["ghcr.io/acme/vnode-agent:cache"]`
   * (docker-build `cacheFrom[].registry.ref`). Defaults to none.
   */
  cacheFrom?: pulumi.Input<string>[];
  /**
   * Registry cache image to export every layer to, including the build stage's (`mode: max`, an
   * OCI image manifest, so ECR and every OCI registry accept it), e.g.
   * `ghcr.io/acme/vnode-agent:cache`. Defaults to none. Usually also listed in `cacheFrom`.
   */
  cacheTo?: pulumi.Input<string>;
  /**
   * `ARG` values of the Dockerfile. With the default Dockerfile the keys are its ARGs:
   * `BUILD_IMAGE` and `BASE_IMAGE` (base images, for mirrors and air-gapped registries),
   * `NPM_CONFIG_REGISTRY`, `VERSION`, `REVISION` and `SOURCE` (OCI labels); not `VNODE_IMAGE` or
   * `VNODE_PAYLOAD`, which the component sets from `vnodeImage`. Build args are stored in the
   * image: never put a secret here. Defaults to `VERSION` = the tag.
   */
  buildArgs?: { [key: string]: string };
  /**
   * Build context directory, relative to the Pulumi program's working directory or absolute.
   * Defaults to the repository that contains this package (the directory above `components/`),
   * relative when the program runs inside it, so the state holds no machine-specific path.
   */
  context?: string;
  /**
   * Dockerfile path, relative to the Pulumi program's working directory or absolute. Defaults to
   * `agent/Dockerfile` under `context`.
   */
  dockerfile?: string;
}

/** The agent image the DaemonSets run: exactly one of `ref` and `build`. */
export interface AgentImageArgs {
  /**
   * Image reference of a prebuilt node agent image, e.g. `ghcr.io/acme/vnode-agent:0.1.0` or a
   * digest-pinned `...@sha256:...`. Becomes the DaemonSet container's `image`. Exclusive with
   * `build`.
   */
  ref?: pulumi.Input<string>;
  /**
   * Builds and pushes the agent image from this repository instead; the DaemonSets run the pushed
   * image by digest. Exclusive with `ref`.
   */
  build?: AgentImageBuildArgs;
}

/**
 * Kubernetes tolerations (`core/v1 Toleration`): a list, each element, or the whole list may come
 * from another resource. `operator` is `Exists` or `Equal` (the default), `effect` one of
 * `NoSchedule`, `PreferNoSchedule`, `NoExecute` or empty (every effect).
 */
export type TolerationsInput = pulumi.Input<pulumi.Input<k8s.types.input.core.v1.Toleration>[]>;

/** A map of label (or annotation) keys to values; the map or any value may come from another resource. */
export type StringMapInput = pulumi.Input<{ [key: string]: pulumi.Input<string> }>;

/** CPU and memory quantities (Kubernetes quantity syntax, e.g. `100m`, `64Mi`). */
export interface QuantitiesArgs {
  /** CPU quantity, e.g. `100m`. */
  cpu?: string;
  /** Memory quantity, e.g. `128Mi`. */
  memory?: string;
}

/** Requests and limits of a container (the manager's `resources`). */
export interface AgentResourcesArgs {
  /** CPU and memory requests. */
  requests?: QuantitiesArgs;
  /** CPU and memory limits. */
  limits?: QuantitiesArgs;
}

/** Rolling update of the agent DaemonSets. */
/**
 * vNode's manager (`vnode-manager`), the node's long-running vNode process, which the DaemonSet runs
 * as its own container beside the agent. vNode does not document the manager's flags or socket
 * path, so both are inputs: set them to what your vNode release uses.
 */
export interface ManagerArgs {
  /**
   * Host path of the manager's unix socket (absolute). Defaults to `/run/vnode/manager.sock`. Its
   * directory is mounted read-write into the manager container and read-only into the agent,
   * whose readiness (`--manager-socket`) waits until a connect to it succeeds; so the directory
   * must be one of its own (at least two levels deep, e.g. `/run/vnode`), not one the agent
   * already mounts. This does not tell the manager where to listen: pass that in `args` if your
   * release takes it.
   */
  socketPath?: string;
  /** Arguments of the manager container (after `vnode-manager`). Defaults to none. */
  args?: string[];
  /**
   * Resources of the manager container. Defaults to none. A memory limit the manager reaches
   * restarts it, and with it every vNode and workload on the node.
   */
  resources?: AgentResourcesArgs;
  /**
   * Put the agent's pod in the host's PID namespace for the manager (`hostPID` is pod-wide, so
   * the agent shares it). Defaults to `false`: the manager creates the vNode sandboxes itself, so
   * their processes are visible in its own PID namespace (see the README's Security section).
   * Only for a vNode release that needs to see host processes.
   */
  hostPID?: boolean;
}

export interface UpdateStrategyArgs {
  /**
   * Nodes whose agent is replaced at the same time, as a count (`rollingUpdate.maxUnavailable`).
   * Defaults to `1`. A new agent may restart containerd, and restarting the runtime restarts every
   * vNode and every workload in it on that node, so raise this deliberately. Exclusive with
   * `maxUnavailablePercent`.
   */
  maxUnavailable?: number;
  /**
   * Nodes whose agent is replaced at the same time, as a percentage of the pool's nodes from 1 to
   * 100 (`rollingUpdate.maxUnavailable: "<n>%"`, rounded up by Kubernetes, so at least one node).
   * Exclusive with `maxUnavailable`.
   */
  maxUnavailablePercent?: number;
}

/** What `pulumi up` waits for after it created or changed an agent DaemonSet. */
export const RolloutWait = {
  /**
   * Nothing: `pulumi up` is done once the API server accepted the DaemonSet (annotation
   * `pulumi.com/skipAwait: "true"`); the rollout goes on in the cluster. Never fails a cluster
   * with nodes whose agent stays unready by design (failed preflight).
   */
  None: "none",
  /**
   * Every scheduled agent pod updated and ready (the Kubernetes provider's DaemonSet await), at
   * most `rollout.timeoutSeconds`; a node whose preflight fails keeps its agent unready, so the
   * update then fails at the timeout.
   */
  Ready: "ready",
} as const;
export type RolloutWait = (typeof RolloutWait)[keyof typeof RolloutWait];

/** How `pulumi up` follows the rollout of the agent DaemonSets. */
export interface RolloutArgs {
  /** What `pulumi up` waits for. Defaults to `none`. */
  wait?: RolloutWait;
  /**
   * Seconds `pulumi up` waits for a DaemonSet with wait `ready` before it fails (the resource's
   * `customTimeouts` create and update). Defaults to `600`, the provider's own default. A rollout
   * takes about maxUnavailable nodes per (image pull + install + readiness period), so size it
   * for the pool's node count. Only with wait `ready`.
   */
  timeoutSeconds?: number;
}

/**
 * The RuntimeClasses' `overhead.podFixed`: resources the scheduler and the kubelet add to every pod
 * that uses the class. The defaults are estimates, not measurements: per-namespace `10m`/`32Mi`
 * (the vNode is shared by the namespace's pods), per-pod `50m`/`96Mi` (one vNode per pod).
 */
export interface OverheadArgs {
  /** Set `false` to create the RuntimeClasses without `overhead`. Defaults to `true`. */
  enabled?: boolean;
  /** Overrides the per-namespace class's `podFixed`; unset fields keep their default. */
  perNamespace?: QuantitiesArgs;
  /** Overrides the per-pod class's `podFixed`; unset fields keep their default. */
  perPod?: QuantitiesArgs;
}

/**
 * A group of nodes with one isolation mode. Each pool gets its own agent DaemonSet; each mode in
 * use gets one RuntimeClass that only schedules onto nodes whose agent runs that mode.
 */
export interface PoolArgs {
  /** DNS-1123 label naming the pool; the DaemonSet is `<name>-agent-<pool>`. Unique among pools. */
  name: string;
  /** The pool's mode. Defaults to the component's `isolationMode`. */
  isolationMode?: IsolationMode;
  /**
   * Labels selecting the pool's nodes (merged into the DaemonSet's `nodeSelector`). Required when
   * there is more than one pool, and any two pools must differ in the value of a common key, so
   * that no node runs two agents.
   */
  nodeSelector?: StringMapInput;
  /**
   * Taints of the pool's nodes that pods using this pool's RuntimeClass must tolerate; added to
   * the class's `scheduling.tolerations`. The agent itself tolerates everything by default.
   */
  tolerations?: TolerationsInput;
}

/** A reference to a key of an existing Kubernetes Secret in the runtime namespace. */
export interface SecretKeyRefArgs {
  /** The Secret's name. */
  name: string;
  /** The key inside the Secret. */
  key: string;
}

/** An extra environment variable of the agent container. */
export interface AgentEnvArgs {
  /** Variable name. `NODE_NAME`, `POD_NAMESPACE` and `VNODE_PER_POD` are set by the component. */
  name: string;
  /**
   * The value. A plain string becomes a literal `value`. A value only known at deploy time (an
   * Output, which may be a Pulumi secret) is stored in the Kubernetes Secret `<name>-agent-env`
   * and referenced through `secretKeyRef`, so it never appears in the pod spec. Exclusive with
   * `secretKeyRef`.
   */
  value?: pulumi.Input<string>;
  /** Reads the value from an existing Secret in the runtime namespace. Exclusive with `value`. */
  secretKeyRef?: SecretKeyRefArgs;
}

/** Prometheus scraping of the agent's `/metrics` (port `metrics`, 8090). */
export interface MetricsArgs {
  /** Defaults to `annotations`. */
  mode?: MetricsMode;
  /** Scrape interval of the PodMonitor, e.g. `30s`. Defaults to `30s`. Only with mode `pod-monitor`. */
  interval?: string;
  /** Labels on the PodMonitor, to match a Prometheus's `podMonitorSelector`. Only with mode `pod-monitor`. */
  podMonitorLabels?: { [key: string]: string };
}

/** What tenancy enforcement does to pods created in tenant namespaces. */
export const EnforcementMode = {
  /**
   * Set `runtimeClassName` on pods created without one, to the vNode class of the namespace's
   * isolation mode. Pods that ask for another class are left alone.
   */
  Mutate: "mutate",
  /**
   * Reject pods whose `runtimeClassName` is missing or not a vNode class, and vNode pods that use
   * `hostPort` or `hostIP` (unsupported inside vNode), with a message that says why.
   */
  Validate: "validate",
  /** Both: set the class where it is missing, then reject pods that still escape. */
  MutateAndValidate: "mutate-and-validate",
} as const;
export type EnforcementMode = (typeof EnforcementMode)[keyof typeof EnforcementMode];

/** What enforces the rules in the API server's admission chain. */
export const EnforcementBackend = {
  /**
   * An admission webhook served by the agent image (`vnode-agent webhook`): a Deployment of 2
   * replicas, a PodDisruptionBudget, a Service, and Mutating/ValidatingWebhookConfigurations, with
   * TLS from cert-manager (see `certManager`). Works on every supported Kubernetes version.
   */
  Webhook: "webhook",
  /**
   * CEL policies evaluated in the API server, with no server to run: a ValidatingAdmissionPolicy
   * (`admissionregistration.k8s.io/v1`, Kubernetes >= 1.30) and a MutatingAdmissionPolicy (see
   * `EnforcementArgs.mutatingPolicyApiVersion` for the versions and feature gate it needs).
   */
  AdmissionPolicy: "admission-policy",
} as const;
export type EnforcementBackend = (typeof EnforcementBackend)[keyof typeof EnforcementBackend];

/** What the API server does when enforcement cannot answer (webhook down, CEL error). */
export const FailurePolicy = {
  /** Reject the pod. */
  Fail: "Fail",
  /** Admit the pod unchanged. */
  Ignore: "Ignore",
} as const;
export type FailurePolicy = (typeof FailurePolicy)[keyof typeof FailurePolicy];

/** API version of the MutatingAdmissionPolicy and its binding (`admissionregistration.k8s.io/...`). */
export const MutatingPolicyApiVersion = {
  /** GA and enabled by default from Kubernetes 1.36. */
  V1: "v1",
  /**
   * Kubernetes 1.34 and 1.35: beta, off by default; needs the kube-apiserver feature gate
   * `MutatingAdmissionPolicy=true` and `--runtime-config=admissionregistration.k8s.io/v1beta1=true`.
   */
  V1beta1: "v1beta1",
  /**
   * Kubernetes 1.32 and 1.33: alpha; needs the feature gate `MutatingAdmissionPolicy=true` and
   * `--runtime-config=admissionregistration.k8s.io/v1alpha1=true`.
   */
  V1alpha1: "v1alpha1",
} as const;
export type MutatingPolicyApiVersion =
  (typeof MutatingPolicyApiVersion)[keyof typeof MutatingPolicyApiVersion];

/** Operator of a label selector requirement (`meta/v1 LabelSelectorRequirement.operator`). */
export const LabelSelectorOperator = {
  /** The label's value is one of `values`. */
  In: "In",
  /** The label is missing or its value is none of `values`. */
  NotIn: "NotIn",
  /** The label is set, whatever its value; `values` must be empty. */
  Exists: "Exists",
  /** The label is not set; `values` must be empty. */
  DoesNotExist: "DoesNotExist",
} as const;
export type LabelSelectorOperator =
  (typeof LabelSelectorOperator)[keyof typeof LabelSelectorOperator];

/** One requirement of a label selector (`meta/v1 LabelSelectorRequirement`). */
export interface LabelSelectorRequirementArgs {
  /** The label key. */
  key: string;
  /** How the label's value relates to `values`. */
  operator: LabelSelectorOperator;
  /** Non-empty with `In` and `NotIn`; empty or unset with `Exists` and `DoesNotExist`. */
  values?: string[];
}

/** A label selector (`meta/v1 LabelSelector`): every `matchLabels` pair and every requirement must hold. */
export interface LabelSelectorArgs {
  /** Labels the object must carry with exactly these values. */
  matchLabels?: { [key: string]: string };
  /** Requirements the object's labels must meet. */
  matchExpressions?: LabelSelectorRequirementArgs[];
}

/**
 * Who may add, change or remove the namespace labels enforcement trusts: the keys of the tenant
 * selector (with scope `all-except-exempt`, `vnode.loft.sh/enforcement-exempt`), the isolation
 * label `vnode.loft.sh/isolation`, and with `podSecurityLevel` the Pod Security
 * `enforce`/`enforce-version` labels of enforced namespaces. A ValidatingAdmissionPolicy (backend
 * `admission-policy`) or a validating webhook route (backend `webhook`) on namespace CREATE and
 * UPDATE denies everyone else, naming the label and the groups that may.
 */
export interface NamespaceLabelGuardArgs {
  /**
   * Guard the labels. Defaults to `true`. `false` leaves them to RBAC alone (anyone who may update
   * a namespace may switch its enforcement off); not allowed with scope `all-except-exempt` or with
   * `podSecurityLevel`, which only hold with the guard.
   */
  enabled?: boolean;
  /**
   * Groups whose members may change the guarded labels, e.g. the platform team's group, or
   * `system:serviceaccounts:argocd` for a GitOps controller that applies namespace labels.
   * `system:masters` always may (admission judges it like anyone else). Defaults to none.
   * `system:authenticated`, `system:unauthenticated` and `system:serviceaccounts` are refused:
   * everyone is in them.
   */
  platformGroups?: string[];
}

/**
 * Tenancy enforcement: puts the pods of tenant namespaces into vNode and rejects pods that try to
 * escape it, at admission, without editing workloads. The runtime namespace, `kube-system` and
 * `kube-node-lease` (and, with `certManager.install`, cert-manager's namespace) are always
 * excluded, whatever the selector says, so enforcement never blocks the runtime or the control
 * plane. Only pod CREATE is judged: pods that exist keep running.
 */
export interface EnforcementArgs {
  /**
   * Which namespaces are enforced. Defaults to `selected` (opt-in, as before this input existed):
   * switching a running cluster to `all-except-exempt` enforces vNode on every namespace that is
   * not labelled exempt, ingress controllers and monitoring included, so label those first.
   */
  scope?: EnforcementScope;
  /**
   * Selects the tenant namespaces by their labels, e.g. `{ matchLabels: { tenant: "true" } }`.
   * Required with scope `selected`, not allowed with `all-except-exempt`; with at least one label
   * or requirement: an empty selector would enforce vNode on
   * every namespace. Becomes each webhook's (or policy binding's) `namespaceSelector`, merged with
   * the exclusions and, for mutation, the isolation routing: a namespace labelled
   * `vnode.loft.sh/isolation=per-pod` (or `per-namespace`) gets that mode's RuntimeClass when the
   * pools offer both modes; other namespaces get the class of `isolationMode`.
   */
  namespaceSelector?: LabelSelectorArgs;
  /** What enforcement does: `mutate`, `validate` or `mutate-and-validate`. Required. */
  mode: EnforcementMode;
  /**
   * What the API server does with a pod when the mutation cannot answer (webhook down, CEL
   * error): the mutating webhook's (or MutatingAdmissionPolicy's) `failurePolicy`. Defaults to
   * `Ignore`: the pod goes on unchanged, and validation (when enabled) still judges it.
   */
  mutateFailurePolicy?: FailurePolicy;
  /**
   * What the API server does with a pod when the validation cannot answer: the validating
   * webhook's (or ValidatingAdmissionPolicy's) `failurePolicy`. Defaults to `Fail`: no pod of a
   * tenant namespace is admitted unchecked. `Ignore` is a hole, and needs
   * `acknowledgeValidationFailOpen: true`: whoever can make the webhook fail (overload it, or
   * wait for a bad rollout) can then run a pod under any RuntimeClass, `runc` included.
   */
  validateFailurePolicy?: FailurePolicy;
  /**
   * Set to `true` to accept `validateFailurePolicy: Ignore` and the hole it opens (see there).
   * Defaults to `false`; only allowed with `validateFailurePolicy: Ignore`.
   */
  acknowledgeValidationFailOpen?: boolean;
  /** What enforces the rules. Defaults to `webhook`. */
  backend?: EnforcementBackend;
  /**
   * API version of the MutatingAdmissionPolicies with backend `admission-policy`, for a mode that
   * mutates or for `podSecurityLevel`. Defaults to `v1` (Kubernetes >= 1.36). Only with backend
   * `admission-policy`.
   */
  mutatingPolicyApiVersion?: MutatingPolicyApiVersion;
  /** The namespace label guard. Defaults to enabled, with no platform group but `system:masters`. */
  namespaceLabelGuard?: NamespaceLabelGuardArgs;
  /**
   * Pod Security level (defence in depth under vNode) given to the enforced namespaces: a mutation
   * on namespace CREATE and UPDATE adds `pod-security.kubernetes.io/enforce: <level>` where that
   * label is unset (the mutating webhook with backend `webhook`; a MutatingAdmissionPolicy of
   * `mutatingPolicyApiVersion` with backend `admission-policy`), and the guard lets only the
   * platform groups set another value or `enforce-version`. Namespaces that exist get it on their
   * next update (see the README). Defaults to none.
   */
  podSecurityLevel?: PodSecurityLevel;
}

/** Kind of a cert-manager issuer. */
export const IssuerKind = {
  /** A namespaced `Issuer`; it must live in the runtime namespace. */
  Issuer: "Issuer",
  /** A cluster-wide `ClusterIssuer`. */
  ClusterIssuer: "ClusterIssuer",
} as const;
export type IssuerKind = (typeof IssuerKind)[keyof typeof IssuerKind];

/** A cert-manager issuer that signs the webhook's serving certificate (`Certificate.spec.issuerRef`). */
export interface IssuerRefArgs {
  /** The issuer's name. Required. */
  name: string;
  /** `Issuer` (in the runtime namespace) or `ClusterIssuer`. Defaults to `Issuer`. */
  kind?: IssuerKind;
  /** API group of the issuer. Defaults to `cert-manager.io`; set it for external issuers. */
  group?: string;
}

/**
 * How the enforcement webhook gets its TLS certificate from cert-manager. cert-manager also
 * injects the CA into the webhook configurations (`cert-manager.io/inject-ca-from`), so the issuer
 * must put the CA in the Secret's `ca.crt` (CA, Vault and self-signed issuers do; ACME does not).
 * Only with `enforcement.backend` `webhook`.
 */
export interface CertManagerArgs {
  /**
   * Install cert-manager (with its CRDs) through `@pulumi/kubernetes-cert-manager` into the
   * namespace `cert-manager`, and create the issuers and certificates after it. Defaults to
   * `false`: cert-manager must already run in the cluster. Leave it `false` when another stack
   * installs cert-manager; two installations conflict.
   */
  install?: boolean;
  /**
   * The issuer that signs the webhook's serving certificate. Defaults to none: the component
   * creates a self-signed Issuer, a CA Certificate from it, and a CA Issuer that signs the serving
   * certificate, all in the runtime namespace.
   */
  issuerRef?: IssuerRefArgs;
}

/** Arguments of `VNodeRuntime`. Only `agentImage` is required. */
export interface VNodeRuntimeArgs {
  /** The node agent image: a prebuilt `ref`, or a `build` of this repository. Required. */
  agentImage: AgentImageArgs;
  /**
   * The vNode runtime image of your vNode release and licence (see the README, "The agent
   * image"), ideally mirrored into your registry and pinned by digest. Required with
   * `agentImage.build`, where it becomes the Dockerfile's build arg `VNODE_IMAGE`: the build finds
   * `containerd-shim-vnode-v2`, `vnode-manager` and `vnode-cni` in it by name, puts them into the
   * agent image, and fails naming any it did not find. Not allowed with `agentImage.ref`, whose
   * image already carries its payload. Defaults to none.
   */
  vnodeImage?: pulumi.Input<string>;
  /**
   * Isolation mode of the nodes (of every pool that sets none). Defaults to `per-namespace`. Becomes
   * the agent container's env `VNODE_PER_POD`: `"false"` for per-namespace, `"true"` for per-pod,
   * always set explicitly.
   */
  isolationMode?: IsolationMode;
  /**
   * Namespace of the agent, a DNS-1123 label. Defaults to `vnode-runtime`. May come from another
   * resource (`ns.metadata.name`, usually with `createNamespace: false`); it is also part of the
   * enforcement webhook's DNS names and of the agent's user name in `agentConfinement`'s policy.
   */
  namespace?: pulumi.Input<string>;
  /**
   * Create the namespace, labelled Pod Security `privileged` (enforce, audit, warn) because the
   * agent mounts host paths. Defaults to `true`. With `false` the namespace must exist and admit
   * privileged pods; no other namespace is ever relabelled. `default`, `kube-system`,
   * `kube-public` and `kube-node-lease` are refused with `true`: they are not the component's to
   * relabel or delete.
   */
  createNamespace?: boolean;
  /**
   * Leave the namespace in the cluster when the component is destroyed or stops creating it
   * (Pulumi `retainOnDelete`), e.g. when other things live in it. Defaults to `false`: destroy
   * deletes it, and with it everything left inside. Only with `createNamespace`.
   */
  retainNamespace?: boolean;
  /**
   * Name of the RuntimeClass pods use (`runtimeClassName: vnode`). Defaults to `vnode`. With pools of
   * both modes it names the per-namespace class.
   */
  runtimeClassName?: string;
  /**
   * Name of the per-pod RuntimeClass. Defaults to `<runtimeClassName>-per-pod` when pools use both
   * modes, else to `runtimeClassName`. Must differ from `runtimeClassName` when both modes are used.
   */
  perPodRuntimeClassName?: string;
  /** containerd runtime handler vNode is registered under (RuntimeClass `handler`). Defaults to `vnode`. */
  handler?: string;
  /** The nodes' containerd layout; decides the host paths mounted. Defaults to `containerd`. */
  containerdDistribution?: ContainerdDistribution;
  /** How the agent restarts containerd. Defaults to `systemd`. */
  restartStrategy?: RestartStrategy;
  /** Labels every agent node must have (DaemonSet `nodeSelector`, merged with each pool's). Defaults to `kubernetes.io/os: linux` only. */
  nodeSelector?: StringMapInput;
  /**
   * Tolerations of the agent pods. Defaults to `[{ operator: Exists }]`: like every node runtime, the
   * agent runs on tainted nodes too.
   */
  tolerations?: TolerationsInput;
  /** Affinity of the agent pods (`spec.affinity`). Defaults to none. */
  affinity?: pulumi.Input<k8s.types.input.core.v1.Affinity>;
  /** PriorityClass of the agent pods (`priorityClassName`). Defaults to `system-node-critical`. */
  priorityClassName?: pulumi.Input<string>;
  /**
   * Agent container `resources` (`requests` and `limits`; `claims` is not supported). Each map is
   * merged over its default: requests cpu `20m`/memory `64Mi`, limits memory `256Mi` (no CPU
   * limit).
   */
  resources?: pulumi.Input<k8s.types.input.core.v1.ResourceRequirements>;
  /**
   * vNode's manager container: its socket, arguments, resources. Defaults to the socket
   * `/run/vnode/manager.sock`, no arguments, no resources, no `hostPID`.
   */
  manager?: ManagerArgs;
  /** Rolling update of the agent DaemonSets. Defaults to `maxUnavailable: 1`. */
  updateStrategy?: UpdateStrategyArgs;
  /**
   * What `pulumi up` waits for when an agent DaemonSet changes. Defaults to `wait: none`, which
   * never fails a cluster where some nodes cannot run vNode.
   */
  rollout?: RolloutArgs;
  /**
   * Seconds the agent gets on SIGTERM to remove the runtime from a node that leaves it (revert the
   * containerd config, restart containerd, remove files). Defaults to `120`.
   */
  terminationGracePeriodSeconds?: pulumi.Input<number>;
  /**
   * Uninstall from a node that leaves the runtime (destroy, pool removed, node no longer
   * selected) even while pods using a vNode RuntimeClass still run there: restarting containerd
   * without the handler kills their sandboxes. Defaults to `false`: the agent then waits for those
   * pods, then refuses, keeps the runtime and labels the node `vnode.loft.sh/runtime=uninstalling`
   * (see the README's "Destroy"). Becomes the agent's `--force-uninstall`.
   */
  forceUninstall?: boolean;
  /** RuntimeClass `overhead.podFixed` per mode. Defaults to the estimates documented on `OverheadArgs`. */
  overhead?: OverheadArgs;
  /** Tolerations added to every RuntimeClass's `scheduling.tolerations` (e.g. a sandbox node taint). Defaults to none. */
  runtimeClassTolerations?: TolerationsInput;
  /**
   * Node pools, one agent DaemonSet each. Defaults to one pool, `default`, of all Linux nodes (its
   * DaemonSet is named `<name>-agent`). Pool names are unique; with more than one pool every pool
   * needs a `nodeSelector` and no two may select the same node.
   */
  pools?: PoolArgs[];
  /** Extra agent env vars. Defaults to none. */
  env?: AgentEnvArgs[];
  /**
   * Labels added to every object the component creates and to the agent pods; the component's own
   * labels (`app.kubernetes.io/*`, `vnode.loft.sh/*`) are refused here and always win.
   */
  labels?: StringMapInput;
  /** Annotations added to every object the component creates and to the agent pods. */
  annotations?: StringMapInput;
  /** Prometheus scraping of the agent. Defaults to scrape annotations. */
  metrics?: MetricsArgs;
  /**
   * Confines the agent's node writes with a ValidatingAdmissionPolicy and its binding
   * (`admissionregistration.k8s.io/v1`, Kubernetes >= 1.30): with one agent's token, nobody can
   * relabel or taint another node, or set labels that are not the agent's. Defaults to
   * `node-and-labels`; `labels-only` where tokens carry no node name, `none` without the policy.
   */
  agentConfinement?: AgentConfinement;
  /**
   * Tenancy enforcement: put the pods of tenant namespaces into vNode at admission and reject pods
   * that escape it. Defaults to none.
   */
  enforcement?: EnforcementArgs;
  /**
   * TLS of the enforcement webhook through cert-manager. Defaults to a self-signed CA in the runtime
   * namespace, with cert-manager already installed. Only with `enforcement.backend` `webhook`.
   */
  certManager?: CertManagerArgs;
}
