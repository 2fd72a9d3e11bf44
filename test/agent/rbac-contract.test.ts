/**
 * The RBAC the component grants (contract.ts) and the calls the agent's Kubernetes client makes
 * are the same set: checked against the client's own list, and against the requests the fake
 * API server saw when every client method ran, so the list cannot lie.
 */
import { AGENT_CLUSTER_RULES, AGENT_NAMESPACE_RULES } from "vnode-contract";
import { FakeKubeApi, importKube, requestAttributes } from "../support/fakeKubeApi";

const { createKubeClient, KUBE_API_CALLS } = importKube();

type Rule = {
  apiGroups: readonly string[];
  resources: readonly string[];
  verbs: readonly string[];
};

const AGENT_NAMESPACE = "vnode-system";

/** "group/resource/verb (scope)" for every combination a rule list grants, sorted. */
function granted(rules: readonly Rule[], scope: string): string[] {
  return rules
    .flatMap((r) =>
      r.apiGroups.flatMap((g) =>
        r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}/${v} (${scope})`)),
      ),
    )
    .sort();
}

const grantedAll = [
  ...granted(AGENT_CLUSTER_RULES, "cluster"),
  ...granted(AGENT_NAMESPACE_RULES, "namespace"),
].sort();

describe("agent RBAC contract", () => {
  it("the client's call list is exactly what the component grants", () => {
    const used = KUBE_API_CALLS.map(
      (c) => `${c.apiGroup}/${c.resource}/${c.verb} (${c.scope})`,
    ).sort();
    expect(used).toEqual(grantedAll);
    expect(grantedAll).toEqual([
      "/events/create (cluster)",
      "/nodes/get (cluster)",
      "/nodes/patch (cluster)",
      "/nodes/watch (cluster)",
      "/pods/list (cluster)",
      "apps/daemonsets/get (namespace)",
    ]);
  });

  describe("requests the client really sends", () => {
    let api: FakeKubeApi;
    beforeAll(async () => {
      api = await FakeKubeApi.start();
      api.addNode("n1");
      api.addDaemonSet(AGENT_NAMESPACE, "vnode-agent");
      const kube = createKubeClient({ server: { url: api.url }, instance: "i" });
      // Every method of the interface, so a new method cannot slip past this test.
      const calls: Record<keyof typeof kube, () => Promise<unknown>> = {
        getNode: () => kube.getNode("n1"),
        patchNodeLabels: () => kube.patchNodeLabels("n1", { a: "b" }),
        createNodeEvent: () =>
          kube.createNodeEvent("n1", { type: "Normal", reason: "R", message: "m" }),
        listPodsOnNode: () => kube.listPodsOnNode("n1"),
        getPodOnNode: () => kube.getPodOnNode("n1", AGENT_NAMESPACE, "vnode-agent-x"),
        getDaemonSet: () => kube.getDaemonSet(AGENT_NAMESPACE, "vnode-agent"),
        // The fake ends the watch after timeoutSeconds (1 s here).
        watchNode: () => kube.watchNode("n1", "1", () => undefined, { timeoutSeconds: 1 }),
      };
      expect(Object.keys(kube).sort()).toEqual(Object.keys(calls).sort());
      for (const call of Object.values(calls)) await call();
    });
    afterAll(() => api.close());

    it("all succeeded", () => {
      expect(api.requests.map((r) => r.status)).toEqual([200, 200, 201, 200, 200, 200, 200]);
    });

    it("use exactly the granted verbs", () => {
      // A request in the agent's own namespace is granted by the Role; any other namespaced
      // request (node events live in "default") and cluster-scoped ones need the ClusterRole.
      const seen = new Set(
        api.requests.map((r) => {
          const a = requestAttributes(r);
          const scope = a.namespace === AGENT_NAMESPACE ? "namespace" : "cluster";
          return `${a.apiGroup}/${a.resource}/${a.verb} (${scope})`;
        }),
      );
      expect([...seen].sort()).toEqual(grantedAll);
    });
  });
});
