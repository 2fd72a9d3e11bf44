/** index.ts, the stack program, run for the ci stack's config under mocks. */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { stackConfig } from "../../scripts/render";
import { Recorder, resolve } from "./harness";

const recorder = new Recorder();
let program: Record<string, pulumi.Output<unknown>>;

beforeAll(async () => {
  const { config, secretKeys } = stackConfig(path.join(__dirname, "..", ".."), "ci");
  pulumi.runtime.setAllConfig(config, secretKeys);
  await recorder.install("vnode-runtime", "ci");
  program = (await import("../../index")) as unknown as Record<string, pulumi.Output<unknown>>;
  for (const value of Object.values(program)) {
    await resolve(value);
  }
});

test("exports the component's outputs", async () => {
  expect(Object.keys(program).sort()).toEqual([
    "agentImageRef",
    "daemonSetNames",
    "isolationModes",
    "namespace",
    "runtimeClassNames",
    "vnodePerPod",
  ]);
  expect(await resolve(program.daemonSetNames)).toEqual([
    "vnode-agent-ci-builds",
    "vnode-agent-ci-services",
  ]);
  expect(await resolve(program.runtimeClassNames)).toEqual({
    "per-namespace": "vnode",
    "per-pod": "vnode-per-pod",
  });
  expect(await resolve(program.isolationModes)).toEqual(["per-namespace", "per-pod"]);
  expect(await resolve(program.vnodePerPod)).toBeUndefined();
  expect(await resolve(program.agentImageRef)).toBe(
    "registry.ci.example.com/platform/vnode-agent:0.1.0",
  );
});

test("the stack's settings reach the objects", () => {
  const [builds] = recorder
    .byType("vnode", "kubernetes:apps/v1:DaemonSet")
    .filter((r) => r.name === "vnode-agent-ci-builds");
  const spec = builds.inputs.spec as {
    template: {
      spec: {
        nodeSelector: unknown;
        containers: { args: string[]; env: unknown[]; resources: unknown }[];
      };
    };
  };
  expect(spec.template.spec.nodeSelector).toEqual({
    "kubernetes.io/os": "linux",
    "node.example.com/pool": "ci-builds",
  });
  expect(spec.template.spec.containers[0].args.slice(3, 5)).toEqual([
    "--containerd-distribution",
    "k3s",
  ]);
  expect(spec.template.spec.containers[0].env.slice(3)).toEqual([
    { name: "VNODE_PER_POD", value: "true" },
    { name: "VNODE_LOG_LEVEL", value: "info" },
  ]);
  expect(spec.template.spec.containers[0].resources).toEqual({
    requests: { cpu: "50m", memory: "96Mi" },
    limits: { memory: "256Mi" },
  });
});

test("the ci stack enforces vNode on its tenant namespaces through the webhook", () => {
  expect(
    recorder
      .of("vnode")
      .filter((r) => /webhook|Issuer|Certificate/i.test(`${r.type} ${r.name}`))
      .map((r) => r.name)
      .sort(),
  ).toEqual([
    "vnode-mutating-webhook",
    "vnode-namespace-guard-webhook",
    "vnode-namespace-pod-security-webhook",
    "vnode-validating-webhook",
    "vnode-webhook",
    "vnode-webhook-ca-certificate",
    "vnode-webhook-ca-issuer",
    "vnode-webhook-certificate",
    "vnode-webhook-pdb",
    "vnode-webhook-selfsigned-issuer",
    "vnode-webhook-service",
    "vnode-webhook-service-account",
  ]);
  const deployment = recorder.one("vnode", "kubernetes:apps/v1:Deployment").inputs as {
    spec: { template: { spec: { containers: { args: string[] }[] } } };
  };
  // Both pools' classes; the default mode is the stack's isolationMode, per-pod.
  expect(deployment.spec.template.spec.containers[0].args.slice(7)).toEqual([
    "--class",
    "per-namespace=vnode",
    "--class",
    "per-pod=vnode-per-pod",
    "--default-mode",
    "per-pod",
    "--exclude-namespace",
    "vnode-runtime",
    // Pulumi.ci.yaml's enforcement.namespaceLabelGuard and podSecurityLevel, read from stack config.
    "--tenant-selector",
    '{"matchLabels":{"ci.example.com/tenant":"true"}}',
    "--platform-group",
    "ci-platform",
    "--pod-security-level",
    "baseline",
  ]);
  const mutating = recorder
    .byType("vnode", "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration")
    .find((r) => r.name === "vnode-mutating-webhook")!.inputs as {
    webhooks: { name: string; namespaceSelector: { matchLabels: unknown } }[];
  };
  expect(mutating.webhooks.map((w) => [w.name, w.namespaceSelector.matchLabels])).toEqual([
    ["per-namespace.mutate.vnode.loft.sh", { "ci.example.com/tenant": "true" }],
    ["per-pod.mutate.vnode.loft.sh", { "ci.example.com/tenant": "true" }],
  ]);
});
