/**
 * Every validation error, with its exact message, and proof that nothing (not even the component)
 * is registered when the args are invalid.
 */
import { VNodeRuntime, VNodeRuntimeArgs, VNodeRuntimeArgsError } from "../../components/index";
import { validateArgs } from "../../components/validate";
import { Recorder } from "./harness";

const recorder = new Recorder();
beforeAll(() => recorder.install());

const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };
const LABEL_RULE =
  'a DNS-1123 label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)';
const SUBDOMAIN_RULE =
  'a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters)';
const LABEL_VALUE_RULE =
  'a label value (at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit)';
const POOL_A = { name: "a", nodeSelector: { pool: "a" } };
const TOLERATION_EFFECTS = "NoSchedule, PreferNoSchedule, NoExecute";
const TENANTS = { matchLabels: { tenant: "true" } };
const ENFORCEMENT = { namespaceSelector: TENANTS, mode: "mutate" };

/** [what, args (merged over a valid base unless `raw`), exact message] */
const cases: [string, Record<string, unknown>, string][] = [
  [
    "agentImage missing",
    { agentImage: undefined },
    'agentImage is required: set agentImage.ref to a prebuilt agent image reference, e.g. "ghcr.io/acme/vnode-agent:0.1.0", or agentImage.build to build and push it from this repository.',
  ],
  [
    "agentImage a string",
    { agentImage: "img" },
    'agentImage must be an object like { ref: "ghcr.io/acme/vnode-agent:0.1.0" } or { build: { registry, repository } }; got "img".',
  ],
  [
    "agentImage.ref empty",
    { agentImage: { ref: "" } },
    'agentImage.ref must be an image reference, e.g. "ghcr.io/acme/vnode-agent:0.1.0"; got "".',
  ],
  [
    "agentImage with neither ref nor build",
    { agentImage: {} },
    'agentImage needs exactly one of agentImage.ref (a prebuilt image reference, e.g. "ghcr.io/acme/vnode-agent:0.1.0") and agentImage.build (build and push it from this repository); got neither.',
  ],
  [
    "agentImage.ref with whitespace",
    { agentImage: { ref: "ghcr.io/a b" } },
    'agentImage.ref must be an image reference without whitespace; got "ghcr.io/a b".',
  ],
  [
    "agentImage.ref a number",
    { agentImage: { ref: 5 } },
    "agentImage.ref must be a string; got 5.",
  ],
  [
    "agentImage unknown field",
    { agentImage: { ref: "x", tag: "1" } },
    'agentImage has an unknown field "tag"; allowed: ref, build.',
  ],
  [
    "unknown argument",
    { isolationmode: "per-pod" },
    'args has an unknown field "isolationmode"; allowed: agentImage, vnodeImage, isolationMode, namespace, createNamespace, retainNamespace, runtimeClassName, perPodRuntimeClassName, handler, containerdDistribution, restartStrategy, nodeSelector, tolerations, affinity, priorityClassName, resources, manager, updateStrategy, rollout, terminationGracePeriodSeconds, forceUninstall, overhead, runtimeClassTolerations, pools, env, labels, annotations, metrics, agentConfinement, enforcement, certManager.',
  ],
  [
    "isolationMode from YAML with an underscore",
    { isolationMode: "per_pod" },
    'isolationMode must be one of per-namespace, per-pod; got "per_pod".',
  ],
  ["namespace uppercase", { namespace: "Vnode" }, `namespace must be ${LABEL_RULE}; got "Vnode".`],
  [
    "createNamespace a string",
    { createNamespace: "yes" },
    'createNamespace must be true or false; got "yes".',
  ],
  [
    "runtimeClassName underscore",
    { runtimeClassName: "vnode_x" },
    `runtimeClassName must be ${SUBDOMAIN_RULE}; got "vnode_x".`,
  ],
  [
    "perPodRuntimeClassName uppercase",
    { perPodRuntimeClassName: "PerPod" },
    `perPodRuntimeClassName must be ${SUBDOMAIN_RULE}; got "PerPod".`,
  ],
  ["handler with a dot", { handler: "vnode.x" }, `handler must be ${LABEL_RULE}; got "vnode.x".`],
  [
    "containerdDistribution unknown",
    { containerdDistribution: "kind" },
    'containerdDistribution must be one of containerd, k3s, rke2, microk8s, k0s; got "kind".',
  ],
  [
    "restartStrategy unknown",
    { restartStrategy: "restart" },
    'restartStrategy must be one of systemd, kill, none; got "restart".',
  ],
  [
    "nodeSelector bad key",
    { nodeSelector: { "bad key!": "x" } },
    'nodeSelector key "bad key!" must be a label key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_" and ".").',
  ],
  [
    "nodeSelector bad value",
    { nodeSelector: { pool: "a b" } },
    `nodeSelector["pool"] must be ${LABEL_VALUE_RULE}; got "a b".`,
  ],
  [
    "nodeSelector a list",
    { nodeSelector: ["a"] },
    'nodeSelector must be a map of label keys to values; got ["a"].',
  ],
  [
    "toleration operator",
    { tolerations: [{ operator: "Exist" }] },
    'tolerations[0].operator must be one of Exists, Equal; got "Exist".',
  ],
  [
    "toleration effect",
    { tolerations: [{ key: "k", effect: "NoRun" }] },
    `tolerations[0].effect must be one of ${TOLERATION_EFFECTS}; got "NoRun".`,
  ],
  [
    "toleration Exists with a value",
    { tolerations: [{ operator: "Exists", value: "x" }] },
    'tolerations[0].value must be empty with operator Exists; got "x".',
  ],
  [
    "toleration Equal without key",
    { tolerations: [{ value: "x" }] },
    "tolerations[0].key is required with operator Equal; use operator Exists to tolerate every taint.",
  ],
  [
    "toleration seconds without NoExecute",
    {
      tolerations: [{ key: "k", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 30 }],
    },
    'tolerations[0].tolerationSeconds only applies with effect NoExecute; got effect "NoSchedule".',
  ],
  [
    "toleration unknown field",
    { tolerations: [{ operator: "Exists", effects: "NoSchedule" }] },
    'tolerations[0] has an unknown field "effects"; allowed: key, operator, value, effect, tolerationSeconds.',
  ],
  [
    "tolerations not a list",
    { tolerations: { operator: "Exists" } },
    'tolerations must be a list of tolerations; got {"operator":"Exists"}.',
  ],
  [
    "affinity a string",
    { affinity: "x" },
    'affinity must be a Kubernetes Affinity object; got "x".',
  ],
  [
    "priorityClassName uppercase",
    { priorityClassName: "System" },
    `priorityClassName must be ${SUBDOMAIN_RULE}; got "System".`,
  ],
  [
    "cpu request",
    { resources: { requests: { cpu: "lots" } } },
    'resources.requests.cpu must be a Kubernetes quantity such as "100m" or "1"; got "lots".',
  ],
  [
    "memory limit",
    { resources: { limits: { memory: "1GB" } } },
    'resources.limits.memory must be a Kubernetes quantity such as "128Mi" or "1Gi"; got "1GB".',
  ],
  [
    "resources unknown field",
    { resources: { request: {} } },
    'resources has an unknown field "request"; allowed: requests, limits.',
  ],
  [
    "maxUnavailable 0",
    { updateStrategy: { maxUnavailable: 0 } },
    "updateStrategy.maxUnavailable must be an integer of at least 1; got 0.",
  ],
  [
    "maxUnavailablePercent over 100",
    { updateStrategy: { maxUnavailablePercent: 120 } },
    "updateStrategy.maxUnavailablePercent must be an integer from 1 to 100; got 120.",
  ],
  [
    "maxUnavailable as both a count and a percentage",
    { updateStrategy: { maxUnavailable: 2, maxUnavailablePercent: 10 } },
    "updateStrategy.maxUnavailable and updateStrategy.maxUnavailablePercent are exclusive: set a count or a percentage; got both.",
  ],
  [
    "rollout.wait unknown",
    { rollout: { wait: "all" } },
    'rollout.wait must be one of none, ready; got "all".',
  ],
  [
    "rollout.timeoutSeconds without wait ready",
    { rollout: { timeoutSeconds: 900 } },
    "rollout.timeoutSeconds only applies with rollout.wait ready; rollout.wait is none.",
  ],
  [
    "manager a string",
    { manager: "/run/vnode/manager.sock" },
    'manager must be an object with fields socketPath, args, resources, hostPID; got "/run/vnode/manager.sock".',
  ],
  [
    "manager.socketPath relative",
    { manager: { socketPath: "run/vnode/manager.sock" } },
    'manager.socketPath must be an absolute, normalized host path in a directory of its own, such as "/run/vnode/manager.sock"; got "run/vnode/manager.sock".',
  ],
  [
    "manager.socketPath not normalized",
    { manager: { socketPath: "/run/vnode/../dbus/x.sock" } },
    'manager.socketPath must be an absolute, normalized host path in a directory of its own, such as "/run/vnode/manager.sock"; got "/run/vnode/../dbus/x.sock".',
  ],
  [
    "manager.socketPath with a space",
    { manager: { socketPath: "/run/v node/m.sock" } },
    'manager.socketPath must be an absolute, normalized host path in a directory of its own, such as "/run/vnode/manager.sock"; got "/run/v node/m.sock".',
  ],
  [
    "manager.socketPath directly in /run",
    { manager: { socketPath: "/run/manager.sock" } },
    'manager.socketPath "/run/manager.sock" lies directly in "/run", which would be mounted into the manager container and the agent; use a directory of its own such as "/run/vnode/manager.sock".',
  ],
  [
    "manager.socketPath in the D-Bus dir (restart systemd mounts it)",
    { manager: { socketPath: "/run/dbus/vnode.sock" } },
    'manager.socketPath "/run/dbus/vnode.sock" is in "/run/dbus", which overlaps the agent\'s host mount "/run/dbus"; use a directory of its own such as "/run/vnode/manager.sock".',
  ],
  [
    "manager.socketPath in k3s's CNI plugin dir",
    {
      containerdDistribution: "k3s",
      manager: { socketPath: "/var/lib/rancher/k3s/data/vnode/m.sock" },
    },
    'manager.socketPath "/var/lib/rancher/k3s/data/vnode/m.sock" is in "/var/lib/rancher/k3s/data/vnode", which overlaps the agent\'s host mount "/var/lib/rancher/k3s/data"; use a directory of its own such as "/run/vnode/manager.sock".',
  ],
  [
    "manager.socketPath a directory above an agent mount",
    { manager: { socketPath: "/etc/cni/m.sock" } },
    'manager.socketPath "/etc/cni/m.sock" is in "/etc/cni", which overlaps the agent\'s host mount "/etc/cni/net.d"; use a directory of its own such as "/run/vnode/manager.sock".',
  ],
  [
    "manager.args not strings",
    { manager: { args: ["--x", 1] } },
    'manager.args must be a list of strings; got ["--x",1].',
  ],
  [
    "manager.resources.limits.memory bad",
    { manager: { resources: { limits: { memory: "lots" } } } },
    'manager.resources.limits.memory must be a Kubernetes quantity such as "128Mi" or "1Gi"; got "lots".',
  ],
  [
    "manager.hostPID a string",
    { manager: { hostPID: "true" } },
    'manager.hostPID must be true or false; got "true".',
  ],
  [
    "forceUninstall a string",
    { forceUninstall: "yes" },
    'forceUninstall must be true or false; got "yes".',
  ],
  ...["default", "kube-system", "kube-public", "kube-node-lease"].map(
    (namespace): [string, Record<string, unknown>, string] => [
      `namespace ${namespace} created`,
      { namespace },
      `namespace "${namespace}" belongs to Kubernetes, and with createNamespace (the default) the component would label it Pod Security privileged and delete it on destroy: choose another namespace, or set createNamespace to false to run in it as it is.`,
    ],
  ),
  [
    "retainNamespace without createNamespace",
    { namespace: "kube-system", createNamespace: false, retainNamespace: true },
    "retainNamespace only applies with createNamespace: with createNamespace false the component never deletes the namespace.",
  ],
  [
    "grace period fractional",
    { terminationGracePeriodSeconds: 1.5 },
    "terminationGracePeriodSeconds must be an integer of at least 1; got 1.5.",
  ],
  [
    "overhead.enabled a string",
    { overhead: { enabled: "no" } },
    'overhead.enabled must be true or false; got "no".',
  ],
  [
    "overhead cpu",
    { overhead: { perPod: { cpu: "x" } } },
    'overhead.perPod.cpu must be a Kubernetes quantity such as "100m" or "1"; got "x".',
  ],
  [
    "overhead unknown resource",
    { overhead: { perPod: { gpu: "1" } } },
    'overhead.perPod has an unknown field "gpu"; allowed: cpu, memory.',
  ],
  [
    "runtimeClassTolerations effect",
    { runtimeClassTolerations: [{ operator: "Exists", effect: "Never" }] },
    `runtimeClassTolerations[0].effect must be one of ${TOLERATION_EFFECTS}; got "Never".`,
  ],
  [
    "pools empty",
    { pools: [] },
    "pools must be a non-empty list of { name, isolationMode, nodeSelector, tolerations }, or unset for one pool of all nodes; got [].",
  ],
  [
    "pool name uppercase",
    { pools: [{ name: "A" }] },
    `pools[0].name must be ${LABEL_RULE}; got "A".`,
  ],
  [
    "pool unknown field",
    { pools: [{ name: "a", selector: {} }] },
    'pools[0] has an unknown field "selector"; allowed: name, isolationMode, nodeSelector, tolerations.',
  ],
  [
    "pool names duplicate",
    { pools: [POOL_A, { name: "a", nodeSelector: { pool: "b" } }] },
    'pools[1].name "a" is already used by pools[0]; pool names must be unique.',
  ],
  [
    "pool mode from YAML",
    { pools: [POOL_A, { name: "b", isolationMode: "per_pod", nodeSelector: { pool: "b" } }] },
    'pools[1].isolationMode must be one of per-namespace, per-pod; got "per_pod".',
  ],
  [
    "pool without selector",
    { pools: [POOL_A, { name: "b" }] },
    "pools[1].nodeSelector must not be empty when there is more than one pool: each pool must select its own nodes.",
  ],
  [
    "pools that may overlap",
    {
      pools: [
        { name: "a", nodeSelector: { zone: "x" } },
        { name: "b", nodeSelector: { pool: "b" } },
      ],
    },
    'pools[1].nodeSelector {"pool":"b"} can select the same nodes as pools[0].nodeSelector {"zone":"x"}; give both pools a common label key with different values (e.g. pool=a and pool=b), so that no node runs two agents.',
  ],
  [
    "pools with the same selector",
    { pools: [POOL_A, { name: "b", nodeSelector: { pool: "a" } }] },
    'pools[1].nodeSelector {"pool":"a"} can select the same nodes as pools[0].nodeSelector {"pool":"a"}; give both pools a common label key with different values (e.g. pool=a and pool=b), so that no node runs two agents.',
  ],
  [
    "pool selector contradicting the component's",
    { nodeSelector: { pool: "x" }, pools: [{ name: "a", nodeSelector: { pool: "y" } }] },
    `pools[0].nodeSelector["pool"] is "y" but nodeSelector["pool"] is "x"; the pool's nodes would never match both.`,
  ],
  [
    "pool name making the DaemonSet name too long",
    { pools: [{ name: "p".repeat(52) }] },
    `pools[0].name is too long: the DaemonSet name "vnode-agent-${"p".repeat(52)}" has 64 characters, at most 63 are allowed.`,
  ],
  [
    "per-pod class named like the per-namespace one",
    {
      perPodRuntimeClassName: "vnode",
      pools: [POOL_A, { name: "b", isolationMode: "per-pod", nodeSelector: { pool: "b" } }],
    },
    'perPodRuntimeClassName must differ from runtimeClassName "vnode" when pools use both isolation modes, because each RuntimeClass pins pods to nodes of one mode.',
  ],
  [
    "env not a list",
    { env: { A: "b" } },
    'env must be a list of { name, value } or { name, secretKeyRef: { name, key } }; got {"A":"b"}.',
  ],
  [
    "env name",
    { env: [{ name: "1A", value: "x" }] },
    'env[0].name must be an environment variable name (letters, digits, "_", "-" and ".", not starting with a digit); got "1A".',
  ],
  [
    "env sets VNODE_PER_POD",
    { env: [{ name: "VNODE_PER_POD", value: "true" }] },
    'env[0].name "VNODE_PER_POD" is set by the component from isolationMode; remove it from env.',
  ],
  [
    "env sets NODE_NAME",
    { env: [{ name: "NODE_NAME", value: "n" }] },
    `env[0].name "NODE_NAME" is set by the component from the downward API (the node's name); remove it from env.`,
  ],
  [
    "env duplicate",
    {
      env: [
        { name: "A", value: "1" },
        { name: "A", value: "2" },
      ],
    },
    'env[1].name "A" is already set by env[0]; env names must be unique.',
  ],
  [
    "env value and ref",
    { env: [{ name: "A", value: "1", secretKeyRef: { name: "s", key: "k" } }] },
    "env[0] (A) must set exactly one of value and secretKeyRef; got both.",
  ],
  [
    "env neither",
    { env: [{ name: "A" }] },
    "env[0] (A) must set exactly one of value and secretKeyRef; got neither.",
  ],
  [
    "env value a number",
    { env: [{ name: "A", value: 5 }] },
    "env[0].value must be a string; got 5.",
  ],
  [
    "env secret name",
    { env: [{ name: "A", secretKeyRef: { name: "My Secret", key: "k" } }] },
    `env[0].secretKeyRef.name must be ${SUBDOMAIN_RULE}; got "My Secret".`,
  ],
  [
    "env secret key",
    { env: [{ name: "A", secretKeyRef: { name: "s", key: "a/b" } }] },
    'env[0].secretKeyRef.key must be a Secret key (letters, digits, "-", "_" and "."); got "a/b".',
  ],
  [
    "labels reserved",
    { labels: { "app.kubernetes.io/name": "x" } },
    'labels["app.kubernetes.io/name"] is set by the component; remove it.',
  ],
  [
    "labels node label",
    { labels: { "vnode.loft.sh/runtime": "ready" } },
    'labels["vnode.loft.sh/runtime"] is set by the component; remove it.',
  ],
  [
    "annotation value a number",
    { annotations: { a: 1 } },
    'annotations["a"] must be a string; got 1.',
  ],
  [
    "metrics mode",
    { metrics: { mode: "prometheus" } },
    'metrics.mode must be one of annotations, pod-monitor, none; got "prometheus".',
  ],
  [
    "metrics interval without PodMonitor",
    { metrics: { interval: "1m" } },
    "metrics.interval only applies when metrics.mode is pod-monitor; metrics.mode is annotations.",
  ],
  [
    "PodMonitor label owned by the component",
    { metrics: { mode: "pod-monitor", podMonitorLabels: { "app.kubernetes.io/instance": "x" } } },
    'metrics.podMonitorLabels["app.kubernetes.io/instance"] is set by the component; remove it.',
  ],
  [
    "metrics interval",
    { metrics: { mode: "pod-monitor", interval: "30 seconds" } },
    'metrics.interval must be a Prometheus duration such as "30s" or "1m"; got "30 seconds".',
  ],
  [
    "enforcement not an object",
    { enforcement: "on" },
    'enforcement must be an object with fields namespaceSelector, mode, mutateFailurePolicy, validateFailurePolicy, acknowledgeValidationFailOpen, backend, mutatingPolicyApiVersion, scope, namespaceLabelGuard, podSecurityLevel; got "on".',
  ],
  [
    "enforcement unknown field",
    { enforcement: { ...ENFORCEMENT, excludeNamespaces: ["ci"] } },
    'enforcement has an unknown field "excludeNamespaces"; allowed: namespaceSelector, mode, mutateFailurePolicy, validateFailurePolicy, acknowledgeValidationFailOpen, backend, mutatingPolicyApiVersion, scope, namespaceLabelGuard, podSecurityLevel.',
  ],
  [
    "enforcement.mode missing",
    { enforcement: { namespaceSelector: TENANTS } },
    "enforcement.mode is required: one of mutate, validate, mutate-and-validate.",
  ],
  [
    "enforcement.mode by its enum member name",
    { enforcement: { ...ENFORCEMENT, mode: "MutateAndValidate" } },
    'enforcement.mode must be one of mutate, validate, mutate-and-validate; got "MutateAndValidate".',
  ],
  [
    "enforcement.backend",
    { enforcement: { ...ENFORCEMENT, backend: "cel" } },
    'enforcement.backend must be one of webhook, admission-policy; got "cel".',
  ],
  [
    "enforcement.validateFailurePolicy lowercase",
    { enforcement: { ...ENFORCEMENT, validateFailurePolicy: "fail" } },
    'enforcement.validateFailurePolicy must be one of Fail, Ignore; got "fail".',
  ],
  [
    "enforcement.failurePolicy (replaced)",
    { enforcement: { ...ENFORCEMENT, failurePolicy: "Fail" } },
    "enforcement.failurePolicy is replaced by enforcement.mutateFailurePolicy and enforcement.validateFailurePolicy (validation fails open only with acknowledgeValidationFailOpen: true); remove failurePolicy.",
  ],
  [
    "enforcement.validateFailurePolicy Ignore without the acknowledgement",
    { enforcement: { ...ENFORCEMENT, validateFailurePolicy: "Ignore" } },
    "enforcement.validateFailurePolicy Ignore admits every pod unchecked (any RuntimeClass, runc included) while the enforcement cannot answer; set enforcement.acknowledgeValidationFailOpen: true to accept that hole, or use Fail (the default).",
  ],
  [
    "enforcement.acknowledgeValidationFailOpen without Ignore",
    { enforcement: { ...ENFORCEMENT, acknowledgeValidationFailOpen: true } },
    "enforcement.acknowledgeValidationFailOpen only applies with enforcement.validateFailurePolicy Ignore; enforcement.validateFailurePolicy is Fail (the default).",
  ],
  [
    "enforcement.acknowledgeValidationFailOpen not a boolean",
    {
      enforcement: {
        ...ENFORCEMENT,
        validateFailurePolicy: "Ignore",
        acknowledgeValidationFailOpen: "yes",
      },
    },
    'enforcement.acknowledgeValidationFailOpen must be true or false; got "yes".',
  ],
  [
    "enforcement.mutatingPolicyApiVersion",
    {
      enforcement: {
        ...ENFORCEMENT,
        backend: "admission-policy",
        mutatingPolicyApiVersion: "v1beta2",
      },
    },
    'enforcement.mutatingPolicyApiVersion must be one of v1, v1beta1, v1alpha1; got "v1beta2".',
  ],
  [
    "enforcement.mutatingPolicyApiVersion with the webhook",
    { enforcement: { ...ENFORCEMENT, mutatingPolicyApiVersion: "v1beta1" } },
    "enforcement.mutatingPolicyApiVersion only applies with enforcement.backend admission-policy; enforcement.backend is webhook.",
  ],
  [
    "enforcement.mutatingPolicyApiVersion without mutation",
    {
      enforcement: {
        ...ENFORCEMENT,
        mode: "validate",
        backend: "admission-policy",
        mutatingPolicyApiVersion: "v1",
      },
    },
    "enforcement.mutatingPolicyApiVersion only applies when enforcement.mode mutates (mutate or mutate-and-validate) or with enforcement.podSecurityLevel; enforcement.mode is validate.",
  ],
  [
    "enforcement.scope",
    { enforcement: { ...ENFORCEMENT, scope: "all" } },
    'enforcement.scope must be one of selected, all-except-exempt; got "all".',
  ],
  [
    "enforcement.namespaceSelector with scope all-except-exempt",
    { enforcement: { ...ENFORCEMENT, scope: "all-except-exempt" } },
    "enforcement.namespaceSelector does not apply with enforcement.scope all-except-exempt, which enforces every namespace not labelled vnode.loft.sh/enforcement-exempt=true (and the always excluded ones); remove namespaceSelector, or use scope selected.",
  ],
  [
    "enforcement.namespaceLabelGuard unknown field",
    { enforcement: { ...ENFORCEMENT, namespaceLabelGuard: { groups: ["admins"] } } },
    'enforcement.namespaceLabelGuard has an unknown field "groups"; allowed: enabled, platformGroups.',
  ],
  [
    "enforcement.namespaceLabelGuard.platformGroups not a list",
    { enforcement: { ...ENFORCEMENT, namespaceLabelGuard: { platformGroups: "admins" } } },
    'enforcement.namespaceLabelGuard.platformGroups must be a list of group names; got "admins".',
  ],
  [
    "enforcement.namespaceLabelGuard.platformGroups: everyone's group",
    {
      enforcement: {
        ...ENFORCEMENT,
        namespaceLabelGuard: { platformGroups: ["admins", "system:authenticated"] },
      },
    },
    'enforcement.namespaceLabelGuard.platformGroups: "system:authenticated" cannot be a platform group: every user is in it, so the guard would let everyone relabel namespaces.',
  ],
  [
    "enforcement.namespaceLabelGuard.platformGroups: a blank group",
    { enforcement: { ...ENFORCEMENT, namespaceLabelGuard: { platformGroups: [" "] } } },
    'enforcement.namespaceLabelGuard.platformGroups: a platform group must be a non-blank group name without surrounding spaces or control characters; got " ".',
  ],
  [
    "enforcement.namespaceLabelGuard.enabled not a boolean",
    { enforcement: { ...ENFORCEMENT, namespaceLabelGuard: { enabled: "no" } } },
    'enforcement.namespaceLabelGuard.enabled must be true or false; got "no".',
  ],
  [
    "enforcement.namespaceLabelGuard off with platform groups",
    {
      enforcement: {
        ...ENFORCEMENT,
        namespaceLabelGuard: { enabled: false, platformGroups: ["admins"] },
      },
    },
    "enforcement.namespaceLabelGuard.platformGroups only applies while the guard is enabled; enforcement.namespaceLabelGuard.enabled is false.",
  ],
  [
    "enforcement.namespaceLabelGuard off with scope all-except-exempt",
    {
      enforcement: {
        mode: "mutate",
        scope: "all-except-exempt",
        namespaceLabelGuard: { enabled: false },
      },
    },
    "enforcement.namespaceLabelGuard.enabled false is not allowed with enforcement.scope all-except-exempt: without the guard anyone who may update a namespace could label it vnode.loft.sh/enforcement-exempt=true and leave enforcement.",
  ],
  [
    "enforcement.namespaceLabelGuard off with a Pod Security level",
    {
      enforcement: {
        ...ENFORCEMENT,
        podSecurityLevel: "restricted",
        namespaceLabelGuard: { enabled: false },
      },
    },
    "enforcement.namespaceLabelGuard.enabled false is not allowed with enforcement.podSecurityLevel: without the guard anyone who may update a namespace could lower its pod-security.kubernetes.io/enforce label.",
  ],
  [
    "enforcement.podSecurityLevel",
    { enforcement: { ...ENFORCEMENT, podSecurityLevel: "privileged" } },
    'enforcement.podSecurityLevel must be one of baseline, restricted; got "privileged".',
  ],
  [
    "enforcement.namespaceSelector missing",
    { enforcement: { mode: "mutate" } },
    'enforcement.namespaceSelector is required: the labels of the tenant namespaces, e.g. { matchLabels: { tenant: "true" } }.',
  ],
  [
    "enforcement.namespaceSelector empty",
    {
      enforcement: { ...ENFORCEMENT, namespaceSelector: { matchLabels: {}, matchExpressions: [] } },
    },
    "enforcement.namespaceSelector must name at least one label in matchLabels or matchExpressions: an empty selector would enforce vNode on every namespace but kube-system, kube-node-lease and the runtime's.",
  ],
  [
    "enforcement.namespaceSelector unknown field",
    { enforcement: { ...ENFORCEMENT, namespaceSelector: { labels: { tenant: "true" } } } },
    'enforcement.namespaceSelector has an unknown field "labels"; allowed: matchLabels, matchExpressions.',
  ],
  [
    "enforcement.namespaceSelector label value",
    {
      enforcement: { ...ENFORCEMENT, namespaceSelector: { matchLabels: { tenant: "yes please" } } },
    },
    `enforcement.namespaceSelector.matchLabels["tenant"] must be ${LABEL_VALUE_RULE}; got "yes please".`,
  ],
  [
    "enforcement.namespaceSelector expression key",
    {
      enforcement: {
        ...ENFORCEMENT,
        namespaceSelector: { matchExpressions: [{ key: "a b", operator: "Exists" }] },
      },
    },
    'enforcement.namespaceSelector.matchExpressions[0].key must be a label key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_" and "."); got "a b".',
  ],
  [
    "enforcement.namespaceSelector expression operator",
    {
      enforcement: {
        ...ENFORCEMENT,
        namespaceSelector: { matchExpressions: [{ key: "team", operator: "in", values: ["a"] }] },
      },
    },
    'enforcement.namespaceSelector.matchExpressions[0].operator must be one of In, NotIn, Exists, DoesNotExist; got "in".',
  ],
  [
    "enforcement.namespaceSelector expression without operator",
    { enforcement: { ...ENFORCEMENT, namespaceSelector: { matchExpressions: [{ key: "team" }] } } },
    "enforcement.namespaceSelector.matchExpressions[0].operator is required: one of In, NotIn, Exists, DoesNotExist.",
  ],
  [
    "enforcement.namespaceSelector In without values",
    {
      enforcement: {
        ...ENFORCEMENT,
        namespaceSelector: { matchExpressions: [{ key: "team", operator: "In" }] },
      },
    },
    "enforcement.namespaceSelector.matchExpressions[0].values must not be empty with operator In.",
  ],
  [
    "enforcement.namespaceSelector Exists with values",
    {
      enforcement: {
        ...ENFORCEMENT,
        namespaceSelector: {
          matchExpressions: [{ key: "team", operator: "Exists", values: ["a"] }],
        },
      },
    },
    'enforcement.namespaceSelector.matchExpressions[0].values must be empty with operator Exists; got ["a"].',
  ],
  [
    "enforcement.namespaceSelector expression value",
    {
      enforcement: {
        ...ENFORCEMENT,
        namespaceSelector: {
          matchExpressions: [{ key: "team", operator: "NotIn", values: ["a", "-b"] }],
        },
      },
    },
    `enforcement.namespaceSelector.matchExpressions[0].values[1] must be ${LABEL_VALUE_RULE}; got "-b".`,
  ],
  [
    "certManager without enforcement",
    { certManager: { install: true } },
    "certManager only applies with enforcement (backend webhook), which gets its TLS certificate from cert-manager; enforcement is not set.",
  ],
  [
    "certManager with the admission-policy backend",
    {
      enforcement: { ...ENFORCEMENT, backend: "admission-policy" },
      certManager: { install: true },
    },
    "certManager only applies with enforcement.backend webhook; enforcement.backend is admission-policy, which needs no certificate.",
  ],
  [
    "certManager.install a string",
    { enforcement: ENFORCEMENT, certManager: { install: "yes" } },
    'certManager.install must be true or false; got "yes".',
  ],
  [
    "certManager unknown field",
    { enforcement: ENFORCEMENT, certManager: { version: "v1.17" } },
    'certManager has an unknown field "version"; allowed: install, issuerRef.',
  ],
  [
    "certManager.issuerRef without a name",
    { enforcement: ENFORCEMENT, certManager: { issuerRef: { kind: "ClusterIssuer" } } },
    'certManager.issuerRef.name is required: the name of the cert-manager Issuer (in the runtime namespace) or ClusterIssuer, e.g. "ca-issuer".',
  ],
  [
    "certManager.issuerRef.name uppercase",
    { enforcement: ENFORCEMENT, certManager: { issuerRef: { name: "CorpCA" } } },
    `certManager.issuerRef.name must be ${SUBDOMAIN_RULE}; got "CorpCA".`,
  ],
  [
    "certManager.issuerRef.kind lowercase",
    { enforcement: ENFORCEMENT, certManager: { issuerRef: { name: "ca", kind: "clusterissuer" } } },
    'certManager.issuerRef.kind must be one of Issuer, ClusterIssuer; got "clusterissuer".',
  ],
];

test.each(cases)("%s", async (_what, override, message) => {
  const before = recorder.resources.length;
  const args = { agentImage: IMAGE, ...override } as unknown as VNodeRuntimeArgs;
  expect(() => new VNodeRuntime("vnode", args)).toThrow(new VNodeRuntimeArgsError(message));
  await new Promise((r) => setTimeout(r, 10));
  expect(recorder.resources.length).toBe(before);
});

test("invalid component names", () => {
  expect(() => new VNodeRuntime("My_Runtime", { agentImage: IMAGE })).toThrow(
    `name must be ${LABEL_RULE}, because it prefixes the Kubernetes object names; got "My_Runtime".`,
  );
  expect(() => new VNodeRuntime("n".repeat(58), { agentImage: IMAGE })).toThrow(
    `name is too long: the DaemonSet name "${"n".repeat(58)}-agent" has 64 characters, at most 63 are allowed.`,
  );
});

test("a name too long for the webhook Service, with the webhook backend only", () => {
  const name = "n".repeat(56);
  expect(
    () =>
      new VNodeRuntime(name, {
        agentImage: IMAGE,
        enforcement: ENFORCEMENT,
      } as unknown as VNodeRuntimeArgs),
  ).toThrow(
    `name is too long for enforcement.backend webhook: the webhook Service name "${name}-webhook" has 64 characters, at most 63 are allowed.`,
  );
  // The same name is fine for the policies, which have no Service (checked without registering).
  expect(() =>
    validateArgs(name, {
      agentImage: IMAGE,
      enforcement: { ...ENFORCEMENT, backend: "admission-policy" },
    } as unknown as VNodeRuntimeArgs),
  ).not.toThrow();
});

test("args missing altogether", () => {
  expect(() => new VNodeRuntime("vnode", undefined as unknown as VNodeRuntimeArgs)).toThrow(
    'args must be an object with at least agentImage: { ref: "<image>" } or agentImage: { build: { registry, repository } }; got nothing.',
  );
});

test("the error is a VNodeRuntimeArgsError", () => {
  const attempt = (): unknown => new VNodeRuntime("vnode", { agentImage: IMAGE, namespace: "X" });
  expect(attempt).toThrow(VNodeRuntimeArgsError);
});

test("nothing at all was registered by the invalid attempts", async () => {
  await new Promise((r) => setTimeout(r, 20));
  expect(recorder.resources).toEqual([]);
});
