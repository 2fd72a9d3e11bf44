/** The stack program's config reader: typed keys, object keys, secrets, and errors naming the key. */
import * as pulumi from "@pulumi/pulumi";
import { VNodeRuntime } from "../../components/index";
import { StackConfigError, readStackConfig } from "../../components/stackConfig";
import {
  Recorder,
  SECRET_SIG,
  SECRET_VALUE,
  containsSecret,
  mockImageDigest,
  resolve,
  settle,
} from "./harness";

const recorder = new Recorder();
beforeAll(() => recorder.install("vnode-runtime", "unit"));

const BASE = { "vnode-runtime:agentImage": "img:1" };
const configure = (values: Record<string, string>, secretKeys: string[] = []): void =>
  pulumi.runtime.setAllConfig({ ...BASE, ...values }, secretKeys);

test("typed and object keys become the component's args; unset keys stay unset", () => {
  configure({
    "vnode-runtime:isolationMode": "per-pod",
    "vnode-runtime:createNamespace": "false",
    "vnode-runtime:maxUnavailable": "2",
    "vnode-runtime:terminationGracePeriodSeconds": "90",
    "vnode-runtime:perPodRuntimeClassName": "sandbox",
    "vnode-runtime:pools": JSON.stringify([{ name: "a", nodeSelector: { pool: "a" } }]),
    "vnode-runtime:env": JSON.stringify([{ name: "A", value: "1" }]),
    "vnode-runtime:labels": JSON.stringify({ team: "platform" }),
    "kubernetes:context": "kind-dev",
  });
  expect(readStackConfig("vnode-runtime")).toEqual({
    agentImage: { ref: "img:1" },
    isolationMode: "per-pod",
    createNamespace: false,
    perPodRuntimeClassName: "sandbox",
    updateStrategy: { maxUnavailable: 2 },
    terminationGracePeriodSeconds: 90,
    pools: [{ name: "a", nodeSelector: { pool: "a" } }],
    env: [{ name: "A", value: "1" }],
    labels: { team: "platform" },
  });
});

test.each<[string, Record<string, string>, string]>([
  [
    "an unknown key of the project",
    { "vnode-runtime:isolationMod": "per-pod" },
    "Config key vnode-runtime:isolationMod is unknown; known keys: isolationMode, namespace, createNamespace, runtimeClassName, handler, containerdDistribution, restartStrategy, priorityClassName, maxUnavailable, terminationGracePeriodSeconds, forceUninstall, retainNamespace, agentImage, vnodeImage, perPodRuntimeClassName, nodeSelector, tolerations, affinity, resources, manager, maxUnavailablePercent, rollout, overhead, runtimeClassTolerations, pools, env, secretEnv, labels, annotations, metrics, enforcement, certManager.",
  ],
  [
    "no agent image",
    { "vnode-runtime:agentImage": " " },
    "Config key vnode-runtime:agentImage is required: the agent image reference, e.g. `pulumi config set agentImage ghcr.io/acme/vnode-agent:0.1.0`, or { build: { registry, repository } } to build and push it from this repository.",
  ],
  [
    "a registry password that is not a string",
    {
      "vnode-runtime:agentImage": JSON.stringify({
        build: {
          registry: { address: "ghcr.io", username: "u", password: 1234 },
          repository: "a/b",
        },
      }),
    },
    "Config key vnode-runtime:agentImage.build.registry.password must be a string; got a number.",
  ],
  [
    "maxUnavailable 0",
    { "vnode-runtime:maxUnavailable": "0" },
    'Config key vnode-runtime:maxUnavailable must be an integer of at least 1; got "0".',
  ],
  [
    "createNamespace yes",
    { "vnode-runtime:createNamespace": "yes" },
    'Config key vnode-runtime:createNamespace must be true or false; got "yes".',
  ],
  [
    "env a map",
    { "vnode-runtime:env": JSON.stringify({ A: "1" }) },
    'Config key vnode-runtime:env must be a list of { name, value } or { name, secretKeyRef: { name, key } }; got {"A":"1"}.',
  ],
  [
    "secretEnv a list",
    { "vnode-runtime:secretEnv": JSON.stringify(["x"]) },
    "Config key vnode-runtime:secretEnv must be a map of env var names to secret values; got a list.",
  ],
  [
    "secretEnv a number",
    { "vnode-runtime:secretEnv": JSON.stringify({ A: 1 }) },
    "Config key vnode-runtime:secretEnv.A must be a string; got a number.",
  ],
])("%s", (_what, values, message) => {
  configure(values);
  expect(() => readStackConfig("vnode-runtime")).toThrow(new StackConfigError(message));
});

test("object keys pass through to the component, whose errors name the same key", () => {
  configure({ "vnode-runtime:pools": JSON.stringify([{ name: "a", isolationMode: "per_pod" }]) });
  expect(() => new VNodeRuntime("cfg", readStackConfig("vnode-runtime"))).toThrow(
    'pools[0].isolationMode must be one of per-namespace, per-pod; got "per_pod".',
  );
});

test("enforcement and certManager are read as objects; the component's errors name their keys", async () => {
  const enforcement = {
    namespaceSelector: { matchLabels: { tenant: "true" } },
    mode: "mutate-and-validate",
  };
  configure({
    "vnode-runtime:enforcement": JSON.stringify(enforcement),
    "vnode-runtime:certManager": JSON.stringify({ install: true }),
  });
  const args = readStackConfig("vnode-runtime");
  expect([args.enforcement, args.certManager]).toEqual([enforcement, { install: true }]);
  const runtime = new VNodeRuntime("cfgenf", args);
  await settle(recorder, runtime);
  expect(
    recorder
      .of("cfgenf")
      .filter((r) => /WebhookConfiguration|CertManager/.test(r.type))
      .map((r) => r.name)
      .sort(),
  ).toEqual([
    "cfgenf-cert-manager",
    "cfgenf-mutating-webhook",
    "cfgenf-namespace-guard-webhook",
    "cfgenf-validating-webhook",
  ]);

  configure({ "vnode-runtime:enforcement": JSON.stringify({ ...enforcement, mode: "Mutate" }) });
  expect(() => new VNodeRuntime("cfgenfbad", readStackConfig("vnode-runtime"))).toThrow(
    'enforcement.mode must be one of mutate, validate, mutate-and-validate; got "Mutate".',
  );
  // The namespace inputs nest in the same key; their errors name them the same way.
  const scoped = {
    scope: "all-except-exempt",
    mode: "validate",
    namespaceLabelGuard: { platformGroups: ["platform-admins"] },
    podSecurityLevel: "restricted",
  };
  configure({ "vnode-runtime:enforcement": JSON.stringify(scoped) });
  expect(readStackConfig("vnode-runtime").enforcement).toEqual(scoped);
  configure({
    "vnode-runtime:enforcement": JSON.stringify({ ...scoped, podSecurityLevel: "Restricted" }),
  });
  expect(() => new VNodeRuntime("cfgenfbad2", readStackConfig("vnode-runtime"))).toThrow(
    'enforcement.podSecurityLevel must be one of baseline, restricted; got "Restricted".',
  );
});

test("secretEnv values stay secret and reach the pod only through the Secret", async () => {
  configure({ "vnode-runtime:secretEnv": JSON.stringify({ LICENSE_TOKEN: "s3cr3t" }) }, [
    "vnode-runtime:secretEnv",
  ]);
  const args = readStackConfig("vnode-runtime");
  const token = args.env![0];
  expect(token.name).toBe("LICENSE_TOKEN");
  expect(await pulumi.isSecret(token.value as pulumi.Output<string>)).toBe(true);

  const runtime = new VNodeRuntime("cfgsec", args);
  await settle(recorder, runtime);
  const daemonSet = recorder.one("cfgsec", "kubernetes:apps/v1:DaemonSet").inputs;
  expect(containsSecret(daemonSet)).toBe(false);
  expect(JSON.stringify(daemonSet)).not.toContain("s3cr3t");
  expect(JSON.stringify(daemonSet)).toContain(
    '"secretKeyRef":{"key":"LICENSE_TOKEN","name":"cfgsec-agent-env"}',
  );
  const secret = recorder.one("cfgsec", "kubernetes:core/v1:Secret").inputs;
  expect(containsSecret(secret.stringData)).toBe(true);
});

describe("agentImage as an object builds the image", () => {
  const BUILD = {
    registry: { address: "ghcr.io", username: "acme-bot", password: "cfg-token-51c2" },
    repository: "acme/vnode-agent",
    tag: "0.1.0",
    platforms: ["linux/amd64", "linux/arm64"],
  };
  const VNODE = "registry.example.com/mirror/vnode-runtime:0.0.4";
  const setBuild = (build: object, vnodeImage = VNODE): void =>
    configure(
      {
        "vnode-runtime:agentImage": JSON.stringify({ build }),
        "vnode-runtime:vnodeImage": vnodeImage,
      },
      ["vnode-runtime:agentImage"],
    );

  test("only the password is a secret; the rest is plain for validation", async () => {
    setBuild(BUILD);
    const { agentImage } = readStackConfig("vnode-runtime");
    const { password, ...registry } = agentImage.build!.registry;
    expect({ ...agentImage.build, registry }).toEqual({
      registry: { address: "ghcr.io", username: "acme-bot" },
      repository: "acme/vnode-agent",
      tag: "0.1.0",
      platforms: ["linux/amd64", "linux/arm64"],
    });
    expect(agentImage.ref).toBeUndefined();
    expect(await pulumi.isSecret(password as pulumi.Output<string>)).toBe(true);
  });

  test("the component pushes with the secret and the DaemonSet holds no secret", async () => {
    setBuild(BUILD);
    const runtime = new VNodeRuntime("cfgimg", readStackConfig("vnode-runtime"));
    await settle(recorder, runtime);
    const image = recorder.one("cfgimg", "docker-build:index:Image").inputs;
    expect(image.tags).toEqual(["ghcr.io/acme/vnode-agent:0.1.0"]);
    expect(image.buildArgs).toEqual({ VERSION: "0.1.0", VNODE_IMAGE: VNODE });
    expect(image.platforms).toEqual(["linux/amd64", "linux/arm64"]);
    expect(image.registries).toEqual({
      [SECRET_SIG]: SECRET_VALUE,
      value: [{ address: "ghcr.io", username: "acme-bot", password: "cfg-token-51c2" }],
    });
    const daemonSet = recorder.one("cfgimg", "kubernetes:apps/v1:DaemonSet").inputs;
    expect(containsSecret(daemonSet)).toBe(false);
    expect(JSON.stringify(daemonSet)).not.toContain("cfg-token-51c2");
    expect(await resolve(runtime.agentImageRef)).toBe(
      `ghcr.io/acme/vnode-agent:0.1.0@${mockImageDigest(image)}`,
    );
  });

  test("the component's errors name the config path", () => {
    setBuild({ ...BUILD, push: false });
    expect(() => new VNodeRuntime("cfgbad", readStackConfig("vnode-runtime"))).toThrow(
      /^agentImage\.build\.push is false, but the nodes pull the agent image/,
    );
    setBuild(BUILD, "");
    expect(() => new VNodeRuntime("cfgbad2", readStackConfig("vnode-runtime"))).toThrow(
      /^vnodeImage is required with agentImage\.build: /,
    );
  });
});
