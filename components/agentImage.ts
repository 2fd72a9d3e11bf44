/**
 * The agent image build (`agentImage.build`): its plan with every default applied, the
 * `@pulumi/docker-build` Image's args, and the digest-pinned reference the DaemonSets run. Pure,
 * except `readAgentVersion` and `hostBuildEnvironment`, the edges that read the file system.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type * as dockerBuild from "@pulumi/docker-build";
import { AgentImageBuildArgs, AgentImagePlatform } from "./args";
import { DEFAULTS } from "./defaults";
import { VNodeRuntimeArgsError } from "./validate";

/** Type token of docker-build's Image. */
export const IMAGE_TYPE = "docker-build:index:Image";

/** What the defaults depend on outside the args: where the program runs and this package lives. */
export interface BuildEnvironment {
  /** The Pulumi program's working directory; docker-build resolves relative paths against it. */
  cwd: string;
  /**
   * The repository containing this package (the directory above `components/`); `undefined` when
   * the package is installed without it (from a tarball or a registry), so nothing to build from.
   */
  packageRoot: string | undefined;
  /** The agent package's version; only called when `tag` is not set. */
  agentVersion: () => string;
}

/** One image build with every default applied. */
export interface AgentImageBuildPlan {
  /** `<registry address>/<repository>`, the image name without tag. */
  name: pulumi.Output<string>;
  tag: string;
  registry: {
    address: pulumi.Input<string>;
    username: pulumi.Input<string> | undefined;
    password: pulumi.Input<string> | undefined;
  };
  platforms: AgentImagePlatform[];
  cacheFrom: pulumi.Input<string>[];
  cacheTo: pulumi.Input<string> | undefined;
  /** Every build arg; `VNODE_IMAGE` may be known only at deploy time. */
  buildArgs: Record<string, pulumi.Input<string>>;
  context: string;
  dockerfile: string;
}

/** Applies the defaults to validated build args. Call `validateArgs` first: this trusts its input. */
export function planAgentImageBuild(
  build: AgentImageBuildArgs,
  vnodeImage: pulumi.Input<string>,
  environment: BuildEnvironment,
): AgentImageBuildPlan {
  const context = build.context ?? defaultContextOf(environment);
  const tag = build.tag ?? defaultTag(environment);
  return {
    name: pulumi.interpolate`${build.registry.address}/${build.repository}`,
    tag,
    registry: {
      address: build.registry.address,
      username: build.registry.username,
      password: build.registry.password,
    },
    platforms: [...(build.platforms ?? DEFAULTS.agentImageBuild.platforms)],
    cacheFrom: [...(build.cacheFrom ?? [])],
    cacheTo: build.cacheTo,
    // The OCI version label says what the tag says, unless the user chose otherwise. The payload
    // always comes from vnodeImage (validation keeps VNODE_IMAGE out of buildArgs).
    buildArgs: { VERSION: tag, ...(build.buildArgs ?? {}), VNODE_IMAGE: vnodeImage },
    context,
    dockerfile: build.dockerfile ?? path.join(context, DEFAULTS.agentImageBuild.dockerfile),
  };
}

function defaultTag(environment: BuildEnvironment): string {
  try {
    return environment.agentVersion();
  } catch (error) {
    throw new VNodeRuntimeArgsError(
      `agentImage.build.tag is not set and its default, the agent package's version, is unknown: ${(error as Error).message}; set agentImage.build.tag.`,
    );
  }
}

function defaultContextOf({ cwd, packageRoot }: BuildEnvironment): string {
  if (packageRoot === undefined) {
    throw new VNodeRuntimeArgsError(
      `agentImage.build.context is not set and its default, the vnode repository (with ${DEFAULTS.agentImageBuild.dockerfile}), is not beside the installed vnode package; set agentImage.build.context to a checkout of the vnode repository, or use agentImage.ref.`,
    );
  }
  return defaultContext(cwd, packageRoot);
}

/**
 * The default build context: the package's repository, relative to the program's directory when
 * it is that directory or below it. A relative path keeps machine-specific paths out of the state:
 * docker-build rebuilds when `context.location` changes, and a rebuild from another checkout path
 * would push a new digest and roll every node. Elsewhere (e.g. a plugin started in another
 * directory) only the absolute path is right.
 */
export function defaultContext(cwd: string, packageRoot: string): string {
  const relative = path.relative(cwd, packageRoot);
  if (relative === "") {
    return ".";
  }
  return relative.startsWith("..") || path.isAbsolute(relative) ? packageRoot : relative;
}

/** The docker-build Image's args: build, tag and push the agent image. */
export function buildAgentImage(plan: AgentImageBuildPlan): dockerBuild.ImageArgs {
  const { username, password } = plan.registry;
  const args: dockerBuild.ImageArgs = {
    context: { location: plan.context },
    dockerfile: { location: plan.dockerfile },
    platforms: plan.platforms.map((platform): dockerBuild.Platform => `${platform}`),
    tags: [pulumi.interpolate`${plan.name}:${plan.tag}`],
    push: true,
    buildArgs: { ...plan.buildArgs },
  };
  if (username !== undefined && password !== undefined) {
    // Secret whatever its origin: encrypted in state, masked in logs.
    args.registries = [
      { address: plan.registry.address, username, password: pulumi.secret(password) },
    ];
  }
  if (plan.cacheFrom.length > 0) {
    args.cacheFrom = plan.cacheFrom.map((ref) => ({ registry: { ref } }));
  }
  if (plan.cacheTo !== undefined) {
    // `max` also caches the build stage (npm ci, bundle), the slow part; an OCI image manifest is
    // what ECR needs and every OCI registry accepts.
    args.cacheTo = [
      { registry: { ref: plan.cacheTo, mode: "max", imageManifest: true, ociMediaTypes: true } },
    ];
  }
  return args;
}

/**
 * The reference the DaemonSets run: `<name>:<tag>@<digest>` of the pushed image. By digest, so new
 * content under the same tag rolls the agents and an unchanged build (same digest) does not; the
 * tag only makes the reference readable. This is docker-build's own `ref` output for a pushed
 * image, composed here so it never silently falls back to the bare tag when there is no digest.
 */
export function pinnedImageRef(
  plan: Pick<AgentImageBuildPlan, "name" | "tag">,
  digest: pulumi.Output<string>,
  dryRun: boolean = pulumi.runtime.isDryRun(),
): pulumi.Output<string> {
  return pulumi.all([plan.name, digest]).apply(([name, value]) => {
    if (value === undefined || value === "") {
      if (dryRun) {
        // A preview builds without pushing: no digest yet, so the ref is not known.
        return pulumi.output(pulumi.unknown as unknown as string);
      }
      throw new Error(
        `The agent image build of ${name}:${plan.tag} returned no digest, so the image was not pushed and the nodes cannot pull it; check agentImage.build.registry and the push permissions of its credentials.`,
      );
    }
    if (!/^sha256:[0-9a-f]{64}$/.test(value)) {
      throw new Error(
        `The agent image build of ${name}:${plan.tag} returned the digest ${JSON.stringify(value)}; expected "sha256:" and 64 hex digits.`,
      );
    }
    return pulumi.output(`${name}:${plan.tag}@${value}`);
  });
}

/** The agent package's version, from `<root>/agent/package.json`. */
export function readAgentVersion(root: string): string {
  const file = path.join(root, "agent", "package.json");
  let version: unknown;
  try {
    version = (JSON.parse(fs.readFileSync(file, "utf8")) as { version?: unknown }).version;
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (typeof version !== "string" || version === "") {
    throw new Error(`${file} has no "version"`);
  }
  return version;
}

/**
 * The repository this package was built from: the parent of the nearest directory above `from`
 * holding a package.json (this package's, `components/`), so it is the same from the sources
 * (`components/*.ts`) and from the build (`components/dist/*.js`). `undefined` when that parent
 * has no agent Dockerfile: the package is installed without its repository (`node_modules/vnode`).
 */
export function findPackageRepository(from: string): string | undefined {
  let dir = from;
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) {
      return undefined;
    }
    dir = parent;
  }
  const repository = path.dirname(dir);
  return fs.existsSync(path.join(repository, DEFAULTS.agentImageBuild.dockerfile))
    ? repository
    : undefined;
}

/** The environment of this process: its working directory and this package's repository. */
export function hostBuildEnvironment(): BuildEnvironment {
  const packageRoot = findPackageRepository(__dirname);
  return {
    cwd: process.cwd(),
    packageRoot,
    agentVersion: () => {
      if (packageRoot === undefined) {
        throw new Error("the vnode package is installed without its repository");
      }
      return readAgentVersion(packageRoot);
    },
  };
}
