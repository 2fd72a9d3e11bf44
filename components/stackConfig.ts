/**
 * Reads the stack program's config (`Pulumi.yaml` `config:` block + `Pulumi.<stack>.yaml`) into
 * `VNodeRuntimeArgs`. Pulumi types only scalars and arrays of scalars, so the object-valued keys
 * are passed through untyped and checked by `validateArgs`, whose messages name the same keys.
 */
import * as pulumi from "@pulumi/pulumi";
import type { AgentEnvArgs, AgentImageArgs, VNodeRuntimeArgs } from "./args";
import { show } from "./validate";

/** Keys typed in Pulumi.yaml (with their defaults there), and how they are read. */
export const TYPED_KEYS = {
  isolationMode: "string",
  namespace: "string",
  createNamespace: "boolean",
  runtimeClassName: "string",
  handler: "string",
  containerdDistribution: "string",
  restartStrategy: "string",
  priorityClassName: "string",
  maxUnavailable: "integer",
  terminationGracePeriodSeconds: "integer",
  forceUninstall: "boolean",
  retainNamespace: "boolean",
} as const;

/**
 * Keys Pulumi.yaml cannot declare (objects, lists of objects, a string without a default: a
 * declared key without a default is required, and `agentImage`, a string or an object),
 * documented in Pulumi.yaml comments.
 */
export const UNTYPED_KEYS = [
  "agentImage",
  "vnodeImage",
  "perPodRuntimeClassName",
  "nodeSelector",
  "tolerations",
  "affinity",
  "resources",
  "manager",
  "maxUnavailablePercent",
  "rollout",
  "overhead",
  "runtimeClassTolerations",
  "pools",
  "env",
  "secretEnv",
  "labels",
  "annotations",
  "metrics",
  "enforcement",
  "certManager",
] as const;

/** Thrown for config problems found before the component validates; names the config key. */
export class StackConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StackConfigError";
  }
}

/**
 * Builds the component's args from the current stack's config. `project` is the config namespace
 * (the project name); keys of that namespace that this program does not know are an error, so a
 * typo does not silently fall back to a default.
 */
export function readStackConfig(project: string): VNodeRuntimeArgs {
  const config = new pulumi.Config(project);
  const known: string[] = [...Object.keys(TYPED_KEYS), ...UNTYPED_KEYS];
  for (const fullKey of Object.keys(pulumi.runtime.allConfig())) {
    const [namespace, key] = splitKey(fullKey);
    if (namespace === project && !known.includes(key)) {
      throw new StackConfigError(
        `Config key ${fullKey} is unknown; known keys: ${known.join(", ")}.`,
      );
    }
  }

  const agentImage = readAgentImage(config, project);
  // maxUnavailable always has Pulumi.yaml's default, so a percentage set beside it wins.
  const maxUnavailablePercent = readInteger(config, project, "maxUnavailablePercent");
  const maxUnavailable =
    maxUnavailablePercent === undefined
      ? readInteger(config, project, "maxUnavailable")
      : undefined;
  const terminationGracePeriodSeconds = readInteger(
    config,
    project,
    "terminationGracePeriodSeconds",
  );

  const args: Record<string, unknown> = {
    agentImage,
    vnodeImage: config.get("vnodeImage"),
    isolationMode: config.get("isolationMode"),
    namespace: config.get("namespace"),
    createNamespace: readBoolean(config, project, "createNamespace"),
    runtimeClassName: config.get("runtimeClassName"),
    perPodRuntimeClassName: config.get("perPodRuntimeClassName"),
    handler: config.get("handler"),
    containerdDistribution: config.get("containerdDistribution"),
    restartStrategy: config.get("restartStrategy"),
    nodeSelector: config.getObject("nodeSelector"),
    tolerations: config.getObject("tolerations"),
    affinity: config.getObject("affinity"),
    priorityClassName: config.get("priorityClassName"),
    resources: config.getObject("resources"),
    manager: config.getObject("manager"),
    updateStrategy:
      maxUnavailablePercent !== undefined
        ? { maxUnavailablePercent }
        : maxUnavailable !== undefined
          ? { maxUnavailable }
          : undefined,
    rollout: config.getObject("rollout"),
    terminationGracePeriodSeconds,
    forceUninstall: readBoolean(config, project, "forceUninstall"),
    retainNamespace: readBoolean(config, project, "retainNamespace"),
    overhead: config.getObject("overhead"),
    runtimeClassTolerations: config.getObject("runtimeClassTolerations"),
    pools: config.getObject("pools"),
    env: readEnv(config, project),
    labels: config.getObject("labels"),
    annotations: config.getObject("annotations"),
    metrics: config.getObject("metrics"),
    enforcement: config.getObject("enforcement"),
    certManager: config.getObject("certManager"),
  };
  // Unset keys stay unset, so the component's defaults apply.
  for (const key of Object.keys(args)) {
    if (args[key] === undefined) {
      delete args[key];
    }
  }
  return args as unknown as VNodeRuntimeArgs;
}

/**
 * `agentImage` is the image reference as a string, or an object like the component's arg:
 * `{ build: { registry, repository, ... } }`, so the component's errors name the config path. The
 * registry password (`pulumi config set --secret --path agentImage.build.registry.password ...`)
 * is read as a secret; the rest stays plain, so the image ref the DaemonSets get is no secret.
 */
function readAgentImage(config: pulumi.Config, project: string): AgentImageArgs {
  const raw = config.get("agentImage");
  if (raw === undefined || raw.trim() === "") {
    throw new StackConfigError(
      `Config key ${project}:agentImage is required: the agent image reference, e.g. \`pulumi config set agentImage ghcr.io/acme/vnode-agent:0.1.0\`, or { build: { registry, repository } } to build and push it from this repository.`,
    );
  }
  if (!raw.trimStart().startsWith("{")) {
    return { ref: raw };
  }
  const image = config.getObject<Record<string, unknown>>("agentImage") as Record<string, unknown>;
  const build = image.build as Record<string, unknown> | undefined;
  const registry = build?.registry as Record<string, unknown> | undefined;
  if (!isRecord(build) || !isRecord(registry) || registry.password === undefined) {
    return image as AgentImageArgs;
  }
  if (typeof registry.password !== "string") {
    throw new StackConfigError(
      `Config key ${project}:agentImage.build.registry.password must be a string; got a ${typeof registry.password}.`,
    );
  }
  const password = config
    .requireSecretObject<{ build: { registry: { password: string } } }>("agentImage")
    .apply((value) => value.build.registry.password);
  return {
    ...image,
    build: { ...build, registry: { ...registry, password } },
  } as unknown as AgentImageArgs;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * `env` holds literals and Secret references; `secretEnv` (a map set with
 * `pulumi config set --secret --path secretEnv.NAME value`) holds secret values, which stay Pulumi
 * secrets and so reach the pod only through the component's Kubernetes Secret.
 */
function readEnv(config: pulumi.Config, project: string): AgentEnvArgs[] | undefined {
  const env = config.getObject<unknown>("env");
  if (env !== undefined && !Array.isArray(env)) {
    throw new StackConfigError(
      `Config key ${project}:env must be a list of { name, value } or { name, secretKeyRef: { name, key } }; got ${show(env)}.`,
    );
  }
  // Names are needed synchronously (one env var each); values are read as secrets.
  const plain = config.getObject<unknown>("secretEnv");
  if (plain === undefined) {
    return env as AgentEnvArgs[] | undefined;
  }
  if (typeof plain !== "object" || plain === null || Array.isArray(plain)) {
    throw new StackConfigError(
      `Config key ${project}:secretEnv must be a map of env var names to secret values; got a ${Array.isArray(plain) ? "list" : typeof plain}.`,
    );
  }
  for (const [name, value] of Object.entries(plain)) {
    if (typeof value !== "string") {
      throw new StackConfigError(
        `Config key ${project}:secretEnv.${name} must be a string; got a ${typeof value}.`,
      );
    }
  }
  const secrets = config.requireSecretObject<Record<string, string>>("secretEnv");
  const secretEntries: AgentEnvArgs[] = Object.keys(plain).map((name) => ({
    name,
    value: secrets.apply((values) => values[name]),
  }));
  return [...((env as AgentEnvArgs[] | undefined) ?? []), ...secretEntries];
}

function readInteger(config: pulumi.Config, project: string, key: string): number | undefined {
  const raw = config.get(key);
  if (raw === undefined) {
    return undefined;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new StackConfigError(
      `Config key ${project}:${key} must be an integer of at least 1; got ${show(raw)}.`,
    );
  }
  return value;
}

function readBoolean(config: pulumi.Config, project: string, key: string): boolean | undefined {
  const raw = config.get(key);
  if (raw === undefined) {
    return undefined;
  }
  if (raw !== "true" && raw !== "false") {
    throw new StackConfigError(
      `Config key ${project}:${key} must be true or false; got ${show(raw)}.`,
    );
  }
  return raw === "true";
}

function splitKey(fullKey: string): [string, string] {
  const colon = fullKey.indexOf(":");
  return colon === -1 ? ["", fullKey] : [fullKey.slice(0, colon), fullKey.slice(colon + 1)];
}
