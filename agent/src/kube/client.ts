/**
 * The agent's whole Kubernetes API surface: read and label its Node, record Events on it, list
 * the pods on it, and read its own DaemonSets. Nothing else, so the RBAC the component grants
 * (AGENT_CLUSTER_RULES, AGENT_NAMESPACE_RULES) stays exactly what is used; {@link KUBE_API_CALLS}
 * lists the calls and a test holds them to the contract and to the requests really sent.
 *
 * Built on @kubernetes/client-node (object-style params), reached through ./kubeApi only. Configuration is the pod's service
 * account (in-cluster) or an explicit server URL and token.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as k8s from "./api";
import type { V1DaemonSet, V1Node, V1Pod } from "./api";
import { AgentError, ExitCode } from "../lib/errors";
import { type BackoffPolicy, retry } from "../lib/backoff";

export type { V1DaemonSet, V1Node, V1Pod };

/** One Kubernetes API call the agent makes, in RBAC terms. */
export interface KubeApiCall {
  apiGroup: string;
  resource: string;
  verb: string;
  /**
   * `cluster`: granted by the ClusterRole (cluster-scoped objects, or namespaces other than the
   * agent's own). `namespace`: only in the agent's own namespace, granted by its Role.
   */
  scope: "cluster" | "namespace";
}

/**
 * Every call {@link KubeClient} makes. Node events go to namespace `default` (the API server
 * requires that for objects without a namespace) and pods are listed across namespaces, so
 * both need the ClusterRole; DaemonSets are read only in the agent's namespace.
 */
export const KUBE_API_CALLS: readonly KubeApiCall[] = [
  { apiGroup: "", resource: "nodes", verb: "get", scope: "cluster" },
  { apiGroup: "", resource: "nodes", verb: "patch", scope: "cluster" },
  { apiGroup: "", resource: "nodes", verb: "watch", scope: "cluster" },
  { apiGroup: "", resource: "events", verb: "create", scope: "cluster" },
  { apiGroup: "", resource: "pods", verb: "list", scope: "cluster" },
  { apiGroup: "apps", resource: "daemonsets", verb: "get", scope: "namespace" },
];

export type EventType = "Normal" | "Warning";

export interface NodeEvent {
  type: EventType;
  /** Short UpperCamelCase cause, e.g. `RuntimeReady`, `DriftRepaired`. */
  reason: string;
  /** One human sentence; cut at {@link EVENT_MESSAGE_LIMIT} characters. */
  message: string;
  /** What the agent did or is doing, e.g. `Install`, `Repair`. */
  action?: string;
}

/** The calls the daemon makes. Errors are {@link KubeApiError}s. */
export interface KubeClient {
  /** The Node object. Also remembers its uid for the Events. */
  getNode(name: string): Promise<V1Node>;
  /**
   * Sets node labels with a JSON merge patch (`null` removes a label; others are untouched).
   * Retries with jittered exponential backoff on 409, 429, 5xx and network errors.
   */
  patchNodeLabels(name: string, labels: Record<string, string | null>): Promise<V1Node>;
  /** Records a core/v1 Event on the Node, shown by `kubectl describe node`. */
  createNodeEvent(node: string, event: NodeEvent): Promise<void>;
  /** Pods bound to the node, in all namespaces (field selector `spec.nodeName=<node>`). */
  listPodsOnNode(node: string): Promise<V1Pod[]>;
  /**
   * One pod on the node, or null: the same list call, field-selected to the node and the pod's
   * namespace and name (so no `get` grant), served from the API server's watch cache
   * (`resourceVersion=0`: any recent version will do for a status the agent polls).
   */
  getPodOnNode(node: string, namespace: string, name: string): Promise<V1Pod | null>;
  /** The DaemonSet, or null when it does not exist (404). */
  getDaemonSet(namespace: string, name: string): Promise<V1DaemonSet | null>;
  /**
   * Watches the one Node `name` (field selector `metadata.name=<name>`) from `resourceVersion`,
   * with bookmarks, calling `onEvent` per event; resolves when the server ends the watch
   * (`timeoutSeconds`) or `signal` aborts it, rejects on an HTTP or network error.
   */
  watchNode(
    name: string,
    resourceVersion: string,
    onEvent: (event: NodeWatchEvent) => void,
    opts: { timeoutSeconds: number; signal?: AbortSignal },
  ): Promise<void>;
}

/** One event of a Node watch, as the API server streams them (one JSON object per line). */
export interface NodeWatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  /** The Node; for BOOKMARK only its resourceVersion; for ERROR a Status (410: too old). */
  object: V1Node & { code?: number; message?: string };
}

/** Name under which the agent reports Events (`source.component`, `reportingComponent`). */
export const EVENT_COMPONENT = "vnode-agent";
/** Namespace of Events about cluster-scoped objects such as Nodes (as kubelet does). */
export const NODE_EVENT_NAMESPACE = "default";
/** Messages longer than this are cut (the events.k8s.io limit; kubectl shows them whole). */
export const EVENT_MESSAGE_LIMIT = 1024;

export interface KubeClientOptions {
  /**
   * An explicit API server instead of the pod's service account: tests, or running the agent
   * outside the cluster. `http://` URLs are accepted only for local fakes.
   */
  server?: { url: string; token?: string; caFile?: string };
  /** Root of the service account files (tests); defaults to the real in-cluster paths. */
  serviceAccountRoot?: string;
  /** Where KUBERNETES_SERVICE_HOST and _PORT are read. Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** `reportingInstance` of Events. Defaults to the hostname, which in a pod is its name. */
  instance?: string;
  /** Per-request limit. Defaults to 10 s. */
  requestTimeoutMs?: number;
  /** Label patch retries: total tries (default 5) and delays (default 200 ms..5 s, jitter 0.5). */
  patchRetry?: { attempts?: number; policy?: BackoffPolicy };
  /** Called before each label patch retry, for logs. */
  onRetry?: (err: KubeApiError, attempt: number, delayMs: number) => void;
  /** Clock for Event timestamps. */
  now?: () => Date;
}

/** A failed API call. `status` is the HTTP status, or undefined for network errors and timeouts. */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = "KubeApiError";
  }

  /** Worth retrying: conflicts, throttling, server errors, network errors and timeouts. */
  get retryable(): boolean {
    const s = this.status;
    return s === undefined || s === 409 || s === 429 || s >= 500;
  }
}

const DEFAULT_PATCH_POLICY: BackoffPolicy = { initialMs: 200, maxMs: 5000, factor: 2, jitter: 0.5 };
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * One keep-alive agent for every request of the process, made from the first agent the client
 * library builds (same CA, client certificate, TLS verification): the library makes a new
 * https.Agent per request, so without this every request costs a TCP and TLS handshake on the
 * API server. The Node watch holds one socket; the rare writes reuse another one.
 */
function keepAliveAgentLike(agent: http.Agent): http.Agent {
  const options = { ...(agent as http.Agent & { options: https.AgentOptions }).options };
  const common = { keepAlive: true, keepAliveMsecs: 30_000, maxSockets: 4, maxFreeSockets: 1 };
  return agent instanceof https.Agent
    ? new https.Agent({ ...options, ...common })
    : new http.Agent({ ...common });
}

export function createKubeClient(opts: KubeClientOptions = {}): KubeClient {
  const kc = loadConfig(opts);
  let shared: http.Agent | undefined;
  const sharedAgent = (built: http.Agent | undefined): http.Agent | undefined => {
    if (built === undefined) return shared;
    shared ??= keepAliveAgentLike(built);
    return shared;
  };
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const timeoutMs = opts.requestTimeoutMs ?? 10_000;
  const instance = opts.instance ?? os.hostname();
  const now = opts.now ?? (() => new Date());
  const attempts = opts.patchRetry?.attempts ?? 5;
  const policy = opts.patchRetry?.policy ?? DEFAULT_PATCH_POLICY;
  const nodeUids = new Map<string, string>();
  let eventSeq = 0;

  // Every request gets its own deadline; the generated client has no timeout of its own.
  const withTimeout = (
    extra: k8s.ObservableMiddleware[] = [],
  ): k8s.ConfigurationOptions<k8s.ObservableMiddleware> => ({
    middleware: [
      {
        pre: (ctx) => {
          const agent = sharedAgent(ctx.getAgent());
          if (agent !== undefined) ctx.setAgent(agent);
          ctx.setSignal(AbortSignal.timeout(timeoutMs));
          return new k8s.Observable(Promise.resolve(ctx));
        },
        post: (res) => new k8s.Observable(Promise.resolve(res)),
      },
      ...extra,
    ],
    middlewareMergeStrategy: "append",
  });
  const mergePatch = withTimeout([
    k8s.setHeaderMiddleware("Content-Type", k8s.PatchStrategy.MergePatch),
  ]);

  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw toKubeApiError(what, err);
    }
  };

  const getNode = async (name: string): Promise<V1Node> => {
    const node = await call(`get node "${name}"`, () => core.readNode({ name }, withTimeout()));
    if (node.metadata?.uid) nodeUids.set(name, node.metadata.uid);
    return node;
  };

  return {
    getNode,

    patchNodeLabels: (name, labels) =>
      retry(
        () =>
          call(`patch labels of node "${name}"`, () =>
            core.patchNode({ name, body: { metadata: { labels } } }, mergePatch),
          ),
        {
          attempts,
          policy,
          isRetryable: (err) => err instanceof KubeApiError && err.retryable,
          onRetry: (err, attempt, delay) => opts.onRetry?.(err as KubeApiError, attempt, delay),
        },
      ),

    createNodeEvent: async (node, event) => {
      if (!/^[A-Z][A-Za-z0-9]*$/.test(event.reason)) {
        throw new Error(
          `event reason must be UpperCamelCase; got ${JSON.stringify(event.reason)}.`,
        );
      }
      const uid = nodeUids.get(node) ?? (await getNode(node)).metadata?.uid;
      const at = now();
      const body: k8s.CoreV1Event = {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: eventName(node, at, eventSeq++), namespace: NODE_EVENT_NAMESPACE },
        involvedObject: { apiVersion: "v1", kind: "Node", name: node, uid },
        type: event.type,
        reason: event.reason,
        message: truncate(event.message, EVENT_MESSAGE_LIMIT),
        ...(event.action ? { action: event.action } : {}),
        source: { component: EVENT_COMPONENT, host: node },
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
        reportingComponent: EVENT_COMPONENT,
        reportingInstance: instance,
      };
      await call(`create event ${event.reason} on node "${node}"`, () =>
        core.createNamespacedEvent({ namespace: NODE_EVENT_NAMESPACE, body }, withTimeout()),
      );
    },

    listPodsOnNode: async (node) => {
      const list = await call(`list pods on node "${node}"`, () =>
        core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` }, withTimeout()),
      );
      return list.items;
    },

    getPodOnNode: async (node, namespace, name) => {
      const list = await call(`list pod "${namespace}/${name}" on node "${node}"`, () =>
        core.listPodForAllNamespaces(
          {
            fieldSelector: `spec.nodeName=${node},metadata.namespace=${namespace},metadata.name=${name}`,
            resourceVersion: "0",
          },
          withTimeout(),
        ),
      );
      return list.items[0] ?? null;
    },

    watchNode: (name, resourceVersion, onEvent, { timeoutSeconds, signal }) =>
      watchNodeStream(kc, sharedAgent, { name, resourceVersion, timeoutSeconds, signal, onEvent }),

    getDaemonSet: async (namespace, name) => {
      try {
        return await call(`get daemonset "${namespace}/${name}"`, () =>
          apps.readNamespacedDaemonSet({ namespace, name }, withTimeout()),
        );
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) return null;
        throw err;
      }
    },
  };
}

/**
 * The watch request itself: `GET /api/v1/nodes?fieldSelector=metadata.name=<node>&watch=true
 * &resourceVersion=<rv>&allowWatchBookmarks=true&timeoutSeconds=<t>` on the shared agent,
 * with the library's auth headers (re-read per request, so a rotated token is used). The
 * response is one JSON watch event per line until the server's timeout.
 */
async function watchNodeStream(
  kc: k8s.KubeConfig,
  sharedAgent: (built: http.Agent | undefined) => http.Agent | undefined,
  w: {
    name: string;
    resourceVersion: string;
    timeoutSeconds: number;
    signal?: AbortSignal;
    onEvent: (event: NodeWatchEvent) => void;
  },
): Promise<void> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new KubeApiError("watch node: no cluster configured", undefined);
  const options: https.RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(options);
  const url = new URL("/api/v1/nodes", cluster.server);
  url.searchParams.set("fieldSelector", `metadata.name=${w.name}`);
  url.searchParams.set("watch", "true");
  url.searchParams.set("resourceVersion", w.resourceVersion);
  url.searchParams.set("allowWatchBookmarks", "true");
  url.searchParams.set("timeoutSeconds", String(w.timeoutSeconds));
  const secure = url.protocol === "https:";
  const built = secure
    ? new https.Agent({
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        ...(cluster.skipTLSVerify ? { rejectUnauthorized: false } : {}),
      })
    : new http.Agent();
  const agent = sharedAgent(built) ?? built;
  const what = `watch node "${w.name}"`;
  return new Promise<void>((resolve, reject) => {
    const req = (secure ? https : http).request(
      url,
      { method: "GET", agent, headers: { ...options.headers, Accept: "application/json" } },
      (res) => {
        if (res.statusCode !== 200) {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () =>
            reject(
              new KubeApiError(
                `${what}: HTTP ${res.statusCode}: ${statusMessage(body, undefined)}`,
                res.statusCode,
              ),
            ),
          );
          return;
        }
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line.length === 0) continue;
            try {
              w.onEvent(JSON.parse(line) as NodeWatchEvent);
            } catch (err) {
              req.destroy(err as Error);
              return;
            }
          }
        });
        res.on("end", () => resolve());
        res.on("aborted", () => reject(new KubeApiError(`${what}: connection lost`, undefined)));
      },
    );
    // A dead connection that never ends: the server's own timeout plus a margin.
    req.setTimeout((w.timeoutSeconds + 30) * 1000, () =>
      req.destroy(new Error(`no data for ${w.timeoutSeconds + 30} s`)),
    );
    const onAbort = () => req.destroy();
    w.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("close", () => {
      w.signal?.removeEventListener("abort", onAbort);
      if (w.signal?.aborted) resolve();
    });
    req.on("error", (err) => {
      if (w.signal?.aborted) resolve();
      else reject(toKubeApiError(what, err));
    });
    req.end();
  });
}

function loadConfig(opts: KubeClientOptions): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (opts.server) {
    const { url, token, caFile } = opts.server;
    kc.loadFromClusterAndUser(
      { name: "explicit", server: url, caFile, skipTLSVerify: url.startsWith("http:") },
      { name: "explicit", token },
    );
    return kc;
  }
  const env = opts.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const saDir = `${opts.serviceAccountRoot ?? ""}${SERVICE_ACCOUNT_DIR}`;
  const tokenFile = `${saDir}/token`;
  if (!host || !port || !fs.existsSync(tokenFile)) {
    throw new AgentError(
      `cannot reach the Kubernetes API: the in-cluster config needs KUBERNETES_SERVICE_HOST, ` +
        `KUBERNETES_SERVICE_PORT and ${tokenFile} (run the agent in its DaemonSet); ` +
        `got host ${JSON.stringify(host ?? null)}, port ${JSON.stringify(port ?? null)}, ` +
        `token file ${fs.existsSync(tokenFile) ? "present" : "missing"}.`,
      ExitCode.BadInput,
    );
  }
  // What KubeConfig.loadFromCluster does, with the environment passed in rather than read
  // from the process. The token provider re-reads the projected token file (every 60 s), so
  // rotated tokens are picked up.
  kc.loadFromClusterAndUser(
    {
      name: "inCluster",
      server: `https://${net.isIPv6(host) ? `[${host}]` : host}:${port}`,
      caFile: `${saDir}/ca.crt`,
      skipTLSVerify: false,
    },
    { name: "inClusterUser", authProvider: { name: "tokenFile", config: { tokenFile } } },
  );
  return kc;
}

/** Event names must be unique per namespace: node name, the time in ns (as client-go), a sequence. */
function eventName(node: string, at: Date, seq: number): string {
  const nanos = BigInt(at.getTime()) * 1_000_000n + BigInt(seq % 1_000_000);
  return `${node}.${nanos.toString(16)}`;
}

function truncate(s: string, limit: number): string {
  return s.length <= limit ? s : `${s.slice(0, limit - 1)}…`;
}

/** One-line error from the client's ApiException (multi-line, with headers) or a network error. */
function toKubeApiError(what: string, err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const e = err as { code?: unknown; body?: unknown; name?: string; message?: string };
  if (typeof e?.code === "number") {
    return new KubeApiError(`${what}: HTTP ${e.code}: ${statusMessage(e.body, e.message)}`, e.code);
  }
  const cause = e?.name === "AbortError" ? "timed out" : (e?.message ?? String(err)).split("\n")[0];
  return new KubeApiError(`${what}: ${cause}`, undefined);
}

/**
 * The `message` of a Kubernetes Status body when there is one, else the client's own message
 * (e.g. "Unauthorized", for which it drops the body), else the body itself, short.
 */
function statusMessage(body: unknown, clientMessage: string | undefined): string {
  let parsed = body;
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body);
    } catch {
      if (body) return body.slice(0, 200);
    }
  }
  const msg = (parsed as { message?: unknown } | undefined)?.message;
  if (typeof msg === "string" && msg) return msg;
  const own = clientMessage?.match(/^Message: (.+)$/m)?.[1];
  if (own) return own;
  return JSON.stringify(parsed ?? null).slice(0, 200);
}
