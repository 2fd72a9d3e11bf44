/**
 * A Pulumi program, run under mocks in its own process by test/component/inputs.test.ts: builds a
 * VNodeRuntime whose args hold an Output that resolves to a bad value (the case named by argv[2])
 * and prints, as JSON, the resources registered and the unhandled rejections. Its own process,
 * because that is how the failure reaches a real `pulumi up`: the SDK re-raises a failed
 * registration as an unhandled rejection (runtime/resource.ts `runAsyncResourceOp`), and the
 * Node language host fails the program with it; jest would fail the test on it instead.
 */
import * as pulumi from "@pulumi/pulumi";
import type { VNodeRuntimeArgs } from "../../components/index";

const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };

export const CASES: Record<string, () => VNodeRuntimeArgs> = {
  namespace: () => ({
    agentImage: IMAGE,
    namespace: pulumi.output("Team_NS"),
    createNamespace: false,
  }),
  labels: () => ({
    agentImage: IMAGE,
    labels: pulumi.output({ "app.kubernetes.io/instance": "other" }),
  }),
  pools: () => ({
    agentImage: IMAGE,
    pools: [
      { name: "a", nodeSelector: { pool: pulumi.output("same") } },
      { name: "b", nodeSelector: pulumi.output({ pool: "same" }) },
    ],
  }),
  terminationGracePeriodSeconds: () => ({
    agentImage: IMAGE,
    terminationGracePeriodSeconds: pulumi.output(0),
  }),
  agentImageRef: () => ({ agentImage: { ref: pulumi.output("ghcr.io/acme/agent 1") } }),
  tolerations: () => ({
    agentImage: IMAGE,
    tolerations: [pulumi.output({ key: "sandbox", operator: "Maybe" })],
  }),
};

async function main(): Promise<void> {
  const registered: string[] = [];
  const rejections: string[] = [];
  process.on("unhandledRejection", (reason) => {
    rejections.push(reason instanceof Error ? reason.message : String(reason));
  });
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push(`${args.type} ${args.name}`);
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    "vnode-test",
    "test",
    false,
  );
  // After the mocks, as the component's module reads the runtime settings when loaded.
  const { VNodeRuntime } = await import("../../components/index");
  new VNodeRuntime("bad", CASES[process.argv[2]]());
  await new Promise((resolve) => setTimeout(resolve, 1500));
  // Every consumer of the failed Output re-raises the same error.
  process.stdout.write(JSON.stringify({ registered, rejections: [...new Set(rejections)] }));
  process.exit(0);
}

if (require.main === module) {
  void main();
}
