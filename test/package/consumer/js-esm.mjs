// ESM JavaScript consumer: named imports of the CommonJS package (Node's cjs-module-lexer).
import * as k8s from "@pulumi/kubernetes";
import { IsolationMode, VNodeRuntime } from "vnode";
import { report } from "./mocks.cjs";

const cluster = new k8s.Provider("cluster", { context: "platform" });
const runtime = new VNodeRuntime(
  "vnode",
  { agentImage: { ref: "ghcr.io/acme/vnode-agent:0.1.0" }, isolationMode: IsolationMode.PerPod },
  { provider: cluster },
);
await report({ runtimeClassNames: runtime.runtimeClassNames, namespace: runtime.namespace });
