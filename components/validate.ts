/**
 * Validation of `VNodeRuntimeArgs`, before any resource is registered. Args arrive from
 * TypeScript, from YAML stack config and from other languages through the provider, so nothing is
 * trusted: every check names the argument, the bad value and what is allowed, in one sentence.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  CONTAINERD_DISTRIBUTIONS,
  ISOLATION_MODE_LABEL,
  NODE_NAME_ENV,
  POD_NAMESPACE_ENV,
  RUNTIME_LABEL,
  VNODE_PER_POD_ENV,
} from "vnode-contract";
import {
  AgentImagePlatform,
  EnforcementBackend,
  EnforcementMode,
  FailurePolicy,
  IsolationMode,
  IssuerKind,
  LabelSelectorOperator,
  MetricsMode,
  MutatingPolicyApiVersion,
  RestartStrategy,
  VNodeRuntimeArgs,
} from "./args";
import { AGENT_DOCKERFILE_ARGS, DEFAULTS, modesInUse } from "./defaults";
import { RESERVED_LABEL_KEYS } from "./labels";
import { daemonSetName, runtimeClassNames, webhookName } from "./names";

/** Thrown for invalid arguments; the message is meant for the user as is. */
export class VNodeRuntimeArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VNodeRuntimeArgsError";
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
// Kubernetes quantity: a decimal number with an optional binary/decimal suffix or exponent.
const QUANTITY = /^([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][-+]?[0-9]+)?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/;
// Image references (distribution/reference grammar): a registry host with an optional port, path
// components of lowercase letters and digits joined by separators, a tag, a digest.
const REGISTRY_HOST =
  /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*(:[0-9]+)?$/;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const IMAGE_REF = new RegExp(
  `^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`,
);
const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const DNS_LABEL_RULE =
  'a DNS-1123 label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)';
const DNS_SUBDOMAIN_RULE =
  'a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters)';

const TOP_LEVEL_FIELDS = [
  "agentImage",
  "isolationMode",
  "namespace",
  "createNamespace",
  "runtimeClassName",
  "perPodRuntimeClassName",
  "handler",
  "containerdDistribution",
  "restartStrategy",
  "nodeSelector",
  "tolerations",
  "affinity",
  "priorityClassName",
  "resources",
  "updateStrategy",
  "terminationGracePeriodSeconds",
  "overhead",
  "runtimeClassTolerations",
  "pools",
  "env",
  "labels",
  "annotations",
  "metrics",
  "enforcement",
  "certManager",
];

/** The component's own env vars, which `env` must not set. */
const RESERVED_ENV: Record<string, string> = {
  [NODE_NAME_ENV]: "the downward API (the node's name)",
  [POD_NAMESPACE_ENV]: "the downward API (the pod's namespace)",
  [VNODE_PER_POD_ENV]: "isolationMode",
};

/** Throws a `VNodeRuntimeArgsError` for the first problem found in `args`. */
export function validateArgs(name: string, args: VNodeRuntimeArgs | undefined): void {
  const fail = (message: string): never => {
    throw new VNodeRuntimeArgsError(message);
  };
  if (typeof name !== "string" || !DNS_LABEL.test(name) || name.length > 63) {
    fail(
      `name must be ${DNS_LABEL_RULE}, because it prefixes the Kubernetes object names; got ${show(name)}.`,
    );
  }
  if (!isObject(args)) {
    fail(
      `args must be an object with at least agentImage: { ref: "<image>" } or agentImage: { build: { registry, repository } }; got ${show(args)}.`,
    );
  }
  const a = args as unknown as Record<string, unknown>;
  checkFields("args", a, TOP_LEVEL_FIELDS, fail);

  checkAgentImage(a.agentImage, fail);

  checkEnum("isolationMode", a.isolationMode, Object.values(IsolationMode), fail);
  checkDnsLabel("namespace", a.namespace, fail);
  checkBoolean("createNamespace", a.createNamespace, fail);
  checkDnsSubdomain("runtimeClassName", a.runtimeClassName, fail);
  checkDnsSubdomain("perPodRuntimeClassName", a.perPodRuntimeClassName, fail);
  checkDnsLabel("handler", a.handler, fail);
  checkEnum(
    "containerdDistribution",
    a.containerdDistribution,
    Object.keys(CONTAINERD_DISTRIBUTIONS),
    fail,
  );
  checkEnum("restartStrategy", a.restartStrategy, Object.values(RestartStrategy), fail);
  checkLabels("nodeSelector", a.nodeSelector, fail);
  checkTolerations("tolerations", a.tolerations, fail);
  if (a.affinity !== undefined && !isObject(a.affinity)) {
    fail(`affinity must be a Kubernetes Affinity object; got ${show(a.affinity)}.`);
  }
  checkDnsSubdomain("priorityClassName", a.priorityClassName, fail);
  if (a.resources !== undefined) {
    const resources = checkObject("resources", a.resources, ["requests", "limits"], fail);
    checkQuantities("resources.requests", resources.requests, fail);
    checkQuantities("resources.limits", resources.limits, fail);
  }
  if (a.updateStrategy !== undefined) {
    const update = checkObject("updateStrategy", a.updateStrategy, ["maxUnavailable"], fail);
    checkInteger("updateStrategy.maxUnavailable", update.maxUnavailable, 1, fail);
  }
  checkInteger("terminationGracePeriodSeconds", a.terminationGracePeriodSeconds, 1, fail);
  if (a.overhead !== undefined) {
    const overhead = checkObject(
      "overhead",
      a.overhead,
      ["enabled", "perNamespace", "perPod"],
      fail,
    );
    checkBoolean("overhead.enabled", overhead.enabled, fail);
    checkQuantities("overhead.perNamespace", overhead.perNamespace, fail);
    checkQuantities("overhead.perPod", overhead.perPod, fail);
  }
  checkTolerations("runtimeClassTolerations", a.runtimeClassTolerations, fail);

  checkPools(name, a, fail);
  checkEnv(a.env, fail);
  checkLabels("labels", a.labels, fail);
  checkReservedLabels("labels", a.labels, fail);
  checkAnnotations("annotations", a.annotations, fail);
  checkMetrics(a.metrics, fail);
  checkEnforcement(name, a.enforcement, a.certManager, fail);
}

type Fail = (message: string) => never;

const IMAGE_EXAMPLE = '"ghcr.io/acme/vnode-agent:0.1.0"';

function checkAgentImage(agentImage: unknown, fail: Fail): void {
  if (agentImage === undefined) {
    fail(
      `agentImage is required: set agentImage.ref to a prebuilt agent image reference, e.g. ${IMAGE_EXAMPLE}, or agentImage.build to build and push it from this repository.`,
    );
  }
  if (!isObject(agentImage)) {
    fail(
      `agentImage must be an object like { ref: ${IMAGE_EXAMPLE} } or { build: { registry, repository } }; got ${show(agentImage)}.`,
    );
  }
  const image = agentImage as Record<string, unknown>;
  checkFields("agentImage", image, ["ref", "build"], fail);
  const hasRef = image.ref !== undefined && image.ref !== null;
  const hasBuild = image.build !== undefined && image.build !== null;
  if (hasRef && hasBuild) {
    fail(
      "agentImage.ref and agentImage.build are exclusive: set agentImage.ref to run a prebuilt image, or agentImage.build to build and push one; got both.",
    );
  }
  if (!hasRef && !hasBuild) {
    fail(
      `agentImage needs exactly one of agentImage.ref (a prebuilt image reference, e.g. ${IMAGE_EXAMPLE}) and agentImage.build (build and push it from this repository); got neither.`,
    );
  }
  if (hasRef) {
    if (typeof image.ref !== "string" && !isInputValue(image.ref)) {
      fail(`agentImage.ref must be a string; got ${show(image.ref)}.`);
    }
    if (image.ref === "") {
      fail(`agentImage.ref must be an image reference, e.g. ${IMAGE_EXAMPLE}; got "".`);
    }
    if (typeof image.ref === "string" && /\s/.test(image.ref)) {
      fail(`agentImage.ref must be an image reference without whitespace; got ${show(image.ref)}.`);
    }
    return;
  }
  checkAgentImageBuild(image.build, fail);
}

function checkAgentImageBuild(value: unknown, fail: Fail): void {
  const at = "agentImage.build";
  const build = checkObject(
    at,
    value,
    [
      "registry",
      "repository",
      "tag",
      "push",
      "platforms",
      "cacheFrom",
      "cacheTo",
      "buildArgs",
      "context",
      "dockerfile",
    ],
    fail,
  );

  if (build.registry === undefined) {
    fail(
      `${at}.registry is required: the registry to push to, e.g. { address: "ghcr.io", username: "acme-bot", password: <a Pulumi secret> }.`,
    );
  }
  const registry = checkObject(
    `${at}.registry`,
    build.registry,
    ["address", "username", "password"],
    fail,
  );
  checkInputString(
    `${at}.registry.address`,
    registry.address,
    'the registry host, e.g. "ghcr.io"',
    fail,
  );
  if (typeof registry.address === "string" && !REGISTRY_HOST.test(registry.address)) {
    fail(
      `${at}.registry.address must be a registry host with an optional port and no scheme or path, e.g. "ghcr.io" or "registry.example.com:5000"; got ${show(registry.address)}.`,
    );
  }
  const hasUser = registry.username !== undefined;
  const hasPassword = registry.password !== undefined;
  if (hasUser !== hasPassword) {
    fail(
      `${at}.registry.username and ${at}.registry.password go together: set both, or neither to push with the builder's existing credentials; got only ${hasUser ? "username" : "password"}.`,
    );
  }
  if (hasUser) {
    checkInputString(`${at}.registry.username`, registry.username, "the user to push as", fail);
    checkInputString(
      `${at}.registry.password`,
      registry.password,
      "the password or token to push with",
      fail,
    );
  }

  checkInputString(
    `${at}.repository`,
    build.repository,
    'the repository path inside the registry, e.g. "acme/vnode-agent"',
    fail,
  );
  if (typeof build.repository === "string" && !REPOSITORY.test(build.repository)) {
    fail(
      `${at}.repository must be a repository path inside the registry such as "acme/vnode-agent" (lowercase letters and digits, separated by ".", "_", "__" or "-", path components joined by "/"; no registry host, tag or digest); got ${show(build.repository)}.`,
    );
  }
  // Docker reads a first path component with "." or ":", or "localhost", as a registry host.
  const first = typeof build.repository === "string" ? build.repository.split("/")[0] : "";
  if (
    typeof build.repository === "string" &&
    build.repository.includes("/") &&
    (first.includes(".") || first === "localhost")
  ) {
    fail(
      `${at}.repository ${show(build.repository)} starts with the registry host ${show(first)}; set the host in ${at}.registry.address and only the path inside the registry here, e.g. "acme/vnode-agent".`,
    );
  }
  if (build.tag !== undefined && (typeof build.tag !== "string" || !TAG.test(build.tag))) {
    fail(
      `${at}.tag must be an image tag (at most 128 letters, digits, "_", "." and "-", not starting with "." or "-"); got ${show(build.tag)}.`,
    );
  }
  checkBoolean(`${at}.push`, build.push, fail);
  if (build.push === false) {
    fail(
      `${at}.push is false, but the nodes pull the agent image from ${at}.registry and the DaemonSets run it by the digest the push returns, so it must be pushed: remove push (it defaults to true), or build the image elsewhere and set agentImage.ref. To check that it builds without pushing, run pulumi preview.`,
    );
  }
  checkPlatforms(`${at}.platforms`, build.platforms, fail);
  if (build.cacheFrom !== undefined) {
    if (!Array.isArray(build.cacheFrom)) {
      fail(
        `${at}.cacheFrom must be a list of registry cache image references such as "ghcr.io/acme/vnode-agent:cache"; got ${show(build.cacheFrom)}.`,
      );
    }
    (build.cacheFrom as unknown[]).forEach((ref, i) =>
      checkCacheRef(`${at}.cacheFrom[${i}]`, ref, fail),
    );
  }
  if (build.cacheTo !== undefined) {
    checkCacheRef(`${at}.cacheTo`, build.cacheTo, fail);
  }
  checkBuildArgs(`${at}.buildArgs`, build.buildArgs, build.dockerfile === undefined, fail);
  for (const field of ["context", "dockerfile"]) {
    const location = build[field];
    if (location !== undefined && (typeof location !== "string" || location.trim() === "")) {
      fail(
        `${at}.${field} must be a non-empty path, relative to the Pulumi program's directory or absolute; got ${show(location)}.`,
      );
    }
  }
}

function checkPlatforms(argument: string, platforms: unknown, fail: Fail): void {
  if (platforms === undefined) {
    return;
  }
  const allowed: string[] = Object.values(AgentImagePlatform);
  if (!Array.isArray(platforms) || platforms.length === 0) {
    fail(`${argument} must be a non-empty list of ${allowed.join(", ")}; got ${show(platforms)}.`);
  }
  const list = platforms as unknown[];
  list.forEach((platform, i) => {
    checkEnum(`${argument}[${i}]`, platform, allowed, fail);
    const first = list.indexOf(platform);
    if (first !== i) {
      fail(`${argument}[${i}] ${show(platform)} is already listed as ${argument}[${first}].`);
    }
  });
}

function checkCacheRef(argument: string, ref: unknown, fail: Fail): void {
  if (isInputValue(ref)) {
    return;
  }
  if (typeof ref !== "string" || !IMAGE_REF.test(ref)) {
    fail(
      `${argument} must be a registry cache image reference such as "ghcr.io/acme/vnode-agent:cache"; got ${show(ref)}.`,
    );
  }
}

function checkBuildArgs(
  argument: string,
  buildArgs: unknown,
  defaultDockerfile: boolean,
  fail: Fail,
): void {
  if (buildArgs === undefined) {
    return;
  }
  if (!isObject(buildArgs)) {
    fail(
      `${argument} must be a map of Dockerfile ARG names to string values; got ${show(buildArgs)}.`,
    );
  }
  for (const [key, value] of Object.entries(buildArgs as object)) {
    // A misspelt ARG is silently ignored by the builder, which then uses the default base image.
    if (defaultDockerfile && !AGENT_DOCKERFILE_ARGS.includes(key)) {
      fail(
        `${argument} key ${show(key)} is not an ARG of ${DEFAULTS.agentImageBuild.dockerfile}; allowed: ${AGENT_DOCKERFILE_ARGS.join(", ")}.`,
      );
    }
    if (!ARG_NAME.test(key)) {
      fail(
        `${argument} key ${show(key)} must be a Dockerfile ARG name (letters, digits and "_", not starting with a digit).`,
      );
    }
    if (typeof value !== "string") {
      fail(`${argument}[${show(key)}] must be a string; got ${show(value)}.`);
    }
  }
}

/** A required string that may also be known only at deploy time (an Output or a Promise). */
function checkInputString(argument: string, value: unknown, what: string, fail: Fail): void {
  if (value === undefined || value === null || value === "") {
    fail(`${argument} is required: ${what}; got ${show(value === null ? undefined : value)}.`);
  }
  if (typeof value !== "string" && !isInputValue(value)) {
    fail(`${argument} must be a string; got ${show(value)}.`);
  }
}

function checkPools(name: string, a: Record<string, unknown>, fail: Fail): void {
  const topMode = (a.isolationMode as IsolationMode | undefined) ?? DEFAULTS.isolationMode;
  const pools = a.pools;
  const topSelector = (a.nodeSelector as Record<string, string> | undefined) ?? {};
  if (pools === undefined) {
    checkDerivedName(name, undefined, "name", fail);
    checkClassNames(a, [topMode], fail);
    return;
  }
  if (!Array.isArray(pools) || pools.length === 0) {
    fail(
      `pools must be a non-empty list of { name, isolationMode, nodeSelector, tolerations }, or unset for one pool of all nodes; got ${show(pools)}.`,
    );
  }
  const list = pools as unknown[];
  const seen = new Map<string, number>();
  list.forEach((pool, i) => {
    const at = `pools[${i}]`;
    const p = checkObject(at, pool, ["name", "isolationMode", "nodeSelector", "tolerations"], fail);
    if (typeof p.name !== "string" || !DNS_LABEL.test(p.name)) {
      fail(`${at}.name must be ${DNS_LABEL_RULE}; got ${show(p.name)}.`);
    }
    const first = seen.get(p.name as string);
    if (first !== undefined) {
      fail(
        `${at}.name ${show(p.name)} is already used by pools[${first}]; pool names must be unique.`,
      );
    }
    seen.set(p.name as string, i);
    checkDerivedName(name, p.name as string, `${at}.name`, fail);
    checkEnum(`${at}.isolationMode`, p.isolationMode, Object.values(IsolationMode), fail);
    checkLabels(`${at}.nodeSelector`, p.nodeSelector, fail);
    checkTolerations(`${at}.tolerations`, p.tolerations, fail);
    for (const [key, value] of Object.entries((p.nodeSelector as Record<string, string>) ?? {})) {
      if (key in topSelector && topSelector[key] !== value) {
        fail(
          `${at}.nodeSelector[${show(key)}] is ${show(value)} but nodeSelector[${show(key)}] is ${show(topSelector[key])}; the pool's nodes would never match both.`,
        );
      }
    }
    if (list.length > 1 && Object.keys((p.nodeSelector as object | undefined) ?? {}).length === 0) {
      fail(
        `${at}.nodeSelector must not be empty when there is more than one pool: each pool must select its own nodes.`,
      );
    }
  });
  // Two agents on one node would fight over containerd and over the node-wide mode, so any two
  // pools must be provably disjoint: a common key with different values.
  const selectors = list.map((pool) => ({
    ...topSelector,
    ...(((pool as Record<string, unknown>).nodeSelector as Record<string, string>) ?? {}),
  }));
  for (let j = 1; j < selectors.length; j++) {
    for (let i = 0; i < j; i++) {
      const disjoint = Object.keys(selectors[j]).some(
        (key) => key in selectors[i] && selectors[i][key] !== selectors[j][key],
      );
      if (!disjoint) {
        fail(
          `pools[${j}].nodeSelector ${show(selectors[j])} can select the same nodes as pools[${i}].nodeSelector ${show(selectors[i])}; give both pools a common label key with different values (e.g. pool=a and pool=b), so that no node runs two agents.`,
        );
      }
    }
  }
  const modes = modesInUse(
    list.map((pool) => ({
      isolationMode:
        ((pool as Record<string, unknown>).isolationMode as IsolationMode | undefined) ?? topMode,
    })),
  );
  checkClassNames(a, modes, fail);
}

function checkDerivedName(
  name: string,
  pool: string | undefined,
  argument: string,
  fail: Fail,
): void {
  const derived = daemonSetName(name, pool);
  if (derived.length > 63) {
    fail(
      `${argument} is too long: the DaemonSet name ${show(derived)} has ${derived.length} characters, at most 63 are allowed.`,
    );
  }
}

function checkClassNames(a: Record<string, unknown>, modes: IsolationMode[], fail: Fail): void {
  const base = (a.runtimeClassName as string | undefined) ?? DEFAULTS.runtimeClassName;
  const names = runtimeClassNames(base, a.perPodRuntimeClassName as string | undefined, modes);
  const perNamespace = names[IsolationMode.PerNamespace];
  if (perNamespace !== undefined && perNamespace === names[IsolationMode.PerPod]) {
    fail(
      `perPodRuntimeClassName must differ from runtimeClassName ${show(perNamespace)} when pools use both isolation modes, because each RuntimeClass pins pods to nodes of one mode.`,
    );
  }
}

function checkEnv(env: unknown, fail: Fail): void {
  if (env === undefined) {
    return;
  }
  if (!Array.isArray(env)) {
    fail(
      `env must be a list of { name, value } or { name, secretKeyRef: { name, key } }; got ${show(env)}.`,
    );
  }
  const seen = new Map<string, number>();
  (env as unknown[]).forEach((entry, i) => {
    const at = `env[${i}]`;
    const e = checkObject(at, entry, ["name", "value", "secretKeyRef"], fail);
    if (typeof e.name !== "string" || !ENV_NAME.test(e.name)) {
      fail(
        `${at}.name must be an environment variable name (letters, digits, "_", "-" and ".", not starting with a digit); got ${show(e.name)}.`,
      );
    }
    const envName = e.name as string;
    if (envName in RESERVED_ENV) {
      fail(
        `${at}.name ${show(envName)} is set by the component from ${RESERVED_ENV[envName]}; remove it from env.`,
      );
    }
    const first = seen.get(envName);
    if (first !== undefined) {
      fail(
        `${at}.name ${show(envName)} is already set by env[${first}]; env names must be unique.`,
      );
    }
    seen.set(envName, i);
    const hasValue = e.value !== undefined && e.value !== null;
    const hasRef = e.secretKeyRef !== undefined && e.secretKeyRef !== null;
    if (hasValue === hasRef) {
      fail(
        `${at} (${envName}) must set exactly one of value and secretKeyRef; got ${hasValue ? "both" : "neither"}.`,
      );
    }
    if (hasValue && typeof e.value !== "string" && !isInputValue(e.value)) {
      fail(`${at}.value must be a string; got ${show(e.value)}.`);
    }
    if (hasRef) {
      const ref = checkObject(`${at}.secretKeyRef`, e.secretKeyRef, ["name", "key"], fail);
      if (typeof ref.name !== "string" || !DNS_SUBDOMAIN.test(ref.name) || ref.name.length > 253) {
        fail(`${at}.secretKeyRef.name must be ${DNS_SUBDOMAIN_RULE}; got ${show(ref.name)}.`);
      }
      if (typeof ref.key !== "string" || !SECRET_KEY.test(ref.key) || ref.key.length > 253) {
        fail(
          `${at}.secretKeyRef.key must be a Secret key (letters, digits, "-", "_" and "."); got ${show(ref.key)}.`,
        );
      }
    }
  });
}

function checkMetrics(metrics: unknown, fail: Fail): void {
  if (metrics === undefined) {
    return;
  }
  const m = checkObject("metrics", metrics, ["mode", "interval", "podMonitorLabels"], fail);
  checkEnum("metrics.mode", m.mode, Object.values(MetricsMode), fail);
  const mode = (m.mode as MetricsMode | undefined) ?? DEFAULTS.metricsMode;
  for (const field of ["interval", "podMonitorLabels"]) {
    if (m[field] !== undefined && mode !== MetricsMode.PodMonitor) {
      fail(
        `metrics.${field} only applies when metrics.mode is ${MetricsMode.PodMonitor}; metrics.mode is ${mode}.`,
      );
    }
  }
  if (m.interval !== undefined && (typeof m.interval !== "string" || !DURATION.test(m.interval))) {
    fail(
      `metrics.interval must be a Prometheus duration such as "30s" or "1m"; got ${show(m.interval)}.`,
    );
  }
  checkLabels("metrics.podMonitorLabels", m.podMonitorLabels, fail);
  checkReservedLabels("metrics.podMonitorLabels", m.podMonitorLabels, fail);
}

function checkEnforcement(
  name: string,
  enforcement: unknown,
  certManager: unknown,
  fail: Fail,
): void {
  if (enforcement === undefined) {
    if (certManager !== undefined) {
      fail(
        "certManager only applies with enforcement (backend webhook), which gets its TLS certificate from cert-manager; enforcement is not set.",
      );
    }
    return;
  }
  const e = checkObject(
    "enforcement",
    enforcement,
    ["namespaceSelector", "mode", "failurePolicy", "backend", "mutatingPolicyApiVersion"],
    fail,
  );
  const modes: string[] = Object.values(EnforcementMode);
  if (e.mode === undefined) {
    fail(`enforcement.mode is required: one of ${modes.join(", ")}.`);
  }
  checkEnum("enforcement.mode", e.mode, modes, fail);
  checkEnum("enforcement.backend", e.backend, Object.values(EnforcementBackend), fail);
  checkEnum("enforcement.failurePolicy", e.failurePolicy, Object.values(FailurePolicy), fail);
  checkEnum(
    "enforcement.mutatingPolicyApiVersion",
    e.mutatingPolicyApiVersion,
    Object.values(MutatingPolicyApiVersion),
    fail,
  );
  checkNamespaceSelector("enforcement.namespaceSelector", e.namespaceSelector, fail);
  const backend = (e.backend as EnforcementBackend | undefined) ?? EnforcementBackend.Webhook;
  if (e.mutatingPolicyApiVersion !== undefined) {
    if (backend !== EnforcementBackend.AdmissionPolicy) {
      fail(
        `enforcement.mutatingPolicyApiVersion only applies with enforcement.backend ${EnforcementBackend.AdmissionPolicy}; enforcement.backend is ${backend}.`,
      );
    }
    if (e.mode === EnforcementMode.Validate) {
      fail(
        `enforcement.mutatingPolicyApiVersion only applies when enforcement.mode mutates (${EnforcementMode.Mutate} or ${EnforcementMode.MutateAndValidate}); enforcement.mode is ${EnforcementMode.Validate}.`,
      );
    }
  }
  if (backend === EnforcementBackend.Webhook) {
    // The Service name is a DNS-1035 label.
    const service = webhookName(name);
    if (service.length > 63) {
      fail(
        `name is too long for enforcement.backend webhook: the webhook Service name ${show(service)} has ${service.length} characters, at most 63 are allowed.`,
      );
    }
  }
  if (certManager === undefined) {
    return;
  }
  if (backend !== EnforcementBackend.Webhook) {
    fail(
      `certManager only applies with enforcement.backend ${EnforcementBackend.Webhook}; enforcement.backend is ${backend}, which needs no certificate.`,
    );
  }
  const c = checkObject("certManager", certManager, ["install", "issuerRef"], fail);
  checkBoolean("certManager.install", c.install, fail);
  if (c.issuerRef !== undefined) {
    const ref = checkObject("certManager.issuerRef", c.issuerRef, ["name", "kind", "group"], fail);
    if (ref.name === undefined) {
      fail(
        'certManager.issuerRef.name is required: the name of the cert-manager Issuer (in the runtime namespace) or ClusterIssuer, e.g. "ca-issuer".',
      );
    }
    checkDnsSubdomain("certManager.issuerRef.name", ref.name, fail);
    checkEnum("certManager.issuerRef.kind", ref.kind, Object.values(IssuerKind), fail);
    checkDnsSubdomain("certManager.issuerRef.group", ref.group, fail);
  }
}

function checkNamespaceSelector(argument: string, value: unknown, fail: Fail): void {
  if (value === undefined) {
    fail(
      `${argument} is required: the labels of the tenant namespaces, e.g. { matchLabels: { tenant: "true" } }.`,
    );
  }
  const selector = checkObject(argument, value, ["matchLabels", "matchExpressions"], fail);
  checkLabels(`${argument}.matchLabels`, selector.matchLabels, fail);
  const expressions = selector.matchExpressions;
  if (expressions !== undefined && !Array.isArray(expressions)) {
    fail(
      `${argument}.matchExpressions must be a list of { key, operator, values }; got ${show(expressions)}.`,
    );
  }
  const operators: string[] = Object.values(LabelSelectorOperator);
  ((expressions as unknown[] | undefined) ?? []).forEach((expression, i) => {
    const at = `${argument}.matchExpressions[${i}]`;
    const r = checkObject(at, expression, ["key", "operator", "values"], fail);
    if (typeof r.key !== "string" || !isLabelKey(r.key)) {
      fail(
        `${at}.key must be a label key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_" and "."); got ${show(r.key)}.`,
      );
    }
    if (r.operator === undefined) {
      fail(`${at}.operator is required: one of ${operators.join(", ")}.`);
    }
    checkEnum(`${at}.operator`, r.operator, operators, fail);
    if (r.values !== undefined && !Array.isArray(r.values)) {
      fail(`${at}.values must be a list of label values; got ${show(r.values)}.`);
    }
    const values = (r.values as unknown[] | undefined) ?? [];
    values.forEach((v, j) => {
      if (typeof v !== "string" || !isLabelValue(v)) {
        fail(
          `${at}.values[${j}] must be a label value (at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit); got ${show(v)}.`,
        );
      }
    });
    const setBased =
      r.operator === LabelSelectorOperator.In || r.operator === LabelSelectorOperator.NotIn;
    if (setBased && values.length === 0) {
      fail(`${at}.values must not be empty with operator ${r.operator as string}.`);
    }
    if (!setBased && values.length > 0) {
      fail(
        `${at}.values must be empty with operator ${r.operator as string}; got ${show(values)}.`,
      );
    }
  });
  const labels = Object.keys((selector.matchLabels as object | undefined) ?? {}).length;
  if (labels === 0 && ((expressions as unknown[] | undefined) ?? []).length === 0) {
    fail(
      `${argument} must name at least one label in matchLabels or matchExpressions: an empty selector would enforce vNode on every namespace but kube-system, kube-node-lease and the runtime's.`,
    );
  }
}

function checkTolerations(argument: string, tolerations: unknown, fail: Fail): void {
  if (tolerations === undefined) {
    return;
  }
  if (!Array.isArray(tolerations)) {
    fail(`${argument} must be a list of tolerations; got ${show(tolerations)}.`);
  }
  (tolerations as unknown[]).forEach((toleration, i) => {
    const at = `${argument}[${i}]`;
    const t = checkObject(
      at,
      toleration,
      ["key", "operator", "value", "effect", "tolerationSeconds"],
      fail,
    );
    checkEnum(`${at}.operator`, t.operator, ["Exists", "Equal"], fail);
    checkEnum(`${at}.effect`, t.effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"], fail);
    if (t.key !== undefined && (typeof t.key !== "string" || !isLabelKey(t.key))) {
      fail(`${at}.key must be a label key; got ${show(t.key)}.`);
    }
    if (t.value !== undefined && (typeof t.value !== "string" || !isLabelValue(t.value))) {
      fail(`${at}.value must be a label value; got ${show(t.value)}.`);
    }
    if (t.operator === "Exists" && t.value !== undefined && t.value !== "") {
      fail(`${at}.value must be empty with operator Exists; got ${show(t.value)}.`);
    }
    if ((t.operator ?? "Equal") === "Equal" && (t.key === undefined || t.key === "")) {
      fail(
        `${at}.key is required with operator Equal; use operator Exists to tolerate every taint.`,
      );
    }
    if (t.tolerationSeconds !== undefined) {
      checkInteger(`${at}.tolerationSeconds`, t.tolerationSeconds, 0, fail);
      if (t.effect !== "NoExecute") {
        fail(
          `${at}.tolerationSeconds only applies with effect NoExecute; got effect ${show(t.effect)}.`,
        );
      }
    }
  });
}

function checkQuantities(argument: string, value: unknown, fail: Fail): void {
  if (value === undefined) {
    return;
  }
  const q = checkObject(argument, value, ["cpu", "memory"], fail);
  for (const field of ["cpu", "memory"]) {
    const quantity = q[field];
    if (quantity !== undefined && (typeof quantity !== "string" || !QUANTITY.test(quantity))) {
      fail(
        `${argument}.${field} must be a Kubernetes quantity such as ${field === "cpu" ? '"100m" or "1"' : '"128Mi" or "1Gi"'}; got ${show(quantity)}.`,
      );
    }
  }
}

function checkLabels(argument: string, labels: unknown, fail: Fail): void {
  if (labels === undefined) {
    return;
  }
  if (!isObject(labels)) {
    fail(`${argument} must be a map of label keys to values; got ${show(labels)}.`);
  }
  for (const [key, value] of Object.entries(labels as object)) {
    if (!isLabelKey(key)) {
      fail(
        `${argument} key ${show(key)} must be a label key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_" and ".").`,
      );
    }
    if (typeof value !== "string" || !isLabelValue(value)) {
      fail(
        `${argument}[${show(key)}] must be a label value (at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit); got ${show(value)}.`,
      );
    }
  }
}

function checkReservedLabels(argument: string, labels: unknown, fail: Fail): void {
  for (const key of Object.keys((labels as object | undefined) ?? {})) {
    if (
      RESERVED_LABEL_KEYS.includes(key) ||
      key === RUNTIME_LABEL ||
      key === ISOLATION_MODE_LABEL
    ) {
      fail(`${argument}[${show(key)}] is set by the component; remove it.`);
    }
  }
}

function checkAnnotations(argument: string, annotations: unknown, fail: Fail): void {
  if (annotations === undefined) {
    return;
  }
  if (!isObject(annotations)) {
    fail(
      `${argument} must be a map of annotation keys to string values; got ${show(annotations)}.`,
    );
  }
  for (const [key, value] of Object.entries(annotations as object)) {
    if (!isLabelKey(key)) {
      fail(
        `${argument} key ${show(key)} must be an annotation key ([prefix/]name, name at most 63 characters of letters, digits, "-", "_" and ".").`,
      );
    }
    if (typeof value !== "string") {
      fail(`${argument}[${show(key)}] must be a string; got ${show(value)}.`);
    }
  }
}

function checkObject(
  argument: string,
  value: unknown,
  fields: string[],
  fail: Fail,
): Record<string, unknown> {
  if (!isObject(value)) {
    fail(`${argument} must be an object with fields ${fields.join(", ")}; got ${show(value)}.`);
  }
  const record = value as Record<string, unknown>;
  checkFields(argument, record, fields, fail);
  return record;
}

function checkFields(
  argument: string,
  record: Record<string, unknown>,
  fields: string[],
  fail: Fail,
): void {
  for (const key of Object.keys(record)) {
    if (!fields.includes(key) && record[key] !== undefined) {
      fail(`${argument} has an unknown field ${show(key)}; allowed: ${fields.join(", ")}.`);
    }
  }
}

function checkEnum(argument: string, value: unknown, allowed: readonly string[], fail: Fail): void {
  if (value !== undefined && !allowed.includes(value as string)) {
    fail(`${argument} must be one of ${allowed.join(", ")}; got ${show(value)}.`);
  }
}

function checkBoolean(argument: string, value: unknown, fail: Fail): void {
  if (value !== undefined && typeof value !== "boolean") {
    fail(`${argument} must be true or false; got ${show(value)}.`);
  }
}

function checkInteger(argument: string, value: unknown, min: number, fail: Fail): void {
  if (
    value !== undefined &&
    (typeof value !== "number" || !Number.isInteger(value) || value < min)
  ) {
    fail(`${argument} must be an integer of at least ${min}; got ${show(value)}.`);
  }
}

function checkDnsLabel(argument: string, value: unknown, fail: Fail): void {
  if (
    value !== undefined &&
    (typeof value !== "string" || !DNS_LABEL.test(value) || value.length > 63)
  ) {
    fail(`${argument} must be ${DNS_LABEL_RULE}; got ${show(value)}.`);
  }
}

function checkDnsSubdomain(argument: string, value: unknown, fail: Fail): void {
  if (
    value !== undefined &&
    (typeof value !== "string" || !DNS_SUBDOMAIN.test(value) || value.length > 253)
  ) {
    fail(`${argument} must be ${DNS_SUBDOMAIN_RULE}; got ${show(value)}.`);
  }
}

function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (!DNS_SUBDOMAIN.test(prefix) || prefix.length > 253)) {
    return false;
  }
  return name.length <= 63 && LABEL_NAME.test(name);
}

function isLabelValue(value: string): boolean {
  return value === "" || (value.length <= 63 && LABEL_NAME.test(value));
}

function isObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An Output or Promise: known at deploy time only, so its content is not checked here. */
function isInputValue(value: unknown): boolean {
  return pulumi.Output.isInstance(value) || value instanceof Promise;
}

/** A short, quoted rendering of a bad value for an error message. */
export function show(value: unknown): string {
  if (value === undefined) {
    return "nothing";
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
