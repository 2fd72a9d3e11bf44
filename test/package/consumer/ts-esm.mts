// TypeScript consumer compiled by tsc to ESM (.mjs), resolving the package through "exports".
import type * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { IsolationMode, VNodeRuntime, type VNodeRuntimeArgs } from "vnode";
import { report } from "./mocks.cjs";

const args: VNodeRuntimeArgs = {
  agentImage: { ref: "ghcr.io/acme/vnode-agent:0.1.0" },
  isolationMode: IsolationMode.PerPod,
};
const cluster = new k8s.Provider("cluster", { context: "platform" });
const runtime = new VNodeRuntime("vnode", args, { provider: cluster });
const runtimeClassNames: pulumi.Output<{ [mode: string]: string }> = runtime.runtimeClassNames;

export function typeErrors(): void {
  // @ts-expect-error agentImage is required: the types are the package's, not `any`.
  new VNodeRuntime("bad", {});
}

await report({ runtimeClassNames, namespace: runtime.namespace });
