/**
 * A FAKE Kubernetes API server for the agent's tests: plain HTTP on 127.0.0.1, in memory, with
 * only the endpoints the agent calls (get/patch/watch nodes, create events, list pods with a field
 * selector, get daemonsets). It is not a Kubernetes API server: it does no admission and accepts
 * only merge patches. It records every request (method, path, query, content type, body, bytes
 * answered, connection) so tests can assert exact bodies and benchmarks can count the load, and
 * can fail requests on demand.
 *
 * Watches follow kube-apiserver's behaviour (apiserver/pkg/storage/cacher): events after the
 * requested resourceVersion, a BOOKMARK every minute (defaultBookmarkFrequency) when
 * allowWatchBookmarks is set, the stream ended after timeoutSeconds, and an ERROR event with a
 * 410 Status for a resourceVersion older than the event history it keeps. `timeScale` runs its
 * clock faster (60: one real second is a minute), for benchmarks of an hour.
 */
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  authorization: string | undefined;
  /** Parsed JSON, or the raw text when it is not JSON, or undefined when empty. */
  body: unknown;
  /** Status the fake answered; -1 for a dropped connection, -2 for no answer. */
  status: number;
  /** Response body bytes sent (for a watch, all its events so far). */
  bytes: number;
  /** Which TCP connection carried it (1, 2, ...): a new one is a new TCP (and TLS) handshake. */
  connection: number;
  /** When it arrived (ms since the epoch, real time). */
  at: number;
}

interface Watcher {
  name: string | undefined;
  res: http.ServerResponse;
  record: RecordedRequest;
  bookmarks: boolean;
  timers: NodeJS.Timeout[];
}

/** Node events the fake keeps for watches resumed from an older resourceVersion. */
const HISTORY = 100;

/** Makes the next `times` requests that match answer `status`, or drop the connection. */
export interface InjectedFailure {
  method?: string;
  /** Exact path, or a pattern. */
  path?: string | RegExp;
  times: number;
  /** Defaults to 500. */
  status?: number;
  /** Destroy the socket without answering (a network error for the client). */
  drop?: boolean;
  /** Never answer (until close): the client's timeout must fire. */
  hang?: boolean;
}

/** What the Kubernetes API server's RequestInfo resolver would make of a request, for RBAC. */
export interface RequestAttributes {
  apiGroup: string;
  resource: string;
  verb: string;
  namespace: string | undefined;
  name: string | undefined;
}

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

const MERGE_PATCH_TYPES = [
  "application/merge-patch+json",
  // For a map like metadata.labels, strategic merge is the same as a JSON merge patch.
  "application/strategic-merge-patch+json",
];

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  readonly nodes = new Map<string, Obj>();
  readonly events: Obj[] = [];
  readonly pods: Obj[] = [];
  readonly daemonSets = new Map<string, Obj>();
  private failures: InjectedFailure[] = [];
  private resourceVersion = 1000;
  private watchers: Watcher[] = [];
  private history: { rv: number; type: string; node: Obj }[] = [];
  /** TCP connections accepted so far. */
  connections = 0;

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    readonly token: string | undefined,
    readonly timeScale: number,
  ) {
    server.on("connection", (socket) => {
      (socket as { fakeId?: number }).fakeId = ++this.connections;
    });
  }

  /**
   * Starts on 127.0.0.1 with an ephemeral port. With `token`, requests need that bearer token;
   * with `tls` (PEM key and certificate), it serves HTTPS as a real API server does.
   */
  static async start(
    opts: { token?: string; tls?: { key: string; cert: string }; timeScale?: number } = {},
  ): Promise<FakeKubeApi> {
    const self: { fake?: FakeKubeApi } = {};
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => self.fake!.handle(req, res, Buffer.concat(chunks).toString("utf8")));
    };
    const server = opts.tls
      ? https.createServer(opts.tls, onRequest)
      : http.createServer(onRequest);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const { port } = server.address() as AddressInfo;
    const scheme = opts.tls ? "https" : "http";
    self.fake = new FakeKubeApi(
      server,
      `${scheme}://127.0.0.1:${port}`,
      opts.token,
      opts.timeScale ?? 1,
    );
    // The connection listener is added in the constructor, after listen: connections only come
    // once the caller knows the URL.
    return self.fake;
  }

  /** Changes a node the way another writer would (kubelet's status, an admin's label). */
  updateNode(name: string, change: (node: Obj) => void): void {
    const node = structuredClone(this.nodes.get(name)!);
    change(node);
    node.metadata.resourceVersion = this.nextVersion();
    this.nodes.set(name, node);
    this.notify("MODIFIED", node);
  }

  close(): Promise<void> {
    for (const w of this.watchers) w.timers.forEach(clearTimeout);
    this.watchers = [];
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  addNode(name: string, labels: Record<string, string> = {}): Obj {
    const node: Obj = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, uid: randomUUID(), resourceVersion: this.nextVersion(), labels },
      spec: {},
    };
    this.nodes.set(name, node);
    return node;
  }

  addPod(
    namespace: string,
    name: string,
    nodeName: string,
    extra: {
      runtimeClassName?: string;
      phase?: string;
      labels?: Record<string, string>;
      /** The DaemonSet controlling the pod (in the pod's namespace). */
      daemonSet?: string;
    } = {},
  ): Obj {
    const pod: Obj = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace,
        uid: randomUUID(),
        resourceVersion: this.nextVersion(),
        ...(extra.labels ? { labels: extra.labels } : {}),
        ...(extra.daemonSet
          ? {
              ownerReferences: [
                {
                  apiVersion: "apps/v1",
                  kind: "DaemonSet",
                  name: extra.daemonSet,
                  uid: randomUUID(),
                  controller: true,
                  blockOwnerDeletion: true,
                },
              ],
            }
          : {}),
      },
      spec: {
        nodeName,
        containers: [{ name: "main", image: "busybox" }],
        ...(extra.runtimeClassName ? { runtimeClassName: extra.runtimeClassName } : {}),
      },
      status: { phase: extra.phase ?? "Running" },
    };
    this.pods.push(pod);
    return pod;
  }

  addDaemonSet(namespace: string, name: string, nodeSelector: Record<string, string> = {}): Obj {
    const labels = { app: name };
    const ds: Obj = {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name, namespace, uid: randomUUID(), resourceVersion: this.nextVersion() },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { nodeSelector, containers: [{ name: "agent", image: "vnode-agent" }] },
        },
      },
    };
    this.daemonSets.set(`${namespace}/${name}`, ds);
    return ds;
  }

  failNext(failure: InjectedFailure): void {
    this.failures.push({ ...failure });
  }

  /** The recorded requests with this method (and path, when given), in order. */
  requestsFor(method: string, pathPattern?: string | RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && matches(r.path, pathPattern));
  }

  private nextVersion(): string {
    return String(++this.resourceVersion);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, text: string): void {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers["content-type"],
      authorization: req.headers.authorization,
      body: parseBody(text),
      status: 0,
      bytes: 0,
      connection: (req.socket as { fakeId?: number }).fakeId ?? 0,
      at: Date.now(),
    };
    this.requests.push(record);

    const failure = this.failures.find(
      (f) => f.times > 0 && (!f.method || f.method === method) && matches(url.pathname, f.path),
    );
    if (failure) {
      failure.times--;
      if (failure.hang) {
        record.status = -2;
        return;
      }
      if (failure.drop) {
        record.status = -1;
        req.socket.destroy();
        return;
      }
      const status = failure.status ?? 500;
      return this.reply(res, record, status, statusBody(status, `injected failure ${status}`));
    }
    if (this.token !== undefined && record.authorization !== `Bearer ${this.token}`) {
      return this.reply(res, record, 401, statusBody(401, "Unauthorized"));
    }
    if (
      method === "GET" &&
      url.pathname === "/api/v1/nodes" &&
      url.searchParams.get("watch") === "true"
    )
      return this.watchNodes(url, res, record);
    const [status, body] = this.route(method, url, record);
    this.reply(res, record, status, body);
  }

  private reply(res: http.ServerResponse, record: RecordedRequest, status: number, body: unknown) {
    record.status = status;
    const text = JSON.stringify(body);
    record.bytes = Buffer.byteLength(text);
    res.writeHead(status, { "content-type": "application/json" });
    res.end(text);
  }

  private route(method: string, url: URL, rec: RecordedRequest): [number, unknown] {
    const p = url.pathname;
    let m: RegExpMatchArray | null;
    if ((m = p.match(/^\/api\/v1\/nodes\/([^/]+)$/))) {
      const node = this.nodes.get(decodeURIComponent(m[1]));
      if (!node) return notFound("nodes", m[1]);
      if (method === "GET") return [200, node];
      if (method === "PATCH") return this.patchNode(node, rec);
    } else if ((m = p.match(/^\/api\/v1\/namespaces\/([^/]+)\/events$/)) && method === "POST") {
      return this.createEvent(decodeURIComponent(m[1]), rec.body);
    } else if (p === "/api/v1/pods" && method === "GET") {
      return this.listPods(url.searchParams.get("fieldSelector") ?? "");
    } else if ((m = p.match(/^\/apis\/apps\/v1\/namespaces\/([^/]+)\/daemonsets\/([^/]+)$/))) {
      if (method === "GET") {
        const ds = this.daemonSets.get(`${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`);
        return ds ? [200, ds] : notFound("daemonsets.apps", m[2]);
      }
    }
    return [404, statusBody(404, `the fake API server does not serve ${method} ${p}`)];
  }

  private patchNode(node: Obj, rec: RecordedRequest): [number, unknown] {
    const type = (rec.contentType ?? "").split(";")[0].trim();
    if (!MERGE_PATCH_TYPES.includes(type)) {
      return [
        415,
        statusBody(415, `the fake accepts ${MERGE_PATCH_TYPES.join(", ")}; got "${type}"`),
      ];
    }
    if (!isObject(rec.body)) return [400, statusBody(400, "patch body must be a JSON object")];
    const patched = mergePatch(node, rec.body) as Obj;
    patched.metadata.name = node.metadata.name; // a patch cannot rename
    patched.metadata.resourceVersion = this.nextVersion();
    this.nodes.set(String(node.metadata.name), patched);
    this.notify("MODIFIED", patched);
    return [200, patched];
  }

  private notify(type: string, node: Obj): void {
    this.history.push({ rv: Number(node.metadata.resourceVersion), type, node });
    if (this.history.length > HISTORY) this.history.shift();
    for (const w of this.watchers)
      if (w.name === undefined || w.name === node.metadata.name) this.send(w, type, node);
  }

  private send(w: Watcher, type: string, object: unknown): void {
    const line = JSON.stringify({ type, object }) + "\n";
    w.record.bytes += Buffer.byteLength(line);
    w.res.write(line);
  }

  private endWatch(w: Watcher): void {
    w.timers.forEach(clearTimeout);
    this.watchers = this.watchers.filter((x) => x !== w);
    w.res.end();
  }

  private watchNodes(url: URL, res: http.ServerResponse, record: RecordedRequest): void {
    const selector = url.searchParams.get("fieldSelector") ?? "";
    const m = selector.match(/^metadata\.name=([^,]+)$/);
    if (selector !== "" && !m)
      return this.reply(
        res,
        record,
        400,
        statusBody(400, `unsupported field selector "${selector}"`),
      );
    const rv = Number(url.searchParams.get("resourceVersion") ?? "0");
    record.status = 200;
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    const w: Watcher = {
      name: m?.[1],
      res,
      record,
      bookmarks: url.searchParams.get("allowWatchBookmarks") === "true",
      timers: [],
    };
    this.watchers.push(w);
    res.on("close", () => this.endWatch(w));
    const oldest = this.history.length === HISTORY ? this.history[0].rv : 0;
    if (rv > 0 && rv < oldest) {
      this.send(w, "ERROR", {
        ...statusBody(410, `too old resource version: ${rv} (${oldest})`),
        reason: "Expired",
      });
      return this.endWatch(w);
    }
    for (const e of this.history)
      if (e.rv > rv && (w.name === undefined || w.name === e.node.metadata.name))
        this.send(w, e.type, e.node);
    const scaled = (seconds: number) => (seconds * 1000) / this.timeScale;
    const timeout = Number(url.searchParams.get("timeoutSeconds") ?? "1800");
    w.timers.push(setTimeout(() => this.endWatch(w), scaled(timeout)));
    if (w.bookmarks) {
      const tick = () => {
        this.send(w, "BOOKMARK", {
          kind: "Node",
          apiVersion: "v1",
          metadata: { resourceVersion: String(this.resourceVersion) },
        });
        w.timers.push(setTimeout(tick, scaled(60)));
      };
      w.timers.push(setTimeout(tick, scaled(60)));
    }
  }

  private createEvent(namespace: string, body: unknown): [number, unknown] {
    if (!isObject(body) || !isObject(body.metadata) || !isObject(body.involvedObject)) {
      return [400, statusBody(400, "event needs metadata and involvedObject")];
    }
    const meta = body.metadata;
    if (meta.namespace !== undefined && meta.namespace !== namespace) {
      return [400, statusBody(400, "the namespace of the object does not match the request")];
    }
    // The API server's rule for events about cluster-scoped objects (legacy core/v1 events).
    if (!body.involvedObject.namespace && namespace !== "default") {
      return [422, statusBody(422, "involvedObject.namespace: does not match event.namespace")];
    }
    if (
      this.events.some((e) => e.metadata.namespace === namespace && e.metadata.name === meta.name)
    ) {
      return [409, statusBody(409, `events "${String(meta.name)}" already exists`)];
    }
    const stored = {
      ...body,
      metadata: { ...meta, namespace, uid: randomUUID(), resourceVersion: this.nextVersion() },
    } as Obj;
    this.events.push(stored);
    return [201, stored];
  }

  private listPods(fieldSelector: string): [number, unknown] {
    const terms: { key: string; value: string; negate: boolean }[] = [];
    for (const term of fieldSelector.split(",").filter(Boolean)) {
      const m = term.match(/^([a-zA-Z.]+)(!=|==|=)(.*)$/);
      if (!m) return [400, statusBody(400, `invalid field selector term "${term}"`)];
      if (!(m[1] in POD_FIELDS))
        return [400, statusBody(400, `field label not supported: ${m[1]}`)];
      terms.push({ key: m[1], value: m[3], negate: m[2] === "!=" });
    }
    const items = this.pods.filter((pod) =>
      terms.every((t) => (POD_FIELDS[t.key](pod) === t.value) !== t.negate),
    );
    return [
      200,
      {
        apiVersion: "v1",
        kind: "PodList",
        metadata: { resourceVersion: this.nextVersion() },
        items,
      },
    ];
  }
}

const POD_FIELDS: Record<string, (pod: Obj) => string> = {
  "spec.nodeName": (p) => String((p.spec as Record<string, unknown>).nodeName ?? ""),
  "status.phase": (p) => String((p.status as Record<string, unknown>).phase ?? ""),
  "metadata.name": (p) => String(p.metadata.name),
  "metadata.namespace": (p) => String(p.metadata.namespace),
};

/** RFC 7386 JSON merge patch: objects merge key by key, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** Resource attributes of a request, the way the API server derives them for authorization. */
export function requestAttributes(req: RecordedRequest): RequestAttributes {
  const parts = req.path.split("/").filter(Boolean);
  let rest: string[];
  let apiGroup: string;
  if (parts[0] === "api") {
    apiGroup = "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis") {
    apiGroup = parts[1];
    rest = parts.slice(3);
  } else {
    throw new Error(`not a resource path: ${req.path}`);
  }
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name] = rest;
  const verbs: Record<string, string> = {
    GET: name ? "get" : req.query.watch === "true" ? "watch" : "list",
    POST: "create",
    PUT: "update",
    PATCH: "patch",
    DELETE: name ? "delete" : "deletecollection",
  };
  return { apiGroup, resource, verb: verbs[req.method], namespace, name };
}

/**
 * agent/src/kube.ts with @kubernetes/client-node loaded by Node's own loader. The library is an
 * ES module; jest's CommonJS runtime loads ES modules only on Node >= 24.9 and fences its
 * `createRequire`, while Node 20.19+ itself can `require()` them. `Module._load` is the loader
 * behind every real `require`, so the real library runs here, outside jest's module registry.
 */
export function importKube(): typeof import("../../agent/src/kube/client") {
  const kubePath = require.resolve("../../agent/src/kube/client");
  const libPath = require.resolve("@kubernetes/client-node", { paths: [path.dirname(kubePath)] });
  // Node's own Module class (jest hands out a subclass whose statics are the real ones).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeModule = require("node:module") as {
    _load(request: string, parent: unknown, isMain: boolean): unknown;
  };
  const lib = nodeModule._load(libPath, null, false);
  jest.doMock(libPath, () => lib);
  // After the mock is in place, so kube.ts gets the natively loaded library.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("../../agent/src/kube/client");
}

function matches(p: string, pattern: string | RegExp | undefined): boolean {
  if (pattern === undefined) return true;
  return typeof pattern === "string" ? p === pattern : pattern.test(p);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function statusBody(code: number, message: string) {
  return { apiVersion: "v1", kind: "Status", status: "Failure", message, code };
}

function notFound(resource: string, name: string): [number, unknown] {
  return [404, statusBody(404, `${resource} "${decodeURIComponent(name)}" not found`)];
}
