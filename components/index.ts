/**
 * The vNode runtime component package. Other TypeScript stacks import it from here; Python, Go and
 * YAML stacks use it through `pulumi package add` (PulumiPlugin.yaml beside this file).
 */
export { VNodeRuntime } from "./vnodeRuntime";
export {
  AgentConfinement,
  AgentEnvArgs,
  AgentImageArgs,
  AgentImageBuildArgs,
  AgentImagePlatform,
  AgentImageRegistryArgs,
  AgentResourcesArgs,
  CertManagerArgs,
  ContainerdDistribution,
  EnforcementArgs,
  EnforcementBackend,
  EnforcementMode,
  EnforcementScope,
  FailurePolicy,
  IsolationMode,
  IssuerKind,
  IssuerRefArgs,
  LabelSelectorArgs,
  LabelSelectorOperator,
  LabelSelectorRequirementArgs,
  ManagerArgs,
  MetricsArgs,
  MetricsMode,
  MutatingPolicyApiVersion,
  NamespaceLabelGuardArgs,
  OverheadArgs,
  PodSecurityLevel,
  PoolArgs,
  QuantitiesArgs,
  RestartStrategy,
  RolloutArgs,
  RolloutWait,
  SecretKeyRefArgs,
  StringMapInput,
  TolerationsInput,
  UpdateStrategyArgs,
  VNodeRuntimeArgs,
} from "./args";
export { DEFAULTS } from "./defaults";
export { VNodeRuntimeArgsError } from "./validate";
