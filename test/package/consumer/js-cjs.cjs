// CommonJS JavaScript consumer.
const k8s = require("@pulumi/kubernetes");
const { report } = require("./mocks.cjs");
const { IsolationMode, VNodeRuntime } = require("vnode");

const cluster = new k8s.Provider("cluster", { context: "platform" });
const runtime = new VNodeRuntime(
  "vnode",
  { agentImage: { ref: "ghcr.io/acme/vnode-agent:0.1.0" }, isolationMode: IsolationMode.PerPod },
  { providers: [cluster] },
);
report({ runtimeClassNames: runtime.runtimeClassNames, namespace: runtime.namespace });
