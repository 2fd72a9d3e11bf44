// TypeScript consumer compiled by tsc to CommonJS (the package has no "type": "module").
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { IsolationMode, VNodeRuntime, VNodeRuntimeArgs } from "vnode";
import { report } from "./mocks.cjs";

const args: VNodeRuntimeArgs = {
  agentImage: { ref: "ghcr.io/acme/vnode-agent:0.1.0" },
  isolationMode: IsolationMode.PerPod,
};
const cluster = new k8s.Provider("cluster", { context: "platform" });
const runtime = new VNodeRuntime("vnode", args, { providers: [cluster] });
// The outputs keep their types through the .d.ts files.
const runtimeClassNames: pulumi.Output<{ [mode: string]: string }> = runtime.runtimeClassNames;

export function typeErrors(): void {
  // @ts-expect-error agentImage is required: the types are the package's, not `any`.
  new VNodeRuntime("bad", {});
}

report({ runtimeClassNames, namespace: runtime.namespace });
