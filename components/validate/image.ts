/** `agentImage`: a prebuilt `ref`, or a `build` of this repository and where it is pushed. */
import { AgentImagePlatform } from "../args";
import { AGENT_DOCKERFILE_ARGS, COMPONENT_BUILD_ARGS, DEFAULTS } from "../defaults";
import { fail, mustBe, show } from "./errors";
import {
  checkBoolean,
  checkEnum,
  checkFields,
  checkObject,
  isInputValue,
  isObject,
} from "./values";

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

const IMAGE_EXAMPLE = '"ghcr.io/acme/vnode-agent:0.1.0"';

export function checkAgentImage(agentImage: unknown): void {
  if (agentImage === undefined) {
    fail(
      `agentImage is required: set agentImage.ref to a prebuilt agent image reference, e.g. ${IMAGE_EXAMPLE}, or agentImage.build to build and push it from this repository.`,
    );
  }
  if (!isObject(agentImage)) {
    mustBe(
      "agentImage",
      `an object like { ref: ${IMAGE_EXAMPLE} } or { build: { registry, repository } }`,
      agentImage,
    );
  }
  const image = agentImage as Record<string, unknown>;
  checkFields("agentImage", image, ["ref", "build"]);
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
    if (!isInputValue(image.ref)) {
      checkAgentImageRef(image.ref);
    }
    return;
  }
  checkAgentImageBuild(image.build);
}

/** `agentImage.ref` (maybe resolved from an Output): a non-empty reference without whitespace. */
export function checkAgentImageRef(ref: unknown): void {
  if (typeof ref !== "string") {
    mustBe("agentImage.ref", "a string", ref);
  }
  if (ref === "") {
    fail(`agentImage.ref must be an image reference, e.g. ${IMAGE_EXAMPLE}; got "".`);
  }
  if (/\s/.test(ref as string)) {
    mustBe("agentImage.ref", "an image reference without whitespace", ref);
  }
}

export function checkAgentImageBuild(value: unknown): void {
  const at = "agentImage.build";
  const build = checkObject(at, value, [
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
  ]);

  if (build.registry === undefined) {
    fail(
      `${at}.registry is required: the registry to push to, e.g. { address: "ghcr.io", username: "acme-bot", password: <a Pulumi secret> }.`,
    );
  }
  const registry = checkObject(`${at}.registry`, build.registry, [
    "address",
    "username",
    "password",
  ]);
  checkInputString(`${at}.registry.address`, registry.address, 'the registry host, e.g. "ghcr.io"');
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
    checkInputString(`${at}.registry.username`, registry.username, "the user to push as");
    checkInputString(
      `${at}.registry.password`,
      registry.password,
      "the password or token to push with",
    );
  }

  checkInputString(
    `${at}.repository`,
    build.repository,
    'the repository path inside the registry, e.g. "acme/vnode-agent"',
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
  checkBoolean(`${at}.push`, build.push);
  if (build.push === false) {
    fail(
      `${at}.push is false, but the nodes pull the agent image from ${at}.registry and the DaemonSets run it by the digest the push returns, so it must be pushed: remove push (it defaults to true), or build the image elsewhere and set agentImage.ref. To check that it builds without pushing, run pulumi preview.`,
    );
  }
  checkPlatforms(`${at}.platforms`, build.platforms);
  if (build.cacheFrom !== undefined) {
    if (!Array.isArray(build.cacheFrom)) {
      fail(
        `${at}.cacheFrom must be a list of registry cache image references such as "ghcr.io/acme/vnode-agent:cache"; got ${show(build.cacheFrom)}.`,
      );
    }
    (build.cacheFrom as unknown[]).forEach((ref, i) => checkCacheRef(`${at}.cacheFrom[${i}]`, ref));
  }
  if (build.cacheTo !== undefined) {
    checkCacheRef(`${at}.cacheTo`, build.cacheTo);
  }
  checkBuildArgs(`${at}.buildArgs`, build.buildArgs, build.dockerfile === undefined);
  for (const field of ["context", "dockerfile"]) {
    const location = build[field];
    if (location !== undefined && (typeof location !== "string" || location.trim() === "")) {
      fail(
        `${at}.${field} must be a non-empty path, relative to the Pulumi program's directory or absolute; got ${show(location)}.`,
      );
    }
  }
}

const VNODE_IMAGE_WHAT =
  'the vNode runtime image of your release, whose containerd-shim-vnode-v2, vnode-manager and vnode-cni the build puts into the agent image (see the README, "The agent image")';

/**
 * `vnodeImage`: required with `agentImage.build` (an agent image without the vNode payload
 * installs nothing), refused with `agentImage.ref` (the prebuilt image carries its own).
 * Call after {@link checkAgentImage}.
 */
export function checkVNodeImage(vnodeImage: unknown, agentImage: unknown): void {
  const build = isObject(agentImage) && (agentImage as Record<string, unknown>).build;
  const present = vnodeImage !== undefined && vnodeImage !== null;
  if (!build) {
    if (present) {
      fail(
        `vnodeImage is only used to build the agent image (agentImage.build); agentImage.ref names a prebuilt image that already carries its vNode payload: remove vnodeImage, or build with agentImage.build; got ${show(vnodeImage)}.`,
      );
    }
    return;
  }
  if (!present || vnodeImage === "") {
    fail(
      `vnodeImage is required with agentImage.build: ${VNODE_IMAGE_WHAT}; got ${show(vnodeImage === null ? undefined : vnodeImage)}.`,
    );
  }
  if (isInputValue(vnodeImage)) {
    return;
  }
  if (typeof vnodeImage !== "string" || !IMAGE_REF.test(vnodeImage)) {
    mustBe(
      "vnodeImage",
      `an image reference like "registry.example.com/mirror/vnode-runtime:<version>" (optionally @sha256:<digest>)`,
      vnodeImage,
    );
  }
}

export function checkPlatforms(argument: string, platforms: unknown): void {
  if (platforms === undefined) {
    return;
  }
  const allowed: string[] = Object.values(AgentImagePlatform);
  if (!Array.isArray(platforms) || platforms.length === 0) {
    mustBe(argument, `a non-empty list of ${allowed.join(", ")}`, platforms);
  }
  const list = platforms as unknown[];
  list.forEach((platform, i) => {
    checkEnum(`${argument}[${i}]`, platform, allowed);
    const first = list.indexOf(platform);
    if (first !== i) {
      fail(`${argument}[${i}] ${show(platform)} is already listed as ${argument}[${first}].`);
    }
  });
}

export function checkCacheRef(argument: string, ref: unknown): void {
  if (isInputValue(ref)) {
    return;
  }
  if (typeof ref !== "string" || !IMAGE_REF.test(ref)) {
    mustBe(
      argument,
      `a registry cache image reference such as "ghcr.io/acme/vnode-agent:cache"`,
      ref,
    );
  }
}

export function checkBuildArgs(
  argument: string,
  buildArgs: unknown,
  defaultDockerfile: boolean,
): void {
  if (buildArgs === undefined) {
    return;
  }
  if (!isObject(buildArgs)) {
    mustBe(argument, "a map of Dockerfile ARG names to string values", buildArgs);
  }
  for (const [key, value] of Object.entries(buildArgs as object)) {
    if (key in COMPONENT_BUILD_ARGS) {
      fail(`${argument} may not set ${key}: ${COMPONENT_BUILD_ARGS[key]}.`);
    }
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
export function checkInputString(argument: string, value: unknown, what: string): void {
  if (value === undefined || value === null || value === "") {
    fail(`${argument} is required: ${what}; got ${show(value === null ? undefined : value)}.`);
  }
  if (typeof value !== "string" && !isInputValue(value)) {
    mustBe(argument, "a string", value);
  }
}
