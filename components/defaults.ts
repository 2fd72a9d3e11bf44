/**
 * Defaults of every optional argument, and `resolveArgs`, which turns validated args into the
 * complete description (`RuntimePlan`) the builders render. Pure: no Pulumi resources. Values that
 * may come from other resources stay `Input`s; where the plan merges them (node selectors,
 * tolerations, resources) the merge is plain for known values and an Output otherwise
 * (validate/known.ts), so a plain program gets a plain plan.
 */
import type * as pulumi from "@pulumi/pulumi";
import type * as k8s from "@pulumi/kubernetes";
import { AGENT_DEFAULTS, MANAGER_DEFAULTS } from "vnode-contract";
import {
  AgentConfinement,
  AgentEnvArgs,
  AgentImagePlatform,
  ContainerdDistribution,
  IsolationMode,
  MetricsMode,
  QuantitiesArgs,
  RestartStrategy,
  RolloutWait,
  SecretKeyRefArgs,
  StringMapInput,
  TolerationsInput,
  VNodeRuntimeArgs,
} from "./args";
import { deriveInput, isKnownValue, mergeMaps } from "./validate/known";
import { DEFAULT_POOL, agentName, daemonSetName, envSecretName, runtimeClassNames } from "./names";
import { ENFORCEMENT_DEFAULTS, EnforcementPlan, planEnforcement } from "./enforcement/plan";

/** The default of every optional argument. README and Pulumi.yaml quote these; a test keeps them equal. */
export const DEFAULTS = {
  isolationMode: IsolationMode.PerNamespace,
  agentConfinement: AgentConfinement.NodeAndLabels,
  namespace: "vnode-runtime",
  createNamespace: true,
  runtimeClassName: "vnode",
  handler: AGENT_DEFAULTS.handler,
  containerdDistribution: ContainerdDistribution.Containerd,
  restartStrategy: RestartStrategy.Systemd,
  /** Always part of the agent's nodeSelector: the agent and vNode are Linux-only. */
  nodeSelector: { "kubernetes.io/os": "linux" } as Record<string, string>,
  tolerations: [{ operator: "Exists" }] as k8s.types.input.core.v1.Toleration[],
  priorityClassName: "system-node-critical",
  resources: { requests: { cpu: "20m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  /** vNode does not document the manager's socket: this is the contract's default. */
  managerSocketPath: MANAGER_DEFAULTS.socket as string,
  maxUnavailable: 1,
  /** Never fails a mixed cluster; `ready` waits the provider's own default of 10 minutes. */
  rollout: { wait: RolloutWait.None as RolloutWait, timeoutSeconds: 600 },
  terminationGracePeriodSeconds: 120,
  forceUninstall: false,
  retainNamespace: false,
  /** Estimates, not measurements: per-pod runs one vNode per pod, so it is dearer. */
  overhead: {
    [IsolationMode.PerNamespace]: { cpu: "10m", memory: "32Mi" },
    [IsolationMode.PerPod]: { cpu: "50m", memory: "96Mi" },
  } as Record<IsolationMode, Required<QuantitiesArgs>>,
  metricsMode: MetricsMode.Annotations,
  metricsInterval: "30s",
  /** `agentImage.build`; its tag defaults to the agent package's version, its context to this repository. */
  agentImageBuild: {
    push: true,
    platforms: [AgentImagePlatform.LinuxAmd64] as AgentImagePlatform[],
    /** Relative to the build context. */
    dockerfile: "agent/Dockerfile",
  },
  /** `enforcement` and `certManager`. */
  enforcement: ENFORCEMENT_DEFAULTS,
};

/** The ARGs `agent/Dockerfile` declares, in file order; a test keeps this list equal to the file. */
export const AGENT_DOCKERFILE_ARGS = [
  "BUILD_IMAGE",
  "BASE_IMAGE",
  "VNODE_IMAGE",
  "VNODE_PAYLOAD",
  "NPM_CONFIG_REGISTRY",
  "VERSION",
  "REVISION",
  "SOURCE",
];

/**
 * ARGs the component sets itself and `agentImage.build.buildArgs` may not: `VNODE_IMAGE` comes
 * from `vnodeImage`, and `VNODE_PAYLOAD` stays `image` (`local` is for tests and CLI builds).
 */
export const COMPONENT_BUILD_ARGS: Record<string, string> = {
  VNODE_IMAGE: "set vnodeImage instead",
  VNODE_PAYLOAD:
    "the component always takes the payload from vnodeImage (VNODE_PAYLOAD=local is for builds outside Pulumi)",
};

/** One agent DaemonSet. */
export interface PoolPlan {
  /** The pool's name (`default` when `pools` is not set). */
  name: string;
  /** The pool's name as given in `pools`; undefined when `pools` is not set. */
  poolArg: string | undefined;
  isolationMode: IsolationMode;
  daemonSetName: string;
  /** The DaemonSet's complete nodeSelector: defaults, the component's and the pool's. */
  nodeSelector: pulumi.Input<Record<string, string>>;
}

/** One RuntimeClass, per isolation mode in use. */
export interface RuntimeClassPlan {
  isolationMode: IsolationMode;
  name: string;
  /** `overhead.podFixed`, or undefined when overhead is disabled. */
  podFixed: Required<QuantitiesArgs> | undefined;
  /** `runtimeClassTolerations` followed by the tolerations of this mode's pools, without duplicates. */
  tolerations: pulumi.Input<k8s.types.input.core.v1.Toleration[]>;
}

/** An agent env var that is a literal in the pod spec or a reference to a Secret key. */
export interface EnvPlan {
  name: string;
  value?: string;
  secretKeyRef?: SecretKeyRefArgs;
}

/** Everything the builders need, with every default applied. */
export interface RuntimePlan {
  /** The component's name, the prefix of every object name. */
  name: string;
  /**
   * The runtime namespace, an Output when it comes from another resource. Then the parts of the
   * plan computed from its value (enforcement's exclusions and DNS names) hold
   * `UNRESOLVED_NAMESPACE`, and the builders that use them run again with the resolved value
   * (vnodeRuntime.ts `inNamespace`).
   */
  namespace: pulumi.Input<string>;
  createNamespace: boolean;
  /** Keep the created namespace on delete (`retainOnDelete`). */
  retainNamespace: boolean;
  handler: string;
  distribution: ContainerdDistribution;
  restart: RestartStrategy;
  /** The image the DaemonSets run: `agentImage.ref`, or the pushed build's digest-pinned ref. */
  image: pulumi.Input<string>;
  /** ServiceAccount, ClusterRole(Binding), Role(Binding) name. */
  agentName: string;
  /** How the agent's node writes are confined (`agentConfinement`). */
  agentConfinement: AgentConfinement;
  tolerations: TolerationsInput;
  affinity: pulumi.Input<k8s.types.input.core.v1.Affinity> | undefined;
  priorityClassName: pulumi.Input<string>;
  resources: pulumi.Input<{ requests: Record<string, string>; limits: Record<string, string> }>;
  /** vNode's manager container. */
  manager: {
    /** Host path of its unix socket; its directory is shared with the agent. */
    socketPath: string;
    args: string[];
    resources: { requests: Record<string, string>; limits: Record<string, string> };
    hostPID: boolean;
  };
  /** `rollingUpdate.maxUnavailable`: a count, or a percentage as `"<n>%"`. */
  maxUnavailable: number | string;
  rollout: { wait: RolloutWait; timeoutSeconds: number };
  terminationGracePeriodSeconds: pulumi.Input<number>;
  forceUninstall: boolean;
  pools: PoolPlan[];
  runtimeClasses: RuntimeClassPlan[];
  /** Env in the pod spec; values only known at deploy time are `secretKeyRef`s into `envSecret`. */
  env: EnvPlan[];
  /** The Secret with the deploy-time env values, or undefined when there are none. */
  envSecret: { name: string; data: Record<string, pulumi.Input<string>> } | undefined;
  labels: StringMapInput;
  annotations: StringMapInput;
  metrics: { mode: MetricsMode; interval: string; podMonitorLabels: Record<string, string> };
  /** Tenancy enforcement, or undefined without `enforcement`. */
  enforcement: EnforcementPlan | undefined;
}

/** A plan whose namespace is known: what builders that read the namespace's value take. */
export type KnownNamespacePlan = RuntimePlan & { namespace: string };

/** Modes in use, in enum order, without duplicates. */
export function modesInUse(pools: readonly { isolationMode: IsolationMode }[]): IsolationMode[] {
  return Object.values(IsolationMode).filter((mode) =>
    pools.some((pool) => pool.isolationMode === mode),
  );
}

/**
 * Turns validated args into a plan. Call `validateArgs` first: this trusts its input. `image` is
 * the built image's ref with `agentImage.build`; it defaults to `agentImage.ref`.
 */
export function resolveArgs(
  name: string,
  args: VNodeRuntimeArgs,
  image: pulumi.Input<string> | undefined = args.agentImage.ref,
): RuntimePlan {
  if (image === undefined) {
    throw new Error("resolveArgs: with agentImage.build, pass the built image's ref as `image`.");
  }
  const isolationMode = args.isolationMode ?? DEFAULTS.isolationMode;
  const pools: PoolPlan[] = (args.pools ?? [{ name: DEFAULT_POOL }]).map((pool) => ({
    name: pool.name,
    poolArg: args.pools === undefined ? undefined : pool.name,
    isolationMode: pool.isolationMode ?? isolationMode,
    daemonSetName: daemonSetName(name, args.pools === undefined ? undefined : pool.name),
    // Never empty: the default selector is always part of it.
    nodeSelector: mergeMaps(
      DEFAULTS.nodeSelector,
      args.nodeSelector,
      pool.nodeSelector,
    ) as pulumi.Input<Record<string, string>>,
  }));

  const modes = modesInUse(pools);
  const classNames = runtimeClassNames(
    args.runtimeClassName ?? DEFAULTS.runtimeClassName,
    args.perPodRuntimeClassName,
    modes,
  );
  const overheadEnabled = args.overhead?.enabled ?? true;
  const runtimeClasses: RuntimeClassPlan[] = modes.map((mode) => {
    const override =
      mode === IsolationMode.PerPod ? args.overhead?.perPod : args.overhead?.perNamespace;
    const poolTolerations = (args.pools ?? [])
      .filter((pool) => (pool.isolationMode ?? isolationMode) === mode)
      .map((pool) => pool.tolerations);
    return {
      isolationMode: mode,
      name: classNames[mode] as string,
      podFixed: overheadEnabled
        ? {
            cpu: override?.cpu ?? DEFAULTS.overhead[mode].cpu,
            memory: override?.memory ?? DEFAULTS.overhead[mode].memory,
          }
        : undefined,
      tolerations: deriveInput(
        [args.runtimeClassTolerations, ...poolTolerations] as unknown as pulumi.Input<
          (Toleration[] | undefined)[]
        >,
        (lists: (Toleration[] | undefined)[]) =>
          uniqueTolerations(lists.flatMap((list) => list ?? [])),
      ) as pulumi.Input<k8s.types.input.core.v1.Toleration[]>,
    };
  });

  const { env, envSecret } = planEnv(name, args.env ?? []);
  const namespace = args.namespace ?? DEFAULTS.namespace;
  const knownNamespace = isKnownValue(namespace) ? (namespace as string) : UNRESOLVED_NAMESPACE;
  return {
    name,
    namespace,
    createNamespace: args.createNamespace ?? DEFAULTS.createNamespace,
    retainNamespace: args.retainNamespace ?? DEFAULTS.retainNamespace,
    handler: args.handler ?? DEFAULTS.handler,
    distribution: args.containerdDistribution ?? DEFAULTS.containerdDistribution,
    restart: args.restartStrategy ?? DEFAULTS.restartStrategy,
    image,
    agentName: agentName(name),
    agentConfinement: args.agentConfinement ?? DEFAULTS.agentConfinement,
    tolerations: args.tolerations ?? DEFAULTS.tolerations,
    affinity: args.affinity,
    priorityClassName: args.priorityClassName ?? DEFAULTS.priorityClassName,
    resources: deriveInput(args.resources ?? {}, (resources) => ({
      requests: definedOnly({ ...DEFAULTS.resources.requests, ...(resources.requests ?? {}) }),
      limits: definedOnly({ ...DEFAULTS.resources.limits, ...(resources.limits ?? {}) }),
    })) as RuntimePlan["resources"],
    manager: {
      socketPath: args.manager?.socketPath ?? DEFAULTS.managerSocketPath,
      args: [...(args.manager?.args ?? [])],
      resources: {
        requests: definedOnly({ ...(args.manager?.resources?.requests ?? {}) }),
        limits: definedOnly({ ...(args.manager?.resources?.limits ?? {}) }),
      },
      hostPID: args.manager?.hostPID ?? false,
    },
    maxUnavailable:
      args.updateStrategy?.maxUnavailablePercent !== undefined
        ? `${args.updateStrategy.maxUnavailablePercent}%`
        : (args.updateStrategy?.maxUnavailable ?? DEFAULTS.maxUnavailable),
    rollout: {
      wait: args.rollout?.wait ?? DEFAULTS.rollout.wait,
      timeoutSeconds: args.rollout?.timeoutSeconds ?? DEFAULTS.rollout.timeoutSeconds,
    },
    terminationGracePeriodSeconds:
      args.terminationGracePeriodSeconds ?? DEFAULTS.terminationGracePeriodSeconds,
    forceUninstall: args.forceUninstall ?? DEFAULTS.forceUninstall,
    pools,
    runtimeClasses,
    env,
    envSecret,
    labels: copyMap(args.labels),
    annotations: copyMap(args.annotations),
    metrics: {
      mode: args.metrics?.mode ?? DEFAULTS.metricsMode,
      interval: args.metrics?.interval ?? DEFAULTS.metricsInterval,
      podMonitorLabels: { ...(args.metrics?.podMonitorLabels ?? {}) },
    },
    enforcement:
      args.enforcement !== undefined
        ? planEnforcement(name, args.enforcement, args.certManager, {
            namespace: knownNamespace,
            isolationMode,
            classes: runtimeClasses,
          })
        : undefined,
  };
}

/**
 * Splits env into literals and values only known at deploy time. Whether a value is a Pulumi
 * secret is only known asynchronously, and children must not be created inside `apply`, so every
 * non-literal value goes to the Secret: a secret can never reach the pod spec.
 */
function planEnv(
  name: string,
  env: readonly AgentEnvArgs[],
): Pick<RuntimePlan, "env" | "envSecret"> {
  const secretName = envSecretName(name);
  const data: Record<string, pulumi.Input<string>> = {};
  const planned = env.map((entry): EnvPlan => {
    if (entry.secretKeyRef !== undefined) {
      return {
        name: entry.name,
        secretKeyRef: { name: entry.secretKeyRef.name, key: entry.secretKeyRef.key },
      };
    }
    if (typeof entry.value === "string") {
      return { name: entry.name, value: entry.value };
    }
    data[entry.name] = entry.value as pulumi.Input<string>;
    return { name: entry.name, secretKeyRef: { name: secretName, key: entry.name } };
  });
  return {
    env: planned,
    envSecret: Object.keys(data).length > 0 ? { name: secretName, data } : undefined,
  };
}

/**
 * Stands in for the namespace's value in the plan while it is an Output. A DNS-1123 label, as the
 * contract's rules require of every namespace they get; only the shape of what is built with it is
 * used (vnodeRuntime.ts `buildInNamespace`), and test/component/inputs.test.ts checks that it never
 * reaches an object.
 */
export const UNRESOLVED_NAMESPACE = "unresolved-namespace";

/** A copy of a known map (so the plan never aliases the args); an Input as it is. */
function copyMap(map: StringMapInput | undefined): StringMapInput {
  return map === undefined ? {} : isKnownValue(map) ? { ...(map as object) } : map;
}

function definedOnly(quantities: { [key: string]: unknown }): Record<string, string> {
  return Object.fromEntries(
    Object.entries(quantities).filter(([, value]) => value !== undefined),
  ) as Record<string, string>;
}

type Toleration = {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
};

function uniqueTolerations(tolerations: readonly Toleration[]): Toleration[] {
  const seen = new Set<string>();
  return tolerations.filter((toleration) => {
    const key = JSON.stringify([
      toleration.key,
      toleration.operator,
      toleration.value,
      toleration.effect,
      toleration.tolerationSeconds,
    ]);
    if (seen.has(key)) {
      return false;
    }
    seen.add(key);
    return true;
  });
}
