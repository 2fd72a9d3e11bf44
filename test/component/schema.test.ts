/**
 * The schema other languages get: Pulumi's own Analyzer infers it from the TypeScript args, as
 * `pulumi package add` does, and the component provider constructs the component from plain inputs.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import { Analyzer, AnalyzeResult } from "@pulumi/pulumi/provider/experimental/analyzer";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import { VNodeRuntime } from "../../components/index";
import { Recorder, SECRET_SIG, SECRET_VALUE, mockImageDigest, settle } from "./harness";

const DIR = path.join(__dirname, "..", "..", "components");
let result: AnalyzeResult;

const withoutDescriptions = (properties: Record<string, object>): Record<string, object> =>
  Object.fromEntries(
    Object.entries(properties).map(([key, value]) => [key, { ...value, description: undefined }]),
  );

beforeAll(() => {
  const packageJSON = JSON.parse(fs.readFileSync(path.join(DIR, "package.json"), "utf8"));
  result = new Analyzer(DIR, "vnode", packageJSON, new Set(["VNodeRuntime"])).analyze();
});

test("VNodeRuntime has exactly these inputs; only agentImage is required", () => {
  const inputs = result.components.VNodeRuntime.inputs;
  expect(Object.keys(inputs)).toEqual([
    "agentImage",
    "vnodeImage",
    "isolationMode",
    "namespace",
    "createNamespace",
    "retainNamespace",
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
    "manager",
    "updateStrategy",
    "rollout",
    "terminationGracePeriodSeconds",
    "forceUninstall",
    "overhead",
    "runtimeClassTolerations",
    "pools",
    "env",
    "labels",
    "annotations",
    "metrics",
    "agentConfinement",
    "enforcement",
    "certManager",
  ]);
  expect(Object.keys(inputs).filter((key) => !inputs[key].optional)).toEqual(["agentImage"]);
});

test("isolationMode is an enum of per-namespace and per-pod, plain (it decides children)", () => {
  const isolationMode = result.components.VNodeRuntime.inputs.isolationMode;
  expect({ ...isolationMode, description: undefined }).toEqual({
    $ref: "#/types/vnode:index:IsolationMode",
    optional: true,
    plain: true,
    description: undefined,
  });
  expect(isolationMode.description).toMatch(
    /^Isolation mode of the nodes .*Defaults to `per-namespace`/s,
  );
  expect(result.typeDefinitions.IsolationMode.type).toBe("string");
  expect(
    result.typeDefinitions.IsolationMode.enum?.map(({ name, value }) => [name, value]),
  ).toEqual([
    ["PerNamespace", "per-namespace"],
    ["PerPod", "per-pod"],
  ]);
});

test("pools is a list of PoolArgs with name, isolationMode, nodeSelector, tolerations", () => {
  const pools = result.components.VNodeRuntime.inputs.pools;
  expect(withoutDescriptions({ pools })).toEqual({
    pools: {
      type: "array",
      items: { $ref: "#/types/vnode:index:PoolArgs", plain: true },
      optional: true,
      plain: true,
      description: undefined,
    },
  });
  expect(withoutDescriptions(result.typeDefinitions.PoolArgs.properties!)).toEqual({
    name: { type: "string", plain: true, description: undefined },
    isolationMode: {
      $ref: "#/types/vnode:index:IsolationMode",
      optional: true,
      plain: true,
      description: undefined,
    },
    // Inputs: the pool's node labels and taints may come from another resource (a node group).
    nodeSelector: {
      type: "object",
      additionalProperties: { type: "string" },
      optional: true,
      description: undefined,
    },
    tolerations: {
      type: "array",
      items: { $ref: "#/types/vnode:index:Toleration" },
      optional: true,
      description: undefined,
    },
  });
});

test("what may come from another resource is an input (not plain); the Analyzer's limits", () => {
  const inputs = withoutDescriptions(result.components.VNodeRuntime.inputs);
  const map = { type: "object", additionalProperties: { type: "string" }, optional: true };
  const tolerations = {
    type: "array",
    items: { $ref: "#/types/vnode:index:Toleration" },
    optional: true,
  };
  const ref = (type: string): object => ({ $ref: `#/types/vnode:index:${type}`, optional: true });
  const string = { type: "string", optional: true };
  expect(
    Object.fromEntries(
      [
        "namespace",
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
        "resources",
        "terminationGracePeriodSeconds",
        "runtimeClassTolerations",
        "labels",
        "annotations",
      ].map((key) => [key, { ...inputs[key], description: undefined }]),
    ),
  ).toEqual(
    Object.fromEntries(
      Object.entries({
        namespace: string,
        nodeSelector: map,
        tolerations,
        affinity: ref("Affinity"),
        priorityClassName: string,
        resources: ref("ResourceRequirements"),
        // Pulumi 3.270's Analyzer maps every TypeScript `number` to "number"
        // (analyzer.ts getSimplePropertyType): no "integer" for a count of seconds.
        terminationGracePeriodSeconds: { type: "number", optional: true },
        runtimeClassTolerations: tolerations,
        labels: map,
        annotations: map,
      }).map(([key, value]) => [key, { ...value, description: undefined }]),
    ),
  );
  // It can refer to another package's resources only (isResourceReference), never to its types:
  // `k8s.types.input.core.v1.Toleration` becomes a copy named after the interface.
  const { typeDefinitions: types } = result;
  expect(withoutDescriptions(types.Toleration.properties!)).toEqual({
    effect: string,
    key: string,
    operator: string,
    tolerationSeconds: { type: "number", optional: true },
    value: string,
  });
  // The object types that are not the package's own `...Args`: the copies of Kubernetes types.
  expect(
    Object.keys(types).filter((type) => !type.endsWith("Args") && types[type].enum === undefined),
  ).toEqual([
    "Toleration",
    "Affinity",
    "NodeAffinity",
    "PreferredSchedulingTerm",
    "NodeSelectorTerm",
    "NodeSelectorRequirement",
    "NodeSelector",
    "PodAffinity",
    "WeightedPodAffinityTerm",
    "PodAffinityTerm",
    "LabelSelector",
    "LabelSelectorRequirement",
    "PodAntiAffinity",
    "ResourceRequirements",
    "ResourceClaim",
  ]);
});

test("agentImage is a ref (an input: may come from another resource) or a build", () => {
  const { typeDefinitions } = result;
  expect(withoutDescriptions(typeDefinitions.AgentImageArgs.properties!)).toEqual({
    ref: { type: "string", optional: true, description: undefined },
    build: {
      $ref: "#/types/vnode:index:AgentImageBuildArgs",
      optional: true,
      plain: true,
      description: undefined,
    },
  });
  // The vNode image may come from another resource (e.g. a mirrored image's digest ref).
  expect(result.components.VNodeRuntime.inputs.vnodeImage).toEqual({
    type: "string",
    optional: true,
    description: expect.stringMatching(
      /^The vNode runtime image .*Required with\s+`agentImage.build`/s,
    ),
  });
  expect(typeDefinitions.AgentImageArgs.properties!.ref.description).toMatch(
    /^Image reference of a prebuilt node agent image.*Exclusive with\s+`build`/s,
  );
  // Registry coordinates and credentials may come from other resources (e.g. an ECR repository
  // and its authorization token); what validation must see is plain.
  expect(withoutDescriptions(typeDefinitions.AgentImageBuildArgs.properties!)).toEqual({
    registry: {
      $ref: "#/types/vnode:index:AgentImageRegistryArgs",
      plain: true,
      description: undefined,
    },
    repository: { type: "string", description: undefined },
    tag: { type: "string", optional: true, plain: true, description: undefined },
    push: { type: "boolean", optional: true, plain: true, description: undefined },
    platforms: {
      type: "array",
      items: { $ref: "#/types/vnode:index:AgentImagePlatform", plain: true },
      optional: true,
      plain: true,
      description: undefined,
    },
    cacheFrom: {
      type: "array",
      items: { type: "string" },
      optional: true,
      plain: true,
      description: undefined,
    },
    cacheTo: { type: "string", optional: true, description: undefined },
    buildArgs: {
      type: "object",
      additionalProperties: { type: "string", plain: true },
      optional: true,
      plain: true,
      description: undefined,
    },
    context: { type: "string", optional: true, plain: true, description: undefined },
    dockerfile: { type: "string", optional: true, plain: true, description: undefined },
  });
  expect(withoutDescriptions(typeDefinitions.AgentImageRegistryArgs.properties!)).toEqual({
    address: { type: "string", description: undefined },
    username: { type: "string", optional: true, description: undefined },
    password: { type: "string", optional: true, description: undefined },
  });
  expect(typeDefinitions.AgentImagePlatform.type).toBe("string");
  expect(typeDefinitions.AgentImagePlatform.enum?.map(({ name, value }) => [name, value])).toEqual([
    ["LinuxAmd64", "linux/amd64"],
    ["LinuxArm64", "linux/arm64"],
  ]);
  const described = Object.entries(typeDefinitions.AgentImageBuildArgs.properties!).map(
    ([key, value]) => [key, typeof value.description],
  );
  expect(described).toEqual(
    Object.keys(typeDefinitions.AgentImageBuildArgs.properties!).map((key) => [key, "string"]),
  );
  expect(typeDefinitions.AgentImageBuildArgs.properties!.tag.description).toMatch(
    /Defaults to the agent package's version/,
  );
  expect(typeDefinitions.AgentImageBuildArgs.properties!.platforms.description).toMatch(
    /Defaults to `\["linux\/amd64"\]`/,
  );
});

test("enforcement and certManager are plain objects of flat types (they decide children)", () => {
  const { inputs } = result.components.VNodeRuntime;
  const { typeDefinitions: types } = result;
  expect(
    withoutDescriptions({ enforcement: inputs.enforcement, certManager: inputs.certManager }),
  ).toEqual({
    enforcement: {
      $ref: "#/types/vnode:index:EnforcementArgs",
      optional: true,
      plain: true,
      description: undefined,
    },
    certManager: {
      $ref: "#/types/vnode:index:CertManagerArgs",
      optional: true,
      plain: true,
      description: undefined,
    },
  });
  const ref = (type: string, optional = true): object => ({
    $ref: `#/types/vnode:index:${type}`,
    ...(optional ? { optional: true } : {}),
    plain: true,
    description: undefined,
  });
  expect(withoutDescriptions(types.EnforcementArgs.properties!)).toEqual({
    scope: ref("EnforcementScope"),
    namespaceSelector: ref("LabelSelectorArgs"),
    mode: ref("EnforcementMode", false),
    mutateFailurePolicy: ref("FailurePolicy"),
    validateFailurePolicy: ref("FailurePolicy"),
    acknowledgeValidationFailOpen: { type: "boolean", optional: true, plain: true },
    backend: ref("EnforcementBackend"),
    mutatingPolicyApiVersion: ref("MutatingPolicyApiVersion"),
    namespaceLabelGuard: ref("NamespaceLabelGuardArgs"),
    podSecurityLevel: ref("PodSecurityLevel"),
  });
  expect(withoutDescriptions(types.NamespaceLabelGuardArgs.properties!)).toEqual({
    enabled: { type: "boolean", optional: true, plain: true },
    platformGroups: {
      type: "array",
      items: { type: "string", plain: true },
      optional: true,
      plain: true,
    },
  });
  expect(types.EnforcementScope.enum?.map(({ name, value }) => [name, value])).toEqual([
    ["Selected", "selected"],
    ["AllExceptExempt", "all-except-exempt"],
  ]);
  expect(types.PodSecurityLevel.enum?.map(({ name, value }) => [name, value])).toEqual([
    ["Baseline", "baseline"],
    ["Restricted", "restricted"],
  ]);
  expect(withoutDescriptions(types.LabelSelectorArgs.properties!)).toEqual({
    matchLabels: {
      type: "object",
      additionalProperties: { type: "string", plain: true },
      optional: true,
      plain: true,
      description: undefined,
    },
    matchExpressions: {
      type: "array",
      items: { $ref: "#/types/vnode:index:LabelSelectorRequirementArgs", plain: true },
      optional: true,
      plain: true,
      description: undefined,
    },
  });
  expect(withoutDescriptions(types.LabelSelectorRequirementArgs.properties!)).toEqual({
    key: { type: "string", plain: true, description: undefined },
    operator: ref("LabelSelectorOperator", false),
    values: {
      type: "array",
      items: { type: "string", plain: true },
      optional: true,
      plain: true,
      description: undefined,
    },
  });
  expect(withoutDescriptions(types.CertManagerArgs.properties!)).toEqual({
    install: { type: "boolean", optional: true, plain: true, description: undefined },
    issuerRef: ref("IssuerRefArgs"),
  });
  expect(withoutDescriptions(types.IssuerRefArgs.properties!)).toEqual({
    name: { type: "string", plain: true, description: undefined },
    kind: ref("IssuerKind"),
    group: { type: "string", optional: true, plain: true, description: undefined },
  });
  const enumOf = (type: string): [string | undefined, unknown][] | undefined =>
    types[type].enum?.map(({ name, value }) => [name, value]);
  expect(enumOf("EnforcementMode")).toEqual([
    ["Mutate", "mutate"],
    ["Validate", "validate"],
    ["MutateAndValidate", "mutate-and-validate"],
  ]);
  expect(enumOf("EnforcementBackend")).toEqual([
    ["Webhook", "webhook"],
    ["AdmissionPolicy", "admission-policy"],
  ]);
  expect(enumOf("FailurePolicy")).toEqual([
    ["Fail", "Fail"],
    ["Ignore", "Ignore"],
  ]);
  expect(enumOf("MutatingPolicyApiVersion")).toEqual([
    ["V1", "v1"],
    ["V1beta1", "v1beta1"],
    ["V1alpha1", "v1alpha1"],
  ]);
  expect(enumOf("LabelSelectorOperator")).toEqual([
    ["In", "In"],
    ["NotIn", "NotIn"],
    ["Exists", "Exists"],
    ["DoesNotExist", "DoesNotExist"],
  ]);
  expect(enumOf("IssuerKind")).toEqual([
    ["Issuer", "Issuer"],
    ["ClusterIssuer", "ClusterIssuer"],
  ]);
  // The defaults are documented where other languages read them.
  expect(types.EnforcementArgs.properties!.mutateFailurePolicy.description).toMatch(
    /Defaults to\s+`Ignore`/,
  );
  expect(types.EnforcementArgs.properties!.validateFailurePolicy.description).toMatch(
    /Defaults to `Fail`.*`Ignore` is a hole, and needs\s+`acknowledgeValidationFailOpen: true`/s,
  );
  expect(types.EnforcementArgs.properties!.backend.description).toMatch(/Defaults to `webhook`/);
  expect(types.CertManagerArgs.properties!.install.description).toMatch(/Defaults to\s+`false`/);
  for (const type of [
    "EnforcementArgs",
    "LabelSelectorArgs",
    "LabelSelectorRequirementArgs",
    "CertManagerArgs",
    "IssuerRefArgs",
  ]) {
    for (const [key, value] of Object.entries(types[type].properties!)) {
      expect([type, key, typeof value.description]).toEqual([type, key, "string"]);
    }
  }
});

test("the other enums are enums", () => {
  expect(result.typeDefinitions.ContainerdDistribution.enum?.map((member) => member.value)).toEqual(
    ["containerd", "k3s", "rke2", "microk8s", "k0s"],
  );
  expect(result.typeDefinitions.RestartStrategy.enum?.map((member) => member.value)).toEqual([
    "systemd",
    "kill",
    "none",
  ]);
  // The Analyzer lists a union's members in TypeScript's literal-type order, where "none" (first
  // seen in RestartStrategy) comes before this object's other values.
  expect(result.typeDefinitions.MetricsMode.enum?.map((member) => member.value)).toEqual([
    "none",
    "annotations",
    "pod-monitor",
  ]);
});

test("outputs", () => {
  const outputs = result.components.VNodeRuntime.outputs;
  expect(
    Object.fromEntries(
      Object.entries(outputs).map(([key, value]) => [key, { ...value, description: undefined }]),
    ),
  ).toEqual({
    namespace: { type: "string", description: undefined },
    runtimeClassNames: {
      type: "object",
      additionalProperties: { type: "string" },
      description: undefined,
    },
    daemonSetNames: { type: "array", items: { type: "string" }, description: undefined },
    isolationModes: { type: "array", items: { type: "string" }, description: undefined },
    vnodePerPod: { type: "boolean", optional: true, description: undefined },
    agentImageRef: { type: "string", description: undefined },
  });
});

test("every input and output is documented", () => {
  const { inputs, outputs } = result.components.VNodeRuntime;
  for (const [key, value] of [...Object.entries(inputs), ...Object.entries(outputs)]) {
    expect([key, typeof value.description]).toEqual([key, "string"]);
  }
});

describe("through the component provider, as another language would", () => {
  const recorder = new Recorder();
  // One provider: it analyzes the package once and caches the schema.
  const provider = new ComponentProvider({
    components: [VNodeRuntime],
    dirname: DIR,
    name: "vnode",
  });
  beforeAll(() => recorder.install());

  test("the package schema names the resource vnode:index:VNodeRuntime", async () => {
    const schema = JSON.parse(await provider.getSchema());
    expect(schema.name).toBe("vnode");
    expect(Object.keys(schema.resources)).toEqual(["vnode:index:VNodeRuntime"]);
    expect(schema.resources["vnode:index:VNodeRuntime"].isComponent).toBe(true);
    expect(schema.resources["vnode:index:VNodeRuntime"].requiredInputs).toEqual(["agentImage"]);
  });

  test("plain inputs (enum values as strings) construct the component", async () => {
    const constructed = await provider.construct(
      "py",
      "vnode:index:VNodeRuntime",
      { agentImage: { ref: "img:1" }, isolationMode: "per-pod" },
      {},
    );
    expect(Object.keys(constructed.state ?? {}).sort()).toEqual([
      "agentImageRef",
      "daemonSetNames",
      "isolationModes",
      "namespace",
      "runtimeClassNames",
      "vnodePerPod",
    ]);
    await settle(recorder, { urn: constructed.urn as pulumi.Output<string> });
    const env = (
      recorder.one("py", "kubernetes:apps/v1:DaemonSet").inputs as {
        spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
      }
    ).spec.template.spec.containers[0].env;
    expect(env.find((e) => e.name === "VNODE_PER_POD")).toEqual({
      name: "VNODE_PER_POD",
      value: "true",
    });
  });

  test("a build from plain inputs pushes with the password as a secret", async () => {
    const constructed = await provider.construct(
      "pybuild",
      "vnode:index:VNodeRuntime",
      {
        agentImage: {
          build: {
            registry: { address: "ghcr.io", username: "bot", password: "py-token-0a7e" },
            repository: "acme/vnode-agent",
            tag: "0.1.0",
            platforms: ["linux/arm64"],
          },
        },
        vnodeImage: "registry.example.com/mirror/vnode-runtime:0.0.4",
      },
      {},
    );
    await settle(recorder, { urn: constructed.urn as pulumi.Output<string> });
    const image = recorder.one("pybuild", "docker-build:index:Image").inputs;
    expect([image.tags, image.platforms]).toEqual([
      ["ghcr.io/acme/vnode-agent:0.1.0"],
      ["linux/arm64"],
    ]);
    expect(image.registries).toEqual({
      [SECRET_SIG]: SECRET_VALUE,
      value: [{ address: "ghcr.io", username: "bot", password: "py-token-0a7e" }],
    });
    const daemonSet = recorder.one("pybuild", "kubernetes:apps/v1:DaemonSet").inputs as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(daemonSet.spec.template.spec.containers[0].image).toBe(
      `ghcr.io/acme/vnode-agent:0.1.0@${mockImageDigest(image)}`,
    );
  });

  test("enforcement from plain inputs (enum values as strings) builds the webhook", async () => {
    const constructed = await provider.construct(
      "pyenf",
      "vnode:index:VNodeRuntime",
      {
        agentImage: { ref: "img:1" },
        enforcement: {
          namespaceSelector: { matchExpressions: [{ key: "tenant", operator: "Exists" }] },
          mode: "validate",
          validateFailurePolicy: "Ignore",
          acknowledgeValidationFailOpen: true,
        },
        certManager: { issuerRef: { name: "corp", kind: "ClusterIssuer" } },
      },
      {},
    );
    await settle(recorder, { urn: constructed.urn as pulumi.Output<string> });
    const config = recorder
      .byType("pyenf", "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration")
      .find((r) => r.name === "pyenf-validating-webhook")!.inputs as {
      webhooks: { failurePolicy: string; namespaceSelector: unknown }[];
    };
    // One validating entry per case of the isolation label (mode enforcement), each with the
    // failure policy from the plain input and the tenant selector narrowed by the exclusions.
    expect(config.webhooks.length).toBeGreaterThan(1);
    for (const w of config.webhooks as {
      failurePolicy: string;
      namespaceSelector: { matchExpressions: unknown[] };
    }[]) {
      expect([w.failurePolicy, w.namespaceSelector.matchExpressions.slice(0, 2)]).toEqual([
        "Ignore",
        [
          { key: "tenant", operator: "Exists" },
          {
            key: "kubernetes.io/metadata.name",
            operator: "NotIn",
            values: ["kube-node-lease", "kube-system", "vnode-runtime"],
          },
        ],
      ]);
    }
    const certificate = recorder.one("pyenf", "kubernetes:cert-manager.io/v1:Certificate")
      .inputs as { spec: { issuerRef: unknown } };
    expect(certificate.spec.issuerRef).toEqual({
      group: "cert-manager.io",
      kind: "ClusterIssuer",
      name: "corp",
    });
  });

  test("a bad enum value from another language fails with the sentence", async () => {
    await expect(
      provider.construct(
        "bad",
        "vnode:index:VNodeRuntime",
        { agentImage: { ref: "img:1" }, isolationMode: "per_pod" },
        {},
      ),
    ).rejects.toThrow('isolationMode must be one of per-namespace, per-pod; got "per_pod".');
  });
});
