/**
 * What a real `pulumi up` does with the component across runs, under mocks: each program run is a
 * fresh mock engine, and the test compares the Pulumi names and resource options of the objects.
 *
 * Real behaviour relied on (the mocks neither diff nor replace):
 * - The Pulumi engine identifies a resource by URN (type + parent chain + Pulumi name). A
 *   different Pulumi name for the same Kubernetes object is a create of the "new" resource and a
 *   delete of the "old" one at the end of the update; the Kubernetes provider's create of an
 *   object that exists upserts it (server-side apply), and the trailing delete removes it
 *   (pulumi docs, "Resource names" and "aliases"; issue 10 §1).
 * - An alias maps an old URN in the state onto the new name, so the rename is an update.
 * - `replaceOnChanges` makes the engine replace on a change of those properties;
 *   `deleteBeforeReplace` deletes the old object first, required when the replacement has the
 *   same Kubernetes name (pulumi docs, resource options).
 * - pulumi-kubernetes >= 4.12 waits for a DaemonSet rollout (kstatus, pulumi-kubernetes PR 2953)
 *   for 10 minutes unless `pulumi.com/skipAwait: "true"` is set or `customTimeouts` say otherwise.
 */
import * as pulumi from "@pulumi/pulumi";
import { IsolationMode, VNodeRuntime, VNodeRuntimeArgs } from "../../components/index";
import { Recorder, settle } from "./harness";

const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };
const DAEMONSET = "kubernetes:apps/v1:DaemonSet";
const RUNTIME_CLASS = "kubernetes:node.k8s.io/v1:RuntimeClass";

interface Run {
  /** `<type> <namespace>/<kubernetes name>` -> Pulumi name. */
  names: Map<string, string>;
  /** Pulumi name -> the resource options the component gave, as a transformation sees them. */
  options: Map<string, pulumi.CustomResourceOptions>;
  recorder: Recorder;
}

/** One run of a program that builds `args` as component `name`, on a fresh mock engine. */
async function run(args: VNodeRuntimeArgs, name = "vnode"): Promise<Run> {
  const recorder = new Recorder();
  await recorder.install();
  const options = new Map<string, pulumi.CustomResourceOptions>();
  const capture: pulumi.ResourceTransformation = ({ name: child, opts }) => {
    options.set(child, opts);
    return undefined;
  };
  const runtime = new VNodeRuntime(name, args, { transformations: [capture] });
  await settle(recorder, runtime);
  const names = new Map<string, string>();
  for (const r of recorder.resources) {
    const meta = r.inputs.metadata as { name?: string; namespace?: string } | undefined;
    if (r.type.startsWith("kubernetes:") && meta?.name !== undefined) {
      names.set(`${r.type} ${meta.namespace ?? ""}/${meta.name}`, r.name);
    }
  }
  return { names, options, recorder };
}

/**
 * Compares two runs: every Kubernetes object in both keeps its Pulumi name, and no Pulumi name
 * of one type stands for two different objects across the runs (that would be a replacement of a
 * fixed-name object under a rename). Returns the objects only in one run, which are real
 * creations and deletions.
 */
function compare(a: Run, b: Run): { renamed: string[]; reused: string[]; only: string[] } {
  const renamed: string[] = [];
  const reused: string[] = [];
  const only: string[] = [];
  for (const [object, pulumiName] of a.names) {
    const other = b.names.get(object);
    if (other === undefined) {
      only.push(object);
    } else if (other !== pulumiName) {
      renamed.push(`${object}: ${pulumiName} -> ${other}`);
    }
  }
  for (const object of b.names.keys()) {
    if (!a.names.has(object)) {
      only.push(object);
    }
  }
  const byName = (r: Run): Map<string, string> =>
    new Map([...r.names].map(([object, name]) => [`${object.split(" ")[0]} ${name}`, object]));
  const namesA = byName(a);
  for (const [typedName, object] of byName(b)) {
    const before = namesA.get(typedName);
    if (before !== undefined && before !== object) {
      reused.push(`${typedName}: ${before} -> ${object}`);
    }
  }
  return { renamed, reused, only: only.sort() };
}

describe("Pulumi names follow the Kubernetes identity", () => {
  test("switching isolationMode keeps every object's Pulumi name", async () => {
    const perNamespace = await run({ agentImage: IMAGE });
    const perPod = await run({ agentImage: IMAGE, isolationMode: IsolationMode.PerPod });
    expect(compare(perNamespace, perPod)).toEqual({ renamed: [], reused: [], only: [] });
    expect(perPod.names.get(`${RUNTIME_CLASS} /vnode`)).toBe("vnode-runtime-class-vnode");
  });

  test("adding the first pool keeps the RuntimeClass; the new DaemonSet is a new object", async () => {
    const none = await run({ agentImage: IMAGE });
    const pools = await run({
      agentImage: IMAGE,
      pools: [{ name: "builds", isolationMode: IsolationMode.PerPod }],
    });
    expect(compare(none, pools)).toEqual({
      renamed: [],
      reused: [],
      only: [
        `${DAEMONSET} vnode-runtime/vnode-agent`,
        `${DAEMONSET} vnode-runtime/vnode-agent-builds`,
      ],
    });
  });

  test("a second mode adds a class and keeps the first one's name", async () => {
    const one = await run({
      agentImage: IMAGE,
      pools: [{ name: "a", nodeSelector: { pool: "a" } }],
    });
    const two = await run({
      agentImage: IMAGE,
      pools: [
        { name: "b", isolationMode: IsolationMode.PerPod, nodeSelector: { pool: "b" } },
        { name: "a", nodeSelector: { pool: "a" } },
      ],
    });
    expect(compare(one, two)).toEqual({
      renamed: [],
      reused: [],
      only: [`${DAEMONSET} vnode-runtime/vnode-agent-b`, `${RUNTIME_CLASS} /vnode-per-pod`],
    });
  });

  test("one-time aliases map the names earlier versions used onto the new ones", async () => {
    const single = await run({ agentImage: IMAGE, isolationMode: IsolationMode.PerPod });
    // The provider's classes add their own type aliases (apps/v1beta2 ...); these are the names.
    const aliases = (r: Run, name: string): unknown =>
      (r.options.get(name)?.aliases as { name?: string }[]).filter((a) => a.name !== undefined);
    expect(aliases(single, "vnode-agent")).toEqual([{ name: "vnode-agent-default" }]);
    // One class: it was held under either mode's name, the current mode's first.
    expect(aliases(single, "vnode-runtime-class-vnode")).toEqual([
      { name: "vnode-runtime-class-per-pod" },
      { name: "vnode-runtime-class-per-namespace" },
    ]);
    const mixed = await run({
      agentImage: IMAGE,
      pools: [
        { name: "a", nodeSelector: { pool: "a" } },
        { name: "b", isolationMode: IsolationMode.PerPod, nodeSelector: { pool: "b" } },
      ],
    });
    // Two classes: each its own mode's old name, so no old name is claimed twice.
    expect(aliases(mixed, "vnode-runtime-class-vnode")).toEqual([
      { name: "vnode-runtime-class-per-namespace" },
    ]);
    expect(aliases(mixed, "vnode-runtime-class-vnode-per-pod")).toEqual([
      { name: "vnode-runtime-class-per-pod" },
    ]);
    expect(aliases(mixed, "vnode-agent-a")).toEqual([]);
  });
});

describe("fixed names with immutable fields are replaced delete-first", () => {
  let r: Run;
  beforeAll(async () => {
    r = await run({ agentImage: IMAGE });
  });

  test("RuntimeClass: handler", () => {
    const opts = r.options.get("vnode-runtime-class-vnode");
    expect([opts?.replaceOnChanges, opts?.deleteBeforeReplace]).toEqual([["handler"], true]);
  });

  test("ClusterRoleBinding and RoleBinding: roleRef", () => {
    for (const name of ["vnode-cluster-role-binding", "vnode-role-binding"]) {
      const opts = r.options.get(name);
      expect([name, opts?.replaceOnChanges, opts?.deleteBeforeReplace]).toEqual([
        name,
        ["roleRef"],
        true,
      ]);
    }
  });

  test("DaemonSets are never deleted first: their selector changes only with their name", () => {
    const opts = r.options.get("vnode-agent");
    expect([opts?.replaceOnChanges, opts?.deleteBeforeReplace]).toEqual([undefined, undefined]);
    const selector = (run: Run, name: string): unknown =>
      (
        run.recorder.resources.find((x) => x.type === DAEMONSET && x.name === name)?.inputs
          .spec as { selector: unknown }
      ).selector;
    expect(selector(r, "vnode-agent")).toEqual({
      matchLabels: {
        "app.kubernetes.io/name": "vnode-agent",
        "app.kubernetes.io/instance": "vnode",
        "vnode.loft.sh/pool": "default",
      },
    });
  });
});

describe("rollout", () => {
  const daemonSet = (r: Run): { metadata: { annotations?: Record<string, string> } } =>
    r.recorder.one("vnode", DAEMONSET).inputs as never;

  test("by default pulumi up does not wait for the rollout", async () => {
    const r = await run({ agentImage: IMAGE });
    expect(daemonSet(r).metadata.annotations).toEqual({ "pulumi.com/skipAwait": "true" });
    expect(r.options.get("vnode-agent")?.customTimeouts).toBeUndefined();
  });

  test("wait ready: the provider's await, for timeoutSeconds", async () => {
    const r = await run({ agentImage: IMAGE, rollout: { wait: "ready", timeoutSeconds: 3600 } });
    expect(daemonSet(r).metadata.annotations).toBeUndefined();
    expect(r.options.get("vnode-agent")?.customTimeouts).toEqual({
      create: "3600s",
      update: "3600s",
    });
  });

  test("wait ready without a timeout keeps the provider's 10 minutes, explicitly", async () => {
    const r = await run({ agentImage: IMAGE, rollout: { wait: "ready" } });
    expect(r.options.get("vnode-agent")?.customTimeouts).toEqual({
      create: "600s",
      update: "600s",
    });
  });

  test("maxUnavailable as a count or a percentage", async () => {
    const strategy = (r: Run): unknown =>
      (r.recorder.one("vnode", DAEMONSET).inputs.spec as { updateStrategy: unknown })
        .updateStrategy;
    const count = await run({ agentImage: IMAGE, updateStrategy: { maxUnavailable: 3 } });
    expect(strategy(count)).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 3 },
    });
    const percent = await run({ agentImage: IMAGE, updateStrategy: { maxUnavailablePercent: 25 } });
    expect(strategy(percent)).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: "25%" },
    });
  });
});

describe("destroy", () => {
  test("the namespace is deleted with the component unless retainNamespace", async () => {
    expect(
      (await run({ agentImage: IMAGE })).options.get("vnode-namespace")?.retainOnDelete,
    ).toBeUndefined();
    const kept = await run({ agentImage: IMAGE, retainNamespace: true });
    expect(kept.options.get("vnode-namespace")?.retainOnDelete).toBe(true);
  });

  test("forceUninstall reaches the agent as --force-uninstall", async () => {
    const args = (r: Run): string[] =>
      (
        r.recorder.one("vnode", DAEMONSET).inputs.spec as {
          template: { spec: { containers: { args: string[] }[] } };
        }
      ).template.spec.containers[0].args;
    expect(args(await run({ agentImage: IMAGE }))).not.toContain("--force-uninstall");
    expect(args(await run({ agentImage: IMAGE, forceUninstall: true })).slice(-1)).toEqual([
      "--force-uninstall",
    ]);
  });
});
