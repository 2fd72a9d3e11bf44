/**
 * The agent's Node watch against the FAKE API server (test/support/fakeKubeApi.ts, which
 * streams watch events, bookmarks every minute and ends watches after timeoutSeconds like
 * kube-apiserver's watch cache), its clock 600x faster so a 10 minute watch lasts 1 s: one GET,
 * then watches resumed from the last resourceVersion (bookmarks included), field-selected to
 * the node, on one keep-alive connection; a 410 costs one more GET.
 */
import { FakeKubeApi, importKube } from "../support/fakeKubeApi";
import { NodeWatch } from "../../agent/src/kube/nodeWatch";

const { createKubeClient } = importKube();
const quiet = { info: () => undefined, warn: () => undefined };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe("NodeWatch", () => {
  let api: FakeKubeApi;
  let watch: NodeWatch;
  beforeEach(async () => {
    api = await FakeKubeApi.start({ timeScale: 600 });
    api.addNode("n1", { a: "1" });
    api.addNode("other", {});
  });
  afterEach(async () => {
    await watch?.stop();
    await api.close();
  });

  it("GETs once, then follows the node through resumed watches on one connection", async () => {
    watch = new NodeWatch(createKubeClient({ server: { url: api.url } }), "n1", quiet, () => 0);
    watch.start();
    await until("the node", () => watch.labels !== undefined);
    expect(watch.labels).toEqual({ a: "1" });
    api.updateNode("other", (n) => (n.metadata.labels = { x: "y" }));
    api.updateNode("n1", (n) => (n.metadata.labels = { a: "2" }));
    await until("the change", () => watch.labels?.a === "2", 1000);

    await sleep(2600); // timeoutSeconds 600 = 1 s here: two re-establishments, bookmarks between
    const watches = api.requestsFor("GET", "/api/v1/nodes");
    expect(watches.length).toBeGreaterThanOrEqual(3);
    expect(api.requestsFor("GET", "/api/v1/nodes/n1")).toHaveLength(1);
    for (const w of watches) {
      expect(w.query).toMatchObject({
        fieldSelector: "metadata.name=n1",
        watch: "true",
        allowWatchBookmarks: "true",
        timeoutSeconds: "600",
      });
    }
    // Each watch resumes where the last one ended: the last bookmark's resourceVersion.
    const rvs = watches.map((w) => Number(w.query.resourceVersion));
    for (let i = 1; i < rvs.length; i++)
      expect(rvs[i]).toBeGreaterThan(Number(watches[0].query.resourceVersion));
    // The other node's change never reached this watch: only n1's MODIFIED and bookmarks.
    expect(new Set(api.requests.map((r) => r.connection)).size).toBe(1);
  });

  it("a resourceVersion older than the server's window (410) costs one more GET", async () => {
    watch = new NodeWatch(createKubeClient({ server: { url: api.url } }), "n1", quiet, () => 0);
    watch.start();
    await until("the first watch", () => api.requestsFor("GET", "/api/v1/nodes").length === 1);
    // The next watch request is dropped; meanwhile 120 changes push its version out.
    api.failNext({ method: "GET", path: "/api/v1/nodes", drop: true, times: 1 });
    await until(
      "the dropped watch",
      () => api.requestsFor("GET", "/api/v1/nodes").length === 2,
      3000,
    );
    for (let i = 0; i < 120; i++)
      api.updateNode("other", (n) => (n.metadata.labels = { i: String(i) }));
    api.updateNode("n1", (n) => (n.metadata.labels = { a: "3" }));
    await until("the re-read", () => watch.labels?.a === "3", 5000);
    expect(api.requestsFor("GET", "/api/v1/nodes/n1")).toHaveLength(2);
  });
});
