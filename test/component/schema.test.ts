/**
 * The schema other languages get: Pulumi's own Analyzer infers it from the TypeScript args, as
 * `pulumi package add` does, and the component provider constructs the component from plain inputs.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import { Analyzer, AnalyzeResult } from "@pulumi/pulumi/provider/experimental/analyzer";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import { VNodeRuntime } from "../../components";
import { Recorder, settle } from "./harness";

const DIR = path.join(__dirname, "..", "..", "components");
let result: AnalyzeResult;

beforeAll(() => {
  const packageJSON = JSON.parse(fs.readFileSync(path.join(DIR, "package.json"), "utf8"));
  result = new Analyzer(DIR, "vnode", packageJSON, new Set(["VNodeRuntime"])).analyze();
});

test("VNodeRuntime has exactly these inputs; only agentImage is required", () => {
  const inputs = result.components.VNodeRuntime.inputs;
  expect(Object.keys(inputs)).toEqual([
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
  const withoutDescriptions = (properties: Record<string, object>): Record<string, object> =>
    Object.fromEntries(
      Object.entries(properties).map(([key, value]) => [key, { ...value, description: undefined }]),
    );
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
    nodeSelector: {
      type: "object",
      additionalProperties: { type: "string", plain: true },
      optional: true,
      plain: true,
      description: undefined,
    },
    tolerations: {
      type: "array",
      items: { $ref: "#/types/vnode:index:TolerationArgs", plain: true },
      optional: true,
      plain: true,
      description: undefined,
    },
  });
});

test("the agent image ref is an input (may come from another resource), the other enums are enums", () => {
  expect(result.typeDefinitions.AgentImageArgs.properties!.ref).toEqual({
    type: "string",
    description: expect.stringMatching(/^Image reference of the node agent/),
  });
  expect(result.typeDefinitions.ContainerdDistribution.enum?.map((member) => member.value)).toEqual(
    ["containerd", "k3s", "rke2", "microk8s", "k0s"],
  );
  expect(result.typeDefinitions.RestartStrategy.enum?.map((member) => member.value)).toEqual([
    "systemd",
    "kill",
    "none",
  ]);
  expect(result.typeDefinitions.MetricsMode.enum?.map((member) => member.value)).toEqual([
    "annotations",
    "pod-monitor",
    "none",
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
