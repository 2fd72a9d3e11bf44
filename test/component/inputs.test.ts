/**
 * Arguments that come from other resources (`Input<T>`), under mocks: an Output namespace, labels,
 * node selectors, tolerations, resources, grace period and image from another resource build the
 * same Kubernetes objects as the same values given plainly; an unknown during preview passes; a
 * bad resolved value fails the program with the same sentence as a bad plain one, and registers
 * no child.
 *
 * Real behaviour relied on (the mocks neither diff nor create):
 * - During a preview, Pulumi runs no `apply` on an unknown Output (sdk/nodejs output.ts
 *   `applyHelperAsync`), so a check inside `apply` cannot fail on a value nobody knows yet; the
 *   update (`pulumi up`) resolves it and runs the check before the children register.
 * - A failed Output in a resource's inputs or `dependsOn` fails its registration, and the SDK
 *   re-raises it as an unhandled rejection (runtime/resource.ts `runAsyncResourceOp`), which the
 *   Node language host reports as the program's error: `pulumi up` fails with that message.
 */
import { execFile } from "child_process";
import * as path from "path";
import { promisify } from "util";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { VNodeRuntime, VNodeRuntimeArgs } from "../../components/index";
import { UNRESOLVED_NAMESPACE } from "../../components/defaults";
import { Recorder, Registered, settle } from "./harness";

const SOURCES = ["facts", "team-ns"];

/** What another stack or resource knows: node labels, taints, sizing, the image to run. */
const FACTS = {
  image: "ghcr.io/acme/vnode-agent:0.1.0",
  team: "builds",
  owner: "platform@example.com",
  enabled: "true",
  taint: "sandbox.example.com/dedicated",
  cpu: "50m",
  priority: "platform-critical",
  builds: "builds",
  tenants: "tenants",
};

/** The args, with each value plain or taken from `facts` (a ConfigMap's data) and `ns`. */
function args(
  from: (key: keyof typeof FACTS) => pulumi.Input<string>,
  namespace: pulumi.Input<string>,
  grace: pulumi.Input<number>,
): VNodeRuntimeArgs {
  return {
    agentImage: { ref: from("image") },
    namespace,
    createNamespace: false,
    labels: { team: from("team") },
    annotations: pulumi.output(from("owner")).apply((owner) => ({ "example.com/owner": owner })),
    nodeSelector: pulumi.output(from("enabled")).apply((v) => ({ "example.com/vnode": v })),
    tolerations: [
      pulumi.output(from("taint")).apply((key) => ({ key, operator: "Exists" })),
      { operator: "Exists", effect: "NoExecute" },
    ],
    affinity: pulumi.output(from("enabled")).apply((v) => ({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: "example.com/vnode", operator: "In", values: [v] }] },
          ],
        },
      },
    })),
    resources: { requests: { cpu: from("cpu") } },
    priorityClassName: from("priority"),
    terminationGracePeriodSeconds: grace,
    runtimeClassTolerations: [{ key: from("taint"), operator: "Exists", effect: "NoSchedule" }],
    pools: [
      {
        name: "builds",
        isolationMode: "per-pod",
        nodeSelector: pulumi.output(from("builds")).apply((pool) => ({ pool })),
        tolerations: pulumi
          .output(from("taint"))
          .apply((key) => [{ key, operator: "Equal", value: "builds", effect: "NoSchedule" }]),
      },
      { name: "tenants", nodeSelector: { pool: from("tenants") } },
    ],
    enforcement: {
      namespaceSelector: { matchLabels: { tenant: "true" } },
      mode: "mutate-and-validate",
    },
  };
}

async function run(
  build: () => VNodeRuntimeArgs,
  preview = false,
): Promise<{ recorder: Recorder; runtime: VNodeRuntime }> {
  const recorder = new Recorder();
  await recorder.install("vnode-test", "test", preview);
  const runtime = new VNodeRuntime("vnode", build());
  await settle(recorder, runtime);
  return { recorder, runtime };
}

function byName(resources: Registered[]): Map<string, Registered> {
  return new Map(
    resources.filter((r) => !SOURCES.includes(r.name)).map((r) => [`${r.type} ${r.name}`, r]),
  );
}

let plain: Map<string, Registered>;
let fromResources: Map<string, Registered>;

beforeAll(async () => {
  plain = byName(
    (await run(() => args((key) => FACTS[key], "team-vnode", 300))).recorder.resources,
  );
  fromResources = byName(
    (
      await run(() => {
        const facts = new k8s.core.v1.ConfigMap("facts", {
          metadata: { name: "facts", namespace: "platform" },
          data: FACTS,
        });
        const ns = new k8s.core.v1.Namespace("team-ns", { metadata: { name: "team-vnode" } });
        return args(
          (key) => facts.data.apply((data) => data[key]),
          ns.metadata.name,
          pulumi.output(300),
        );
      })
    ).recorder.resources,
  );
});

test("Outputs from other resources build exactly the objects their plain values build", () => {
  expect([...fromResources.keys()].sort()).toEqual([...plain.keys()].sort());
  // Every object of the component, the enforcement webhook's included.
  expect(fromResources.size).toBeGreaterThan(20);
  for (const [key, resource] of fromResources) {
    expect([key, resource.inputs]).toEqual([key, plain.get(key)?.inputs]);
  }
  // The placeholder of an unresolved namespace never reaches an object.
  expect(JSON.stringify([...fromResources.values()].map((r) => r.inputs))).not.toContain(
    UNRESOLVED_NAMESPACE,
  );
});

test("the merged values are exact: the component's own labels win, selectors and taints merge", () => {
  const daemonSet = fromResources.get("kubernetes:apps/v1:DaemonSet vnode-agent-builds")!
    .inputs as {
    metadata: {
      namespace: string;
      labels: Record<string, string>;
      annotations: Record<string, string>;
    };
    spec: {
      template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> };
    };
  };
  expect(daemonSet.metadata.namespace).toBe("team-vnode");
  expect(daemonSet.metadata.labels).toEqual({
    team: "builds",
    "app.kubernetes.io/name": "vnode-agent",
    "app.kubernetes.io/instance": "vnode",
    "app.kubernetes.io/part-of": "vnode",
    "app.kubernetes.io/managed-by": "pulumi",
    "vnode.loft.sh/pool": "builds",
  });
  expect(daemonSet.metadata.annotations).toEqual({
    "example.com/owner": "platform@example.com",
    "pulumi.com/skipAwait": "true",
  });
  const pod = daemonSet.spec.template.spec;
  expect([
    pod.nodeSelector,
    pod.tolerations,
    pod.priorityClassName,
    pod.terminationGracePeriodSeconds,
    (pod.containers as { resources: unknown; image: string }[])[0].resources,
    (pod.containers as { resources: unknown; image: string }[])[0].image,
  ]).toEqual([
    { "kubernetes.io/os": "linux", "example.com/vnode": "true", pool: "builds" },
    [
      { key: "sandbox.example.com/dedicated", operator: "Exists" },
      { operator: "Exists", effect: "NoExecute" },
    ],
    "platform-critical",
    300,
    { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
    "ghcr.io/acme/vnode-agent:0.1.0",
  ]);
  const perPod = fromResources.get(
    "kubernetes:node.k8s.io/v1:RuntimeClass vnode-runtime-class-vnode-per-pod",
  )!.inputs as { scheduling: { tolerations: unknown } };
  expect(perPod.scheduling.tolerations).toEqual([
    { key: "sandbox.example.com/dedicated", operator: "Exists", effect: "NoSchedule" },
    {
      key: "sandbox.example.com/dedicated",
      operator: "Equal",
      value: "builds",
      effect: "NoSchedule",
    },
  ]);
  // The namespace's value inside other objects: the agent's user name in the node policy's CEL,
  // the webhook's DNS names (certificate SANs), and the namespaces enforcement leaves alone.
  const policy = JSON.stringify(
    fromResources.get(
      "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy vnode-agent-node-policy",
    )!.inputs,
  );
  expect(policy).toContain("system:serviceaccount:team-vnode:vnode-agent");
  const certificate = fromResources.get(
    "kubernetes:cert-manager.io/v1:Certificate vnode-webhook-certificate",
  )!.inputs as { spec: { dnsNames: string[] } };
  expect(certificate.spec.dnsNames).toEqual([
    "vnode-webhook",
    "vnode-webhook.team-vnode",
    "vnode-webhook.team-vnode.svc",
  ]);
  const validating = fromResources.get(
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration vnode-validating-webhook",
  )!.inputs as { webhooks: { namespaceSelector: { matchExpressions: unknown[] } }[] };
  expect(validating.webhooks.map((w) => w.namespaceSelector.matchExpressions[0])).toEqual(
    validating.webhooks.map(() => ({
      key: "kubernetes.io/metadata.name",
      operator: "NotIn",
      values: ["kube-node-lease", "kube-system", "team-vnode"],
    })),
  );
  expect(validating.webhooks.length).toBeGreaterThan(0);
});

test("children depend on the resources their inputs come from", () => {
  const daemonSet = fromResources.get("kubernetes:apps/v1:DaemonSet vnode-agent-builds")!;
  expect(daemonSet.dependencies).toEqual(expect.arrayContaining(SOURCES));
  const clusterRole = fromResources.get(
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole vnode-cluster-role",
  )!;
  // It reads none of them, but waits for every deferred check (nothing registers before they pass).
  expect(clusterRole.dependencies).toEqual(expect.arrayContaining(SOURCES));
});

test("during a preview, unknown inputs pass and every object is still planned", async () => {
  const { recorder } = await run(() => {
    // Under preview mocks an output the mock does not return is unknown, as a real provider's
    // computed outputs are before the resource exists.
    const facts = new k8s.core.v1.ConfigMap("facts", {});
    const unknown = facts.data.apply((data) => data["anything"]);
    return {
      agentImage: { ref: "ghcr.io/acme/vnode-agent:0.1.0" },
      namespace: facts.metadata.name,
      createNamespace: false,
      labels: facts.data,
      nodeSelector: facts.data,
      tolerations: [unknown.apply((key) => ({ key, operator: "Exists" }))],
      terminationGracePeriodSeconds: unknown.apply((v) => Number(v)),
      pools: [
        { name: "a", nodeSelector: { pool: unknown } },
        { name: "b", nodeSelector: facts.data },
      ],
      enforcement: { namespaceSelector: { matchLabels: { tenant: "true" } }, mode: "validate" },
    };
  }, true);
  expect(
    recorder
      .of("vnode")
      .map((r) => r.type)
      .filter((type) => type === "kubernetes:apps/v1:DaemonSet"),
  ).toEqual(["kubernetes:apps/v1:DaemonSet", "kubernetes:apps/v1:DaemonSet"]);
  const daemonSet = recorder.byType("vnode", "kubernetes:apps/v1:DaemonSet")[0].inputs as {
    metadata: { namespace: unknown };
  };
  // How the mock monitor shows an unknown value: the namespace is not known, and nothing threw.
  expect(daemonSet.metadata.namespace).toEqual({ __pulumiUnknown: true });
});

const LABEL_RULE =
  'a DNS-1123 label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)';

test.concurrent.each([
  ["namespace", `namespace must be ${LABEL_RULE}; got "Team_NS".`],
  ["labels", 'labels["app.kubernetes.io/instance"] is set by the component; remove it.'],
  [
    "pools",
    'pools[1].nodeSelector {"pool":"same"} can select the same nodes as pools[0].nodeSelector {"pool":"same"}; give both pools a common label key with different values (e.g. pool=a and pool=b), so that no node runs two agents.',
  ],
  [
    "terminationGracePeriodSeconds",
    "terminationGracePeriodSeconds must be an integer of at least 1; got 0.",
  ],
  ["tolerations", 'tolerations[0].operator must be one of Exists, Equal; got "Maybe".'],
  [
    "agentImageRef",
    'agentImage.ref must be an image reference without whitespace; got "ghcr.io/acme/agent 1".',
  ],
])(
  "a bad resolved %s fails the program with the sentence and registers no child that uses it",
  async (name, message) => {
    const { stdout } = await promisify(execFile)(
      path.join(__dirname, "..", "..", "node_modules", ".bin", "tsx"),
      [path.join(__dirname, "..", "support", "resolvedInputProgram.ts"), name],
      { timeout: 120_000 },
    );
    const { registered, rejections } = JSON.parse(stdout) as {
      registered: string[];
      rejections: string[];
    };
    if (name === "agentImageRef") {
      // Children do not wait for the image (it often comes from a build); what runs it fails.
      expect(registered.filter((r) => r.includes("DaemonSet"))).toEqual([]);
      expect(registered).toContain("vnode:index:VNodeRuntime bad");
    } else {
      expect(registered).toEqual(["vnode:index:VNodeRuntime bad"]);
    }
    // The SDK prefixes the property it was serializing; the sentence is the component's.
    expect([
      ...new Set(rejections.map((r) => r.replace(/^(error serializing property "[^"]*": )+/, ""))),
    ]).toEqual([message]);
  },
  150_000,
);
