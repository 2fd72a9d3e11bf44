/**
 * A platform stack composing vNode the way a platform team does: the cluster comes from another
 * stack, the stack builds its own Kubernetes provider from it, installs the vNode runtime with two
 * node pools, onboards a tenant namespace that admission keeps on vNode, and runs the tenant's
 * workload in the RuntimeClass the runtime outputs.
 *
 * Run it from its own directory: install `vnode` (until it is on a registry, the two tarballs, see
 * the repository README's "Use it from another Pulumi project"), then
 * `pulumi config set clusterStack acme/cluster/prod`, `pulumi config set agentImage <ref>` and
 * `pulumi up`. In this repository `npm run lint` type-checks it against the component's sources.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import {
  EnforcementBackend,
  EnforcementMode,
  IsolationMode,
  LabelSelectorOperator,
  VNodeRuntime,
} from "vnode";

const config = new pulumi.Config();
const cluster = new pulumi.StackReference(config.require("clusterStack"));
const provider = new k8s.Provider("platform", {
  kubeconfig: cluster.requireOutput("kubeconfig").apply((value) => String(value)),
});

/** The label that makes a namespace a tenant's: vNode is enforced on its pods. */
const TENANT_LABEL = "platform.acme.io/tenant";

const vnode = new VNodeRuntime(
  "vnode",
  {
    agentImage: { ref: config.require("agentImage") },
    pools: [
      {
        name: "builds",
        isolationMode: IsolationMode.PerPod,
        nodeSelector: { "platform.acme.io/pool": "builds" },
      },
      {
        name: "tenants",
        isolationMode: IsolationMode.PerNamespace,
        nodeSelector: { "platform.acme.io/pool": "tenants" },
      },
    ],
    // CEL admission policies: no webhook server and no cert-manager to run.
    enforcement: {
      namespaceSelector: {
        matchExpressions: [{ key: TENANT_LABEL, operator: LabelSelectorOperator.Exists }],
      },
      mode: EnforcementMode.MutateAndValidate,
      backend: EnforcementBackend.AdmissionPolicy,
    },
  },
  { providers: [provider] },
);

const tenant = new k8s.core.v1.Namespace(
  "tenant-acme",
  { metadata: { name: "acme", labels: { [TENANT_LABEL]: "acme" } } },
  { provider },
);

// The tenant's pods name their class from the runtime's output; `dependsOn` the component waits
// for all its children, so the RuntimeClass and the admission policies exist first.
const labels = { app: "web" };
const web = new k8s.apps.v1.Deployment(
  "acme-web",
  {
    metadata: { namespace: tenant.metadata.name },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          runtimeClassName: vnode.runtimeClassNames.apply(
            (classes) => classes[IsolationMode.PerNamespace],
          ),
          containers: [{ name: "web", image: "nginxinc/nginx-unprivileged:1.27" }],
        },
      },
    },
  },
  { provider, dependsOn: [vnode] },
);

export const runtimeClassNames = vnode.runtimeClassNames;
export const tenantNamespace = tenant.metadata.name;
export const tenantDeployment = web.metadata.name;
