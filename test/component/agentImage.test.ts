/**
 * `agentImage`: a prebuilt `ref`, or a `build` that a docker-build Image child pushes and the
 * DaemonSets run by digest. The mock plays docker-build's provider (harness.ts): it reports a
 * digest of what decides the image's content and `ref` = first tag @ digest.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as dockerBuild from "@pulumi/docker-build";
import * as k8s from "@pulumi/kubernetes";
import {
  AgentImageBuildArgs,
  AgentImagePlatform,
  DEFAULTS,
  VNodeRuntime,
  VNodeRuntimeArgs,
  VNodeRuntimeArgsError,
} from "../../components/index";
import {
  IMAGE_TYPE,
  buildAgentImage,
  defaultContext,
  findPackageRepository,
  pinnedImageRef,
  planAgentImageBuild,
  readAgentVersion,
} from "../../components/agentImage";
import { AGENT_DOCKERFILE_ARGS } from "../../components/defaults";
import {
  Recorder,
  SECRET_SIG,
  SECRET_VALUE,
  containsSecret,
  mockImageDigest,
  resolve,
  settle,
} from "./harness";

const ROOT = path.join(__dirname, "..", "..");
const DAEMONSET = "kubernetes:apps/v1:DaemonSet";
const PASSWORD = "registry-token-9f3c";
const AGENT_VERSION = (
  JSON.parse(fs.readFileSync(path.join(ROOT, "agent", "package.json"), "utf8")) as {
    version: string;
  }
).version;
/** A mirrored vNode runtime image, as the README tells users to pin it. */
const VNODE_IMAGE = `registry.example.com/mirror/vnode-runtime:0.0.4@sha256:${"ab".repeat(32)}`;
const BUILD: AgentImageBuildArgs = {
  registry: { address: "ghcr.io", username: "acme-bot", password: pulumi.secret(PASSWORD) },
  repository: "acme/vnode-agent",
};

const recorder = new Recorder();
const cwd = process.cwd();
beforeAll(async () => {
  // The program's directory decides the default context; run as a stack in this repo does.
  process.chdir(ROOT);
  await recorder.install();
});
afterAll(() => process.chdir(cwd));

function containerImage(prefix: string): unknown {
  const daemonSet = recorder.one(prefix, DAEMONSET).inputs as {
    spec: { template: { spec: { containers: { image: unknown }[] } } };
  };
  return daemonSet.spec.template.spec.containers[0].image;
}

async function built(name: string, build: AgentImageBuildArgs): Promise<VNodeRuntime> {
  const runtime = new VNodeRuntime(name, { agentImage: { build }, vnodeImage: VNODE_IMAGE });
  await settle(recorder, runtime);
  return runtime;
}

describe("build with defaults", () => {
  let runtime: VNodeRuntime;
  beforeAll(async () => {
    runtime = await built("bld", BUILD);
  });

  test("one docker-build Image, child of the component, builds agent/Dockerfile of this repo and pushes", () => {
    const image = recorder.one("bld", IMAGE_TYPE);
    expect(image.name).toBe("bld-agent-image");
    expect(image.urn).toBe(
      "urn:pulumi:test::vnode-test::vnode:index:VNodeRuntime$docker-build:index:Image::bld-agent-image",
    );
    expect(image.inputs).toEqual({
      context: { location: "." },
      dockerfile: { location: "agent/Dockerfile" },
      platforms: ["linux/amd64"],
      tags: [`ghcr.io/acme/vnode-agent:${AGENT_VERSION}`],
      push: true,
      // The secret password makes the whole list a secret on the wire.
      registries: {
        [SECRET_SIG]: SECRET_VALUE,
        value: [{ address: "ghcr.io", username: "acme-bot", password: PASSWORD }],
      },
      // The payload comes from vnodeImage.
      buildArgs: { VERSION: AGENT_VERSION, VNODE_IMAGE },
      // docker-build's SDK defaults.
      buildOnPreview: true,
      network: "default",
    });
  });

  test("the DaemonSet runs the build's ref, pinned by digest; agentImageRef is the same", async () => {
    const image = recorder.one("bld", IMAGE_TYPE);
    const ref = `${(image.inputs.tags as string[])[0]}@${mockImageDigest(image.inputs)}`;
    expect(ref).toMatch(/^ghcr\.io\/acme\/vnode-agent:[^@:]+@sha256:[0-9a-f]{64}$/);
    expect(containerImage("bld")).toBe(ref);
    expect(await resolve(runtime.agentImageRef)).toBe(ref);
  });

  test("the password is a secret in the Image's registries and nowhere else", async () => {
    const image = recorder.one("bld", IMAGE_TYPE);
    expect(containsSecret(image.inputs.registries)).toBe(true);
    expect(Object.keys(image.inputs).filter((key) => containsSecret(image.inputs[key]))).toEqual([
      "registries",
    ]);
    for (const child of recorder.of("bld").filter((r) => r.type !== IMAGE_TYPE)) {
      expect([child.name, containsSecret(child.inputs)]).toEqual([child.name, false]);
      expect([child.name, JSON.stringify(child.inputs).includes(PASSWORD)]).toEqual([
        child.name,
        false,
      ]);
    }
    expect(await pulumi.isSecret(runtime.agentImageRef)).toBe(false);
  });

  test("the rest of the component is the same as with a ref", () => {
    expect(
      recorder
        .of("bld")
        .map((r) => `${r.type} ${r.name}`)
        .sort(),
    ).toEqual([
      `${IMAGE_TYPE} bld-agent-image`,
      "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy bld-agent-node-policy",
      "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding bld-agent-node-policy-binding",
      "kubernetes:apps/v1:DaemonSet bld-agent",
      "kubernetes:core/v1:Namespace bld-namespace",
      "kubernetes:core/v1:ServiceAccount bld-service-account",
      "kubernetes:node.k8s.io/v1:RuntimeClass bld-runtime-class-vnode",
      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole bld-cluster-role",
      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding bld-cluster-role-binding",
      "kubernetes:rbac.authorization.k8s.io/v1:Role bld-role",
      "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding bld-role-binding",
      "vnode:index:VNodeRuntime bld",
    ]);
  });
});

test("ref: no Image, the DaemonSet runs the ref as given", async () => {
  const runtime = new VNodeRuntime("pre", {
    agentImage: { ref: "registry.example.com/vnode-agent:0.1.0" },
  });
  await settle(recorder, runtime);
  expect(recorder.byType("pre", IMAGE_TYPE)).toEqual([]);
  expect(containerImage("pre")).toBe("registry.example.com/vnode-agent:0.1.0");
  expect(await resolve(runtime.agentImageRef)).toBe("registry.example.com/vnode-agent:0.1.0");
});

test("null, as YAML writes an empty key, counts as unset", async () => {
  const runtime = new VNodeRuntime("nul", {
    agentImage: { ref: "img:1", build: null },
  } as unknown as VNodeRuntimeArgs);
  await settle(recorder, runtime);
  expect(recorder.byType("nul", IMAGE_TYPE)).toEqual([]);
  expect(containerImage("nul")).toBe("img:1");
});

test("every option reaches the Image in docker-build's shape", async () => {
  await built("all", {
    registry: {
      address: "registry.example.com:5000",
      username: "ci",
      password: "plain-in-code-7d1e",
    },
    repository: "platform/vnode/agent",
    tag: "1.2.3-rc.1",
    push: true,
    platforms: [AgentImagePlatform.LinuxAmd64, AgentImagePlatform.LinuxArm64],
    cacheFrom: ["registry.example.com:5000/platform/vnode/agent:cache", "mirror.local/agent:main"],
    cacheTo: "registry.example.com:5000/platform/vnode/agent:cache",
    buildArgs: {
      BASE_IMAGE: "mirror.local/library/node:24-alpine",
      VERSION: "1.2.3",
    },
    context: "../checkout",
  });
  const image = recorder.one("all", IMAGE_TYPE);
  expect(image.inputs).toEqual({
    context: { location: "../checkout" },
    dockerfile: { location: "../checkout/agent/Dockerfile" },
    platforms: ["linux/amd64", "linux/arm64"],
    tags: ["registry.example.com:5000/platform/vnode/agent:1.2.3-rc.1"],
    push: true,
    // A plain password is made a secret too.
    registries: {
      [SECRET_SIG]: SECRET_VALUE,
      value: [
        { address: "registry.example.com:5000", username: "ci", password: "plain-in-code-7d1e" },
      ],
    },
    buildArgs: {
      VERSION: "1.2.3",
      BASE_IMAGE: "mirror.local/library/node:24-alpine",
      VNODE_IMAGE,
    },
    cacheFrom: [
      { registry: { ref: "registry.example.com:5000/platform/vnode/agent:cache" } },
      { registry: { ref: "mirror.local/agent:main" } },
    ],
    cacheTo: [
      {
        registry: {
          ref: "registry.example.com:5000/platform/vnode/agent:cache",
          mode: "max",
          imageManifest: true,
          ociMediaTypes: true,
        },
      },
    ],
    buildOnPreview: true,
    network: "default",
  });
  expect(containerImage("all")).toBe(
    `registry.example.com:5000/platform/vnode/agent:1.2.3-rc.1@${mockImageDigest(image.inputs)}`,
  );
});

test("without credentials the builder's own login is used: no registries", async () => {
  await built("anon", {
    registry: { address: "registry.internal" },
    repository: "vnode-agent",
    tag: "dev",
    dockerfile: "build/Dockerfile.agent",
    buildArgs: { EXTRA_CA: "corp-ca" },
  });
  expect(recorder.one("anon", IMAGE_TYPE).inputs).toEqual({
    context: { location: "." },
    dockerfile: { location: "build/Dockerfile.agent" },
    platforms: ["linux/amd64"],
    tags: ["registry.internal/vnode-agent:dev"],
    push: true,
    buildArgs: { VERSION: "dev", EXTRA_CA: "corp-ca", VNODE_IMAGE },
    buildOnPreview: true,
    network: "default",
  });
});

test("registry coordinates may come from other resources (e.g. an ECR repository)", async () => {
  await built("ecr", {
    registry: {
      address: pulumi.output("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
      username: pulumi.output("AWS"),
      password: pulumi.output("ecr-token-2c4f"),
    },
    repository: pulumi.output("vnode-agent"),
    tag: "0.1.0",
    cacheTo: pulumi.output("123456789012.dkr.ecr.eu-west-1.amazonaws.com/vnode-agent:cache"),
  });
  const image = recorder.one("ecr", IMAGE_TYPE);
  expect(image.inputs.tags).toEqual([
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/vnode-agent:0.1.0",
  ]);
  expect(containsSecret(image.inputs.registries)).toBe(true);
  expect(containerImage("ecr")).toBe(
    `123456789012.dkr.ecr.eu-west-1.amazonaws.com/vnode-agent:0.1.0@${mockImageDigest(image.inputs)}`,
  );
});

test("new content under the same tag rolls the agents; an unchanged build does not", async () => {
  const base = { ...BUILD, tag: "0.1.0" };
  await built("roll-a", base);
  await built("roll-b", base);
  await built("roll-c", { ...base, buildArgs: { BASE_IMAGE: "mirror.local/node:24.22-alpine" } });
  const [a, b, c] = ["roll-a", "roll-b", "roll-c"].map(containerImage) as string[];
  expect(a).toBe(b);
  expect(c).not.toBe(a);
  // Same tag, so only the digest tells the builds apart.
  expect([a.split("@")[0], c.split("@")[0]]).toEqual([
    "ghcr.io/acme/vnode-agent:0.1.0",
    "ghcr.io/acme/vnode-agent:0.1.0",
  ]);
});

test("providers given through opts reach the Image and the Kubernetes children", async () => {
  const builder = new dockerBuild.Provider("remote-builder", {});
  const cluster = new k8s.Provider("other-cluster", { kubeconfig: "{}", context: "other" });
  const runtime = new VNodeRuntime(
    "prov",
    { agentImage: { build: BUILD }, vnodeImage: VNODE_IMAGE },
    { providers: [builder, cluster] },
  );
  await settle(recorder, runtime);
  const expected = async (provider: pulumi.ProviderResource): Promise<string> =>
    `${await resolve(provider.urn)}::${await resolve(provider.id)}`;
  expect(recorder.one("prov", IMAGE_TYPE).provider).toBe(await expected(builder));
  const k8sChildren = recorder.of("prov").filter((r) => r.type.startsWith("kubernetes:"));
  expect(k8sChildren.length).toBe(10);
  for (const child of k8sChildren) {
    expect([child.name, child.provider]).toEqual([child.name, await expected(cluster)]);
  }
});

test("the pushed image is retained when the Image resource is deleted", async () => {
  const seen: [string, boolean | undefined][] = [];
  const runtime = new VNodeRuntime(
    "keep",
    { agentImage: { build: BUILD }, vnodeImage: VNODE_IMAGE },
    {
      transformations: [
        ({ type, name, props, opts }) => {
          seen.push([`${type} ${name}`, opts.retainOnDelete]);
          return { props, opts };
        },
      ],
    },
  );
  await settle(recorder, runtime);
  expect(seen.filter(([, retain]) => retain !== undefined)).toEqual([
    [`${IMAGE_TYPE} keep-agent-image`, true],
  ]);
});

describe("invalid combinations throw before anything is registered", () => {
  const at = "agentImage.build";
  const cases: [string, unknown, string][] = [
    [
      "both ref and build",
      { ref: "ghcr.io/acme/vnode-agent:0.1.0", build: BUILD },
      "agentImage.ref and agentImage.build are exclusive: set agentImage.ref to run a prebuilt image, or agentImage.build to build and push one; got both.",
    ],
    [
      "neither ref nor build",
      { ref: undefined, build: undefined },
      'agentImage needs exactly one of agentImage.ref (a prebuilt image reference, e.g. "ghcr.io/acme/vnode-agent:0.1.0") and agentImage.build (build and push it from this repository); got neither.',
    ],
    [
      "build a string",
      { build: "ghcr.io/acme/vnode-agent" },
      `${at} must be an object with fields registry, repository, tag, push, platforms, cacheFrom, cacheTo, buildArgs, context, dockerfile; got "ghcr.io/acme/vnode-agent".`,
    ],
    [
      "unknown build field",
      { build: { ...BUILD, image: "x" } },
      `${at} has an unknown field "image"; allowed: registry, repository, tag, push, platforms, cacheFrom, cacheTo, buildArgs, context, dockerfile.`,
    ],
    [
      "no registry",
      { build: { repository: "acme/vnode-agent" } },
      `${at}.registry is required: the registry to push to, e.g. { address: "ghcr.io", username: "acme-bot", password: <a Pulumi secret> }.`,
    ],
    [
      "no registry address",
      { build: { ...BUILD, registry: { username: "u", password: "p" } } },
      `${at}.registry.address is required: the registry host, e.g. "ghcr.io"; got nothing.`,
    ],
    [
      "registry address with a scheme",
      { build: { ...BUILD, registry: { address: "https://ghcr.io" } } },
      `${at}.registry.address must be a registry host with an optional port and no scheme or path, e.g. "ghcr.io" or "registry.example.com:5000"; got "https://ghcr.io".`,
    ],
    [
      "username without password",
      { build: { ...BUILD, registry: { address: "ghcr.io", username: "acme-bot" } } },
      `${at}.registry.username and ${at}.registry.password go together: set both, or neither to push with the builder's existing credentials; got only username.`,
    ],
    [
      "password without username",
      { build: { ...BUILD, registry: { address: "ghcr.io", password: "p" } } },
      `${at}.registry.username and ${at}.registry.password go together: set both, or neither to push with the builder's existing credentials; got only password.`,
    ],
    [
      "password a number",
      { build: { ...BUILD, registry: { address: "ghcr.io", username: "u", password: 1234 } } },
      `${at}.registry.password must be a string; got 1234.`,
    ],
    [
      "no repository",
      { build: { registry: BUILD.registry } },
      `${at}.repository is required: the repository path inside the registry, e.g. "acme/vnode-agent"; got nothing.`,
    ],
    [
      "repository with a tag",
      { build: { ...BUILD, repository: "acme/vnode-agent:1.0" } },
      `${at}.repository must be a repository path inside the registry such as "acme/vnode-agent" (lowercase letters and digits, separated by ".", "_", "__" or "-", path components joined by "/"; no registry host, tag or digest); got "acme/vnode-agent:1.0".`,
    ],
    [
      "repository in uppercase",
      { build: { ...BUILD, repository: "Acme/vnode-agent" } },
      `${at}.repository must be a repository path inside the registry such as "acme/vnode-agent" (lowercase letters and digits, separated by ".", "_", "__" or "-", path components joined by "/"; no registry host, tag or digest); got "Acme/vnode-agent".`,
    ],
    [
      "repository with the registry host",
      { build: { ...BUILD, repository: "ghcr.io/acme/vnode-agent" } },
      `${at}.repository "ghcr.io/acme/vnode-agent" starts with the registry host "ghcr.io"; set the host in ${at}.registry.address and only the path inside the registry here, e.g. "acme/vnode-agent".`,
    ],
    [
      "tag with a space",
      { build: { ...BUILD, tag: "v 1" } },
      `${at}.tag must be an image tag (at most 128 letters, digits, "_", "." and "-", not starting with "." or "-"); got "v 1".`,
    ],
    [
      "push false",
      { build: { ...BUILD, push: false } },
      `${at}.push is false, but the nodes pull the agent image from ${at}.registry and the DaemonSets run it by the digest the push returns, so it must be pushed: remove push (it defaults to true), or build the image elsewhere and set agentImage.ref. To check that it builds without pushing, run pulumi preview.`,
    ],
    [
      "push a string",
      { build: { ...BUILD, push: "yes" } },
      `${at}.push must be true or false; got "yes".`,
    ],
    [
      "no platforms",
      { build: { ...BUILD, platforms: [] } },
      `${at}.platforms must be a non-empty list of linux/amd64, linux/arm64; got [].`,
    ],
    [
      "32-bit arm",
      { build: { ...BUILD, platforms: ["linux/amd64", "linux/arm"] } },
      `${at}.platforms[1] must be one of linux/amd64, linux/arm64; got "linux/arm".`,
    ],
    [
      "a platform twice",
      { build: { ...BUILD, platforms: ["linux/arm64", "linux/arm64"] } },
      `${at}.platforms[1] "linux/arm64" is already listed as ${at}.platforms[0].`,
    ],
    [
      "cacheFrom a string",
      { build: { ...BUILD, cacheFrom: "ghcr.io/acme/vnode-agent:cache" } },
      `${at}.cacheFrom must be a list of registry cache image references such as "ghcr.io/acme/vnode-agent:cache"; got "ghcr.io/acme/vnode-agent:cache".`,
    ],
    [
      "cacheFrom in buildx syntax",
      { build: { ...BUILD, cacheFrom: ["type=registry,ref=ghcr.io/acme/vnode-agent:cache"] } },
      `${at}.cacheFrom[0] must be a registry cache image reference such as "ghcr.io/acme/vnode-agent:cache"; got "type=registry,ref=ghcr.io/acme/vnode-agent:cache".`,
    ],
    [
      "cacheTo a local directory",
      { build: { ...BUILD, cacheTo: "/tmp/cache" } },
      `${at}.cacheTo must be a registry cache image reference such as "ghcr.io/acme/vnode-agent:cache"; got "/tmp/cache".`,
    ],
    [
      "a misspelt Dockerfile ARG",
      { build: { ...BUILD, buildArgs: { BASE_IMGE: "node:24-alpine" } } },
      `${at}.buildArgs key "BASE_IMGE" is not an ARG of agent/Dockerfile; allowed: BUILD_IMAGE, BASE_IMAGE, VNODE_IMAGE, VNODE_PAYLOAD, NPM_CONFIG_REGISTRY, VERSION, REVISION, SOURCE.`,
    ],
    [
      "VNODE_IMAGE as a build arg",
      { build: { ...BUILD, buildArgs: { VNODE_IMAGE: "x/vnode:1" } } },
      `${at}.buildArgs may not set VNODE_IMAGE: set vnodeImage instead.`,
    ],
    [
      "the local payload as a build arg, even with another Dockerfile",
      { build: { ...BUILD, dockerfile: "Dockerfile", buildArgs: { VNODE_PAYLOAD: "local" } } },
      `${at}.buildArgs may not set VNODE_PAYLOAD: the component always takes the payload from vnodeImage (VNODE_PAYLOAD=local is for builds outside Pulumi).`,
    ],
    [
      "a build arg that is not a string",
      { build: { ...BUILD, buildArgs: { VERSION: 2 } } },
      `${at}.buildArgs["VERSION"] must be a string; got 2.`,
    ],
    [
      "an ARG name a Dockerfile cannot declare",
      { build: { ...BUILD, dockerfile: "Dockerfile", buildArgs: { "1ST": "x" } } },
      `${at}.buildArgs key "1ST" must be a Dockerfile ARG name (letters, digits and "_", not starting with a digit).`,
    ],
    [
      "an empty context",
      { build: { ...BUILD, context: " " } },
      `${at}.context must be a non-empty path, relative to the Pulumi program's directory or absolute; got " ".`,
    ],
    [
      "a dockerfile that is not a path",
      { build: { ...BUILD, dockerfile: ["agent/Dockerfile"] } },
      `${at}.dockerfile must be a non-empty path, relative to the Pulumi program's directory or absolute; got ["agent/Dockerfile"].`,
    ],
  ];

  test.each(cases)("%s", async (_what, agentImage, message) => {
    const before = recorder.resources.length;
    const args = { agentImage, vnodeImage: VNODE_IMAGE } as unknown as VNodeRuntimeArgs;
    expect(() => new VNodeRuntime("bad", args)).toThrow(new VNodeRuntimeArgsError(message));
    await new Promise((r) => setTimeout(r, 10));
    expect(recorder.resources.length).toBe(before);
  });

  test("nothing named bad was registered, not even the component", () => {
    expect(recorder.of("bad")).toEqual([]);
  });
});
describe("vnodeImage: required with a build, refused with a ref", () => {
  const required =
    'vnodeImage is required with agentImage.build: the vNode runtime image of your release, whose containerd-shim-vnode-v2, vnode-manager and vnode-cni the build puts into the agent image (see the README, "The agent image")';
  const cases: [string, Record<string, unknown>, string][] = [
    ["a build without it", { agentImage: { build: BUILD } }, `${required}; got nothing.`],
    [
      "a build with an empty one",
      { agentImage: { build: BUILD }, vnodeImage: "" },
      `${required}; got "".`,
    ],
    [
      "a ref with it",
      { agentImage: { ref: "img:1" }, vnodeImage: "mirror.local/vnode-runtime:0.0.4" },
      `vnodeImage is only used to build the agent image (agentImage.build); agentImage.ref names a prebuilt image that already carries its vNode payload: remove vnodeImage, or build with agentImage.build; got "mirror.local/vnode-runtime:0.0.4".`,
    ],
    [
      "not an image reference",
      { agentImage: { build: BUILD }, vnodeImage: "https://ghcr.io/x/vnode" },
      'vnodeImage must be an image reference like "registry.example.com/mirror/vnode-runtime:<version>" (optionally @sha256:<digest>); got "https://ghcr.io/x/vnode".',
    ],
  ];
  test.each(cases)("%s", async (_what, args, message) => {
    const before = recorder.resources.length;
    expect(() => new VNodeRuntime("novnode", args as unknown as VNodeRuntimeArgs)).toThrow(
      new VNodeRuntimeArgsError(message),
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(recorder.resources.length).toBe(before);
  });

  test("an Output is accepted and reaches VNODE_IMAGE", async () => {
    const runtime = new VNodeRuntime("outvnode", {
      agentImage: { build: BUILD },
      vnodeImage: pulumi.output(VNODE_IMAGE),
    });
    await settle(recorder, runtime);
    expect(recorder.one("outvnode", IMAGE_TYPE).inputs.buildArgs).toEqual({
      VERSION: AGENT_VERSION,
      VNODE_IMAGE,
    });
  });
});

describe("defaults", () => {
  test("the Dockerfile's ARGs are the ones buildArgs accepts", () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, "agent", "Dockerfile"), "utf8");
    const declared = [...dockerfile.matchAll(/^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)/gm)].map(
      (match) => match[1],
    );
    expect([...new Set(declared)]).toEqual(AGENT_DOCKERFILE_ARGS);
    expect(fs.existsSync(path.join(ROOT, DEFAULTS.agentImageBuild.dockerfile))).toBe(true);
  });

  test("the tag defaults to the agent package's version", () => {
    expect(readAgentVersion(ROOT)).toBe(AGENT_VERSION);
    expect(AGENT_VERSION).toMatch(/^[0-9]+\.[0-9]+\.[0-9]+/);
  });

  test("an unreadable agent version is an error that says to set the tag", () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-agent-version-"));
    try {
      const file = path.join(empty, "agent", "package.json");
      expect(() => readAgentVersion(empty)).toThrow(
        `cannot read ${file}: ENOENT: no such file or directory, open '${file}'`,
      );
      fs.mkdirSync(path.join(empty, "agent"));
      fs.writeFileSync(file, JSON.stringify({ name: "vnode-agent" }));
      expect(() => readAgentVersion(empty)).toThrow(`${file} has no "version"`);
      const environment = {
        cwd: empty,
        packageRoot: empty,
        agentVersion: () => readAgentVersion(empty),
      };
      expect(() => planAgentImageBuild(BUILD, VNODE_IMAGE, environment)).toThrow(
        new VNodeRuntimeArgsError(
          `agentImage.build.tag is not set and its default, the agent package's version, is unknown: ${file} has no "version"; set agentImage.build.tag.`,
        ),
      );
      expect(planAgentImageBuild({ ...BUILD, tag: "7" }, VNODE_IMAGE, environment).tag).toBe("7");
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  test("the repository is found from the sources and from the build, not from node_modules", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-package-root-"));
    try {
      // A checkout: <repo>/components/{package.json,dist/} beside <repo>/agent/Dockerfile.
      const repo = path.join(root, "repo");
      fs.mkdirSync(path.join(repo, "components", "dist", "enforcement"), { recursive: true });
      fs.writeFileSync(path.join(repo, "components", "package.json"), "{}");
      fs.mkdirSync(path.join(repo, "agent"));
      fs.writeFileSync(path.join(repo, DEFAULTS.agentImageBuild.dockerfile), "FROM scratch\n");
      expect(findPackageRepository(path.join(repo, "components"))).toBe(repo);
      expect(findPackageRepository(path.join(repo, "components", "dist"))).toBe(repo);
      expect(findPackageRepository(path.join(repo, "components", "dist", "enforcement"))).toBe(
        repo,
      );
      // Installed from a tarball: <consumer>/node_modules/vnode/dist, no agent/ anywhere.
      const installed = path.join(root, "consumer", "node_modules", "vnode");
      fs.mkdirSync(path.join(installed, "dist"), { recursive: true });
      fs.writeFileSync(path.join(installed, "package.json"), "{}");
      expect(findPackageRepository(path.join(installed, "dist"))).toBeUndefined();
      // This repository, from this test's point of view of the sources.
      expect(findPackageRepository(path.join(ROOT, "components"))).toBe(ROOT);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test("without the repository a build needs its context and tag, and says so", () => {
    const environment = {
      cwd: ROOT,
      packageRoot: undefined,
      agentVersion: () => {
        throw new Error("the vnode package is installed without its repository");
      },
    };
    expect(() => planAgentImageBuild(BUILD, VNODE_IMAGE, environment)).toThrow(
      new VNodeRuntimeArgsError(
        `agentImage.build.context is not set and its default, the vnode repository (with agent/Dockerfile), is not beside the installed vnode package; set agentImage.build.context to a checkout of the vnode repository, or use agentImage.ref.`,
      ),
    );
    expect(() =>
      planAgentImageBuild({ ...BUILD, context: "../vnode" }, VNODE_IMAGE, environment),
    ).toThrow(
      new VNodeRuntimeArgsError(
        `agentImage.build.tag is not set and its default, the agent package's version, is unknown: the vnode package is installed without its repository; set agentImage.build.tag.`,
      ),
    );
    const plan = planAgentImageBuild(
      { ...BUILD, context: "../vnode", tag: "0.1.0" },
      VNODE_IMAGE,
      environment,
    );
    expect([plan.context, plan.dockerfile, plan.tag]).toEqual([
      "../vnode",
      path.join("../vnode", "agent", "Dockerfile"),
      "0.1.0",
    ]);
  });

  test.each([
    ["/src/vnode", "/src/vnode", "."],
    ["/src", "/src/vnode", "vnode"],
    ["/src/vnode/examples/prod", "/src/vnode", "/src/vnode"],
    ["/home/ci/plugins/vnode/components", "/src/vnode", "/src/vnode"],
  ])("program in %s, package in %s: context %s", (cwdDir, packageRoot, context) => {
    expect(defaultContext(cwdDir, packageRoot)).toBe(context);
  });

  test("the builder marks the password secret whatever its origin", async () => {
    const plan = planAgentImageBuild(
      { registry: { address: "ghcr.io", username: "u", password: "plain" }, repository: "a/b" },
      VNODE_IMAGE,
      { cwd: ROOT, packageRoot: ROOT, agentVersion: () => "0.0.1" },
    );
    const registries = buildAgentImage(plan).registries as unknown as {
      password: pulumi.Output<string>;
    }[];
    expect(await pulumi.isSecret(registries[0].password)).toBe(true);
  });
});

describe("the pinned ref", () => {
  const plan = { name: pulumi.output("ghcr.io/acme/vnode-agent"), tag: "0.1.0" };
  const DIGEST = `sha256:${"ab".repeat(32)}`;
  const internals = (
    output: pulumi.Output<string>,
  ): { isKnown: Promise<boolean>; promise(): Promise<string> } =>
    output as unknown as { isKnown: Promise<boolean>; promise(): Promise<string> };

  test("is <name>:<tag>@<digest>", async () => {
    expect(await resolve(pinnedImageRef(plan, pulumi.output(DIGEST), false))).toBe(
      `ghcr.io/acme/vnode-agent:0.1.0@${DIGEST}`,
    );
  });

  test("is unknown in a preview, which builds without pushing", async () => {
    const ref = internals(pinnedImageRef(plan, pulumi.output(""), true));
    expect(await ref.isKnown).toBe(false);
  });

  /** The error an Output failed with; every promise inside it is awaited, so none is unhandled. */
  async function failure(output: pulumi.Output<string>): Promise<string> {
    const o = output as unknown as {
      isKnown: Promise<boolean>;
      isSecret: Promise<boolean>;
      promise(): Promise<string>;
      allResources(): Promise<unknown>;
    };
    const settled = await Promise.allSettled([
      o.isKnown,
      o.isSecret,
      o.promise(),
      o.allResources(),
    ]);
    const rejected = settled.find((result) => result.status === "rejected");
    return rejected === undefined ? "no error" : (rejected.reason as Error).message;
  }

  test("fails an update that pushed nothing, instead of running the bare tag", async () => {
    expect(await failure(pinnedImageRef(plan, pulumi.output(""), false))).toBe(
      "The agent image build of ghcr.io/acme/vnode-agent:0.1.0 returned no digest, so the image was not pushed and the nodes cannot pull it; check agentImage.build.registry and the push permissions of its credentials.",
    );
    expect(await failure(pinnedImageRef(plan, pulumi.output("sha256:abc"), false))).toBe(
      'The agent image build of ghcr.io/acme/vnode-agent:0.1.0 returned the digest "sha256:abc"; expected "sha256:" and 64 hex digits.',
    );
  });
});
