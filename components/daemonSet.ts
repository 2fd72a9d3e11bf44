/**
 * The agent DaemonSet of one pool: the agent's command line, env, host mounts, probes and the
 * narrowest security context under which it can edit containerd's config and restart containerd.
 */
import type * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import {
  AGENT_DEFAULTS,
  AGENT_HTTP,
  agentArgv,
  AGENT_IMAGE,
  CONTAINERD_DISTRIBUTIONS,
  encodePerPod,
  MANAGER_DEFAULTS,
  NODE_NAME_ENV,
  PAYLOAD_ROLES,
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
  SYSTEM_BUS_SOCKET,
  VNODE_CNI_CONF_DIR,
  VNODE_PER_POD_ENV,
} from "vnode-contract";
import { ContainerdDistribution, RestartStrategy, RolloutWait } from "./args";
import type { PoolPlan, RuntimePlan } from "./defaults";
import {
  namespacedMeta,
  selectorLabels,
  standardLabels,
  withUserAnnotations,
  withUserLabels,
} from "./labels";
import { scrapeAnnotations } from "./metrics";

/** Name of the agent container. */
export const AGENT_CONTAINER = "agent";

/** The host's D-Bus socket directory (restart strategy `systemd`). */
export const DBUS_DIR = SYSTEM_BUS_SOCKET.slice(0, SYSTEM_BUS_SOCKET.lastIndexOf("/"));

/** A host directory the agent sees at `<hostRoot><hostPath>`. */
export interface HostMount {
  volume: string;
  hostPath: string;
  /** `DirectoryOrCreate` for dirs the agent may create; `Directory` for dirs that must exist. */
  type: "Directory" | "DirectoryOrCreate";
  readOnly: boolean;
}

/**
 * Exactly the host directories the agent touches for a distribution and restart strategy:
 * containerd's config dir (and template/drop-in dirs not inside it), the socket's dir (a socket
 * file mount would go stale when containerd recreates it on restart), the payload install dir,
 * the agent's state dir (ledger, lock) and, with `systemd`, the D-Bus socket's dir.
 */
export function hostMounts(
  distribution: ContainerdDistribution,
  restart: RestartStrategy,
): HostMount[] {
  const layout: {
    config: string;
    template?: string;
    dropInDir?: string;
    socket: string;
    cni: { conf: readonly string[]; bin: readonly string[] };
  } = CONTAINERD_DISTRIBUTIONS[distribution];
  const mounts: HostMount[] = [];
  const add = (volume: string, path: string, type: HostMount["type"], readOnly: boolean): void => {
    if (!mounts.some((mount) => path === mount.hostPath || path.startsWith(`${mount.hostPath}/`))) {
      mounts.push({ volume, hostPath: path, type, readOnly });
    }
  };
  // The config dirs may not exist yet on a node that runs containerd with built-in defaults.
  add("containerd-config", dirname(layout.config), "DirectoryOrCreate", false);
  if (layout.template !== undefined) {
    add("containerd-template", dirname(layout.template), "DirectoryOrCreate", false);
  }
  if (layout.dropInDir !== undefined) {
    add("containerd-drop-in", layout.dropInDir, "DirectoryOrCreate", false);
  }
  // Must exist: a missing socket dir means the wrong distribution, and the pod should not start.
  // Read-only is enough to connect to a socket.
  add("containerd-socket", dirname(layout.socket), "Directory", true);
  add("vnode-bin", AGENT_DEFAULTS.installDir, "DirectoryOrCreate", false);
  // CNI: the host's network config is read (the vNode chain is built from it), the handler's
  // own conf dir is written, and `vnode-cni` is linked into the bin dir CNI looks plugins up in.
  // Each distribution's containerd may use its own dirs (contract: CONTAINERD_DISTRIBUTIONS).
  const numbered = (base: string, i: number) => (i === 0 ? base : `${base}-${i + 1}`);
  layout.cni.conf.forEach((dir, i) => add(numbered("cni-conf", i), dir, "DirectoryOrCreate", true));
  add("vnode-cni-conf", VNODE_CNI_CONF_DIR, "DirectoryOrCreate", false);
  layout.cni.bin.forEach((dir, i) => add(numbered("cni-bin", i), dir, "DirectoryOrCreate", false));
  add("agent-state", AGENT_DEFAULTS.stateDir, "DirectoryOrCreate", false);
  if (restart === RestartStrategy.Systemd) {
    add("dbus", DBUS_DIR, "Directory", true);
  }
  return mounts;
}

/**
 * The agent's command line. `--daemonset` lets it tell a rolling update from a removal;
 * `--runtime-classes` names the classes whose pods block an uninstall (the agent may not read
 * RuntimeClasses, and a custom `runtimeClassName` need not resemble the handler's name).
 */
export function agentArgs(plan: RuntimePlan, pool: PoolPlan): string[] {
  return agentArgv("run", {
    hostRoot: AGENT_DEFAULTS.hostRoot,
    containerdDistribution: plan.distribution,
    handler: plan.handler,
    restart: plan.restart,
    listen: { host: undefined, port: AGENT_HTTP.port },
    runtimeClasses: plan.runtimeClasses.map((c) => c.name),
    daemonset: pool.daemonSetName,
    managerSocket: plan.manager.socketPath,
    managerContainer: MANAGER_DEFAULTS.container,
    forceUninstall: plan.forceUninstall,
  });
}

/** Where in-cluster clients (the agent's @kubernetes/client-node) read token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const API_ACCESS_VOLUME = "kube-api-access";

/**
 * The agent's API credentials, exactly as the ServiceAccount admission plugin injects them for
 * automounted pods (plugin/pkg/admission/serviceaccount, Kubernetes >= 1.22): a bound token that
 * kubelet rotates (3607 s, the plugin's value), the cluster CA from the `kube-root-ca.crt`
 * ConfigMap every namespace has, and the namespace.
 */
function apiAccessVolume(): k8s.types.input.core.v1.Volume {
  return {
    name: API_ACCESS_VOLUME,
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
  };
}

/** The host directory of the manager's socket, shared by the manager (rw) and the agent (ro). */
export function managerSocketDir(plan: RuntimePlan): string {
  return dirname(plan.manager.socketPath);
}

/**
 * vNode's manager, in its own container of the agent's pod so that each process gets only its
 * own privileges: the agent keeps every capability dropped, the manager gets what vNode's
 * runtime needs (see the securityContext below). It runs the payload's `vnode-manager` role from
 * the same image whose payload the agent installs, so shim and manager always match.
 */
export function managerContainer(
  plan: RuntimePlan,
  pool: PoolPlan,
): k8s.types.input.core.v1.Container {
  return {
    name: MANAGER_DEFAULTS.container,
    image: plan.image,
    imagePullPolicy: "IfNotPresent",
    // argv[0] names the role: the payload dir holds the multi-call binary under each role name.
    command: [`${AGENT_IMAGE.payloadDir}/${PAYLOAD_ROLES.manager}`],
    ...(plan.manager.args.length > 0 ? { args: [...plan.manager.args] } : {}),
    env: [
      { name: NODE_NAME_ENV, valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      { name: VNODE_PER_POD_ENV, value: encodePerPod(pool.isolationMode) },
    ],
    ...(Object.keys(plan.manager.resources.requests).length +
      Object.keys(plan.manager.resources.limits).length >
    0
      ? { resources: managerResources(plan) }
      : {}),
    terminationMessagePolicy: "FallbackToLogsOnError",
    securityContext: {
      // vNode's manager serves FUSE file systems (sysbox-fs's /proc and /sys views), which needs
      // /dev/fuse: a non-privileged container's device cgroup denies it and Kubernetes has no
      // field to allow one device. It also mounts, creates user namespaces with arbitrary ID
      // maps and serves seccomp user notifications for processes in other namespaces
      // (CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_SYS_PTRACE, no seccomp filter of its own).
      privileged: true,
      // The pod's RuntimeDefault would filter the seccomp, mount and unshare calls it makes.
      seccompProfile: { type: "Unconfined" },
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
    },
    volumeMounts: [
      // The shim, run by containerd on the host, hands containerd this socket's host path.
      { name: "vnode-run", mountPath: managerSocketDir(plan) },
    ],
  };
}

function managerResources(plan: RuntimePlan): k8s.types.input.core.v1.ResourceRequirements {
  const { requests, limits } = plan.manager.resources;
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}

/** The Kubernetes provider skips its await on objects with this annotation set to `"true"`. */
export const SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait";

export function buildDaemonSet(
  plan: RuntimePlan,
  pool: PoolPlan,
  namespace: pulumi.Input<string>,
): k8s.apps.v1.DaemonSetArgs {
  const mounts = hostMounts(plan.distribution, plan.restart);
  const selector = selectorLabels(plan.name, pool.name);
  const podAnnotations = withUserAnnotations(plan, scrapeAnnotations(plan));
  const env: k8s.types.input.core.v1.EnvVar[] = [
    { name: NODE_NAME_ENV, valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    { name: POD_NAMESPACE_ENV, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    // The agent reads its own pod's status for the manager container's restarts.
    { name: POD_NAME_ENV, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: VNODE_PER_POD_ENV, value: encodePerPod(pool.isolationMode) },
    ...plan.env.map((entry) =>
      entry.secretKeyRef !== undefined
        ? {
            name: entry.name,
            valueFrom: {
              secretKeyRef: { name: entry.secretKeyRef.name, key: entry.secretKeyRef.key },
            },
          }
        : { name: entry.name, value: entry.value },
    ),
  ];
  const podSpec: k8s.types.input.core.v1.PodSpec = {
    serviceAccountName: plan.agentName,
    // Kubernetes mounts the ServiceAccount token into EVERY container of a pod unless the pod opts
    // out; the privileged manager does not call the API, so only the agent gets the token, through
    // the same projected volume the ServiceAccount admission plugin would inject.
    automountServiceAccountToken: false,
    priorityClassName: plan.priorityClassName,
    // Long enough to revert containerd's config, restart containerd and remove the payload when
    // the node leaves the runtime.
    terminationGracePeriodSeconds: plan.terminationGracePeriodSeconds,
    nodeSelector: pool.nodeSelector,
    tolerations: plan.tolerations,
    // RuntimeDefault seccomp for every container of the pod.
    securityContext: { seccompProfile: { type: "RuntimeDefault" } },
    containers: [
      {
        name: AGENT_CONTAINER,
        image: plan.image,
        imagePullPolicy: "IfNotPresent",
        command: ["vnode-agent"],
        args: agentArgs(plan, pool),
        env,
        ports: [{ name: AGENT_HTTP.portName, containerPort: AGENT_HTTP.port, protocol: "TCP" }],
        livenessProbe: {
          httpGet: { path: AGENT_HTTP.healthz, port: AGENT_HTTP.portName },
          initialDelaySeconds: 10,
          periodSeconds: 10,
          timeoutSeconds: 5,
          failureThreshold: 3,
        },
        readinessProbe: {
          httpGet: { path: AGENT_HTTP.readyz, port: AGENT_HTTP.portName },
          periodSeconds: 10,
          timeoutSeconds: 5,
          failureThreshold: 3,
        },
        resources: plan.resources,
        terminationMessagePolicy: "FallbackToLogsOnError",
        securityContext: {
          // uid 0 owns the host files the agent edits (containerd's config, /opt/vnode, its state
          // dir) and systemd authorizes RestartUnit for uid 0 over D-Bus, so being root is
          // enough: no capability is needed (owner permissions, same-uid signals for `kill`).
          runAsUser: 0,
          runAsGroup: 0,
          runAsNonRoot: false,
          privileged: false,
          // Nothing the agent runs needs to gain privileges (no setuid helpers).
          allowPrivilegeEscalation: false,
          // Drop every capability: none of the above needs one, and none is added back.
          capabilities: { drop: ["ALL"] },
          // The image is immutable at run time; scratch space is the /tmp emptyDir.
          readOnlyRootFilesystem: true,
        },
        volumeMounts: [
          ...mounts.map((mount) => ({
            name: mount.volume,
            mountPath: `${AGENT_DEFAULTS.hostRoot}${mount.hostPath}`,
            readOnly: mount.readOnly,
          })),
          { name: "tmp", mountPath: "/tmp" },
          { name: API_ACCESS_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true },
          // Readiness connects to the manager's socket; connecting needs no write access.
          {
            name: "vnode-run",
            mountPath: `${AGENT_DEFAULTS.hostRoot}${managerSocketDir(plan)}`,
            readOnly: true,
          },
        ],
      },
      managerContainer(plan, pool),
    ],
    volumes: [
      ...mounts.map((mount) => ({
        name: mount.volume,
        hostPath: { path: mount.hostPath, type: mount.type },
      })),
      { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
      apiAccessVolume(),
      { name: "vnode-run", hostPath: { path: managerSocketDir(plan), type: "DirectoryOrCreate" } },
    ],
  };
  if (plan.restart === RestartStrategy.Kill || plan.manager.hostPID) {
    // Only `kill` needs to see (and signal) the host's containerd process; `manager.hostPID` is
    // an opt-in for vNode releases whose manager must see host processes (pod-wide either way).
    podSpec.hostPID = true;
  }
  if (plan.affinity !== undefined) {
    podSpec.affinity = plan.affinity;
  }
  const metadata = namespacedMeta(plan, pool.daemonSetName, namespace, selector);
  if (plan.rollout.wait === RolloutWait.None) {
    // `pulumi up` does not wait for the rollout (rollout.wait none).
    metadata.annotations = withUserAnnotations(plan, { [SKIP_AWAIT_ANNOTATION]: "true" });
  }
  return {
    metadata,
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxUnavailable: plan.maxUnavailable },
      },
      template: {
        metadata: {
          labels: withUserLabels(plan, { ...standardLabels(plan.name), ...selector }),
          ...(podAnnotations !== undefined ? { annotations: podAnnotations } : {}),
        },
        spec: podSpec,
      },
    },
  };
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}
