/**
 * The stack program (index.ts) under Pulumi's mock runtime: the engine is the mock, so nothing is
 * created; what the program registers is recorded.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { RenderError } from "./errors";
import { Manifest, toManifest } from "./manifests";

/**
 * The digest docker-build reports once it pushed the agent image (`agentImage.build`). Offline
 * nothing is built or pushed, so the DaemonSets get this marked placeholder; `pulumi up` pins the
 * real digest.
 */
export const OFFLINE_IMAGE_DIGEST = `sha256:${"0".repeat(64)}`;

/** Runs index.ts under mocks with the stack's config; returns the Kubernetes objects it registered. */
export async function runProgram(
  root: string,
  project: string,
  stack: string,
  config: Record<string, string>,
  secretKeys: string[],
): Promise<Manifest[]> {
  const registered: { type: string; inputs: Record<string, unknown> }[] = [];
  pulumi.runtime.setAllConfig(config, secretKeys);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, inputs: args.inputs });
        return { id: `${args.name}-id`, state: { ...args.inputs, ...offlineOutputs(args) } };
      },
      call: (args) => args.inputs,
    },
    project,
    stack,
    false,
  );
  let program: Record<string, unknown>;
  try {
    program = (await import(path.join(root, "index.ts"))) as Record<string, unknown>;
  } catch (error) {
    throw new RenderError((error as Error).message);
  }
  // The exports resolve once the component's children registered; then drain the RPC queue.
  for (const value of Object.values(program)) {
    if (pulumi.Output.isInstance(value)) {
      await new Promise((resolve) => value.apply(resolve));
    }
  }
  await pulumi.runtime.disconnect();
  return registered
    .filter((resource) => resource.type.startsWith("kubernetes:"))
    .map((resource) => toManifest(resource.inputs));
}

/** Outputs a provider would compute, where the program needs them: docker-build's pushed digest. */
function offlineOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  if (args.type !== "docker-build:index:Image") {
    return {};
  }
  const tags = (args.inputs.tags as string[] | undefined) ?? [];
  return {
    digest: OFFLINE_IMAGE_DIGEST,
    ref: tags.length > 0 ? `${tags[0]}@${OFFLINE_IMAGE_DIGEST}` : "",
    contextHash: "",
  };
}
