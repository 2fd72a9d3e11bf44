import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ISOLATION_MODE_LABEL, RUNTIME_LABEL } from "vnode-contract";
import { AgentError, ExitCode } from "../../agent/src/lib/errors";
import { FakeKubeApi, importKube } from "../support/fakeKubeApi";

const { createKubeClient, KubeApiError, EVENT_MESSAGE_LIMIT } = importKube();

const TOKEN = "test-token";
const NOW = new Date("2025-01-02T03:04:05.000Z");

describe("KubeClient against the fake API server", () => {
  let api: FakeKubeApi;
  const retries: { attempt: number; delay: number; status: number | undefined }[] = [];

  const client = (extra: Parameters<typeof createKubeClient>[0] = {}) =>
    createKubeClient({
      server: { url: api.url, token: TOKEN },
      instance: "vnode-agent-x7k2p",
      now: () => NOW,
      requestTimeoutMs: 2000,
      patchRetry: { attempts: 4, policy: { initialMs: 5, maxMs: 20, factor: 2 } },
      onRetry: (err, attempt, delay) => retries.push({ attempt, delay, status: err.status }),
      ...extra,
    });

  beforeEach(async () => {
    api = await FakeKubeApi.start({ token: TOKEN });
    retries.length = 0;
  });
  afterEach(() => api.close());

  describe("getNode", () => {
    it("reads the node with the bearer token", async () => {
      const seeded = api.addNode("n1", { "kubernetes.io/os": "linux" });
      const node = await client().getNode("n1");
      expect(node.metadata?.name).toBe("n1");
      expect(node.metadata?.uid).toBe(seeded.metadata.uid);
      expect(node.metadata?.labels).toEqual({ "kubernetes.io/os": "linux" });
      expect(api.requests.map((r) => [r.method, r.path, r.authorization])).toEqual([
        ["GET", "/api/v1/nodes/n1", `Bearer ${TOKEN}`],
      ]);
    });

    it("fails with the status and the server's message, without retrying", async () => {
      const err = await client()
        .getNode("ghost")
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubeApiError);
      expect((err as InstanceType<typeof KubeApiError>).status).toBe(404);
      expect((err as Error).message).toBe('get node "ghost": HTTP 404: nodes "ghost" not found');
      expect(api.requests).toHaveLength(1);
    });

    it("names a rejected token", async () => {
      api.addNode("n1");
      const err = await createKubeClient({ server: { url: api.url, token: "wrong" } })
        .getNode("n1")
        .catch((e: Error) => e);
      expect((err as Error).message).toBe('get node "n1": HTTP 401: Unauthorized');
    });
  });

  describe("patchNodeLabels", () => {
    it("sends a JSON merge patch of only the labels; null removes one, others stay", async () => {
      api.addNode("n1", { keep: "me", [RUNTIME_LABEL]: "installing", stale: "x" });
      const node = await client().patchNodeLabels("n1", {
        [RUNTIME_LABEL]: "ready",
        [ISOLATION_MODE_LABEL]: "per-pod",
        stale: null,
      });
      const [patch] = api.requests;
      expect(patch.method).toBe("PATCH");
      expect(patch.path).toBe("/api/v1/nodes/n1");
      expect(patch.contentType).toBe("application/merge-patch+json");
      expect(patch.body).toEqual({
        metadata: {
          labels: {
            "vnode.loft.sh/runtime": "ready",
            "vnode.loft.sh/isolation-mode": "per-pod",
            stale: null,
          },
        },
      });
      const expected = {
        keep: "me",
        "vnode.loft.sh/runtime": "ready",
        "vnode.loft.sh/isolation-mode": "per-pod",
      };
      expect(node.metadata?.labels).toEqual(expected);
      expect(api.nodes.get("n1")!.metadata.labels).toEqual(expected);
      expect(retries).toEqual([]);
    });

    it.each([
      ["500", { status: 500 }, 500],
      ["503", { status: 503 }, 503],
      ["409 conflict", { status: 409 }, 409],
      ["429 throttled", { status: 429 }, 429],
      ["dropped connection", { drop: true }, undefined],
    ])("retries with backoff after %s", async (_name, failure, status) => {
      api.addNode("n1");
      api.failNext({ method: "PATCH", times: 2, ...failure });
      const node = await client().patchNodeLabels("n1", { [RUNTIME_LABEL]: "ready" });
      expect(node.metadata?.labels).toEqual({ [RUNTIME_LABEL]: "ready" });
      expect(api.requestsFor("PATCH")).toHaveLength(3);
      expect(retries).toEqual([
        { attempt: 0, delay: 5, status },
        { attempt: 1, delay: 10, status },
      ]);
    });

    it("retries a request that times out", async () => {
      api.addNode("n1");
      api.failNext({ method: "PATCH", times: 1, hang: true });
      const started = Date.now();
      await client({ requestTimeoutMs: 300 }).patchNodeLabels("n1", { [RUNTIME_LABEL]: "ready" });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(api.requestsFor("PATCH").map((r) => r.status)).toEqual([-2, 200]);
      expect(retries).toEqual([{ attempt: 0, delay: 5, status: undefined }]);
    });

    it("gives up after the configured attempts with the last error", async () => {
      api.addNode("n1");
      api.failNext({ method: "PATCH", times: 10, status: 500 });
      const err = await client()
        .patchNodeLabels("n1", { [RUNTIME_LABEL]: "failed" })
        .catch((e: Error) => e);
      expect((err as Error).message).toBe(
        'patch labels of node "n1": HTTP 500: injected failure 500',
      );
      expect(api.requestsFor("PATCH")).toHaveLength(4);
      expect(retries.map((r) => r.delay)).toEqual([5, 10, 20]);
    });

    it.each([403, 404, 422])("does not retry a %i", async (status) => {
      api.addNode("n1");
      api.failNext({ method: "PATCH", times: 1, status });
      const err = await client()
        .patchNodeLabels("n1", { [RUNTIME_LABEL]: "ready" })
        .catch((e: unknown) => e);
      expect((err as InstanceType<typeof KubeApiError>).status).toBe(status);
      expect(api.requestsFor("PATCH")).toHaveLength(1);
    });
  });

  describe("createNodeEvent", () => {
    it("records a core/v1 Event on the Node in namespace default with the node's uid", async () => {
      const node = api.addNode("n1");
      const kube = client();
      await kube.getNode("n1");
      await kube.createNodeEvent("n1", {
        type: "Warning",
        reason: "InstallFailed",
        message: "containerd did not load handler vnode.",
        action: "Install",
      });
      // The uid came from the getNode above: no second read.
      expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        "GET /api/v1/nodes/n1",
        "POST /api/v1/namespaces/default/events",
      ]);
      const post = api.requests[1];
      expect(post.contentType).toBe("application/json");
      expect(post.body).toEqual({
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: "n1.1816c11eeef33200", namespace: "default" },
        involvedObject: { apiVersion: "v1", kind: "Node", name: "n1", uid: node.metadata.uid },
        type: "Warning",
        reason: "InstallFailed",
        message: "containerd did not load handler vnode.",
        action: "Install",
        source: { component: "vnode-agent", host: "n1" },
        firstTimestamp: "2025-01-02T03:04:05.000Z",
        lastTimestamp: "2025-01-02T03:04:05.000Z",
        count: 1,
        reportingComponent: "vnode-agent",
        reportingInstance: "vnode-agent-x7k2p",
      });
      expect(api.events).toHaveLength(1);
    });

    it("reads the node for its uid when it has not yet, and names events uniquely", async () => {
      const node = api.addNode("n1");
      const kube = client();
      await kube.createNodeEvent("n1", { type: "Normal", reason: "Installing", message: "a" });
      await kube.createNodeEvent("n1", { type: "Normal", reason: "RuntimeReady", message: "b" });
      expect(api.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
        "GET /api/v1/nodes/n1 200",
        "POST /api/v1/namespaces/default/events 201",
        "POST /api/v1/namespaces/default/events 201",
      ]);
      expect(api.events.map((e) => e.metadata.name)).toEqual([
        "n1.1816c11eeef33200",
        "n1.1816c11eeef33201",
      ]);
      const bodies = api.requestsFor("POST").map((r) => r.body as Record<string, unknown>);
      expect(bodies.map((b) => [b.reason, b.message, "action" in b])).toEqual([
        ["Installing", "a", false],
        ["RuntimeReady", "b", false],
      ]);
      expect(bodies[0].involvedObject).toEqual({
        apiVersion: "v1",
        kind: "Node",
        name: "n1",
        uid: node.metadata.uid,
      });
    });

    it("cuts long messages to the limit", async () => {
      api.addNode("n1");
      await client().createNodeEvent("n1", {
        type: "Warning",
        reason: "ManagerExited",
        message: "x".repeat(5000),
      });
      const message = (api.requestsFor("POST")[0].body as { message: string }).message;
      expect(message).toBe(`${"x".repeat(EVENT_MESSAGE_LIMIT - 1)}…`);
    });

    it("rejects a reason that is not UpperCamelCase before calling the API", async () => {
      api.addNode("n1");
      await expect(
        client().createNodeEvent("n1", { type: "Normal", reason: "install failed", message: "m" }),
      ).rejects.toThrow('event reason must be UpperCamelCase; got "install failed".');
      expect(api.requests).toEqual([]);
    });
  });

  describe("listPodsOnNode", () => {
    it("lists pods in all namespaces with the field selector spec.nodeName=<node>", async () => {
      api.addPod("team-a", "web", "n1", { runtimeClassName: "vnode" });
      api.addPod("team-b", "db", "n2", { runtimeClassName: "vnode" });
      api.addPod("kube-system", "proxy", "n1");
      const pods = await client().listPodsOnNode("n1");
      expect(
        pods.map((p) => [p.metadata?.namespace, p.metadata?.name, p.spec?.runtimeClassName]),
      ).toEqual([
        ["team-a", "web", "vnode"],
        ["kube-system", "proxy", undefined],
      ]);
      expect(api.requests.map((r) => [r.method, r.path, r.query])).toEqual([
        ["GET", "/api/v1/pods", { fieldSelector: "spec.nodeName=n1" }],
      ]);
    });
  });

  describe("getDaemonSet", () => {
    it("returns the DaemonSet", async () => {
      api.addDaemonSet("vnode-system", "vnode-agent-pool-a", { pool: "a" });
      const ds = await client().getDaemonSet("vnode-system", "vnode-agent-pool-a");
      expect(ds?.metadata?.name).toBe("vnode-agent-pool-a");
      expect(ds?.spec?.template.spec?.nodeSelector).toEqual({ pool: "a" });
      expect(api.requests.map((r) => r.path)).toEqual([
        "/apis/apps/v1/namespaces/vnode-system/daemonsets/vnode-agent-pool-a",
      ]);
    });

    it("returns null when it is gone (404)", async () => {
      expect(await client().getDaemonSet("vnode-system", "gone")).toBeNull();
    });

    it("throws other errors", async () => {
      api.failNext({ times: 1, status: 500 });
      await expect(client().getDaemonSet("vnode-system", "x")).rejects.toThrow(
        'get daemonset "vnode-system/x": HTTP 500: injected failure 500',
      );
    });
  });
});

describe("createKubeClient in-cluster config", () => {
  it("says what is missing outside a cluster", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-sa-"));
    try {
      let err: unknown;
      try {
        createKubeClient({ serviceAccountRoot: root, env: {} });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AgentError);
      expect((err as AgentError).exitCode).toBe(ExitCode.BadInput);
      expect((err as Error).message).toBe(
        "cannot reach the Kubernetes API: the in-cluster config needs KUBERNETES_SERVICE_HOST, " +
          `KUBERNETES_SERVICE_PORT and ${root}/var/run/secrets/kubernetes.io/serviceaccount/token ` +
          "(run the agent in its DaemonSet); got host null, port null, token file missing.",
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("talks HTTPS to the API server with the service account's CA and token", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-sa-"));
    let api: FakeKubeApi | undefined;
    try {
      const dir = path.join(root, "var/run/secrets/kubernetes.io/serviceaccount");
      fs.mkdirSync(dir, { recursive: true });
      const tls = selfSignedCert(root);
      fs.writeFileSync(path.join(dir, "ca.crt"), tls.cert);
      fs.writeFileSync(path.join(dir, "token"), "projected-token");
      fs.writeFileSync(path.join(dir, "namespace"), "vnode-system");
      api = await FakeKubeApi.start({ token: "projected-token", tls });
      api.addNode("n1");
      const env = {
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: new URL(api.url).port,
      };
      const node = await createKubeClient({ serviceAccountRoot: root, env }).getNode("n1");
      expect(node.metadata?.name).toBe("n1");
      expect(api.requests.map((r) => r.authorization)).toEqual(["Bearer projected-token"]);
    } finally {
      await api?.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("refuses an API server whose certificate the service account CA did not sign", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-sa-"));
    let api: FakeKubeApi | undefined;
    try {
      const dir = path.join(root, "var/run/secrets/kubernetes.io/serviceaccount");
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, "ca.crt"), selfSignedCert(path.join(root, "other")).cert);
      fs.writeFileSync(path.join(dir, "token"), "projected-token");
      api = await FakeKubeApi.start({ tls: selfSignedCert(root) });
      api.addNode("n1");
      const env = {
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: new URL(api.url).port,
      };
      await expect(
        createKubeClient({ serviceAccountRoot: root, env }).getNode("n1"),
      ).rejects.toThrow(/^get node "n1": .*self[- ]signed certificate/);
      expect(api.requests).toEqual([]);
    } finally {
      await api?.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

/** A throwaway key and self-signed certificate for 127.0.0.1, made with openssl. */
function selfSignedCert(dir: string): { key: string; cert: string } {
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, "tls.key");
  const cert = path.join(dir, "tls.crt");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=fake-kube-apiserver",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  return { key: fs.readFileSync(key, "utf8"), cert: fs.readFileSync(cert, "utf8") };
}
