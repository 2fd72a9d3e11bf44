/**
 * A minimal client for containerd's CRI API (`runtime.v1.RuntimeService`), used to read the
 * containerd version, to verify that a runtime handler is live after a restart, and (in tests)
 * to start a pod sandbox on it.
 *
 * The proto is embedded as a protobufjs JSON descriptor, so the client works the same under
 * ts-jest and from the esbuild bundle, with no .proto file to ship. It carries only the messages
 * and fields used here; field numbers are copied from k8s.io/cri-api
 * `pkg/apis/runtime/v1/api.proto`, so it stays wire-compatible with every runtime.v1 server.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { type BackoffPolicy, retry } from "../lib/backoff";
import { messageOf } from "../lib/errors";

type Descriptor = Parameters<typeof protoLoader.fromJSON>[0];

// Field names are camelCase, as protobufjs names them when it parses the .proto (only the ids go
// on the wire): `runtime_name = 2` is `runtimeName: str(2)`.

const str = (id: number) => ({ type: "string", id });
const map = (id: number) => ({ keyType: "string", type: "string", id });
const rpc = (name: string) => ({ requestType: `${name}Request`, responseType: `${name}Response` });

const RUNTIME_V1 = {
  nested: {
    runtime: {
      nested: {
        v1: {
          nested: {
            RuntimeService: {
              methods: {
                Version: rpc("Version"),
                RunPodSandbox: rpc("RunPodSandbox"),
                StopPodSandbox: rpc("StopPodSandbox"),
                RemovePodSandbox: rpc("RemovePodSandbox"),
                PodSandboxStatus: rpc("PodSandboxStatus"),
                Status: rpc("Status"),
              },
            },
            VersionRequest: { fields: { version: str(1) } },
            VersionResponse: {
              fields: {
                version: str(1),
                runtimeName: str(2),
                runtimeVersion: str(3),
                runtimeApiVersion: str(4),
              },
            },
            NamespaceMode: { values: { POD: 0, CONTAINER: 1, NODE: 2, TARGET: 3 } },
            NamespaceOption: {
              fields: {
                network: { type: "NamespaceMode", id: 1 },
                pid: { type: "NamespaceMode", id: 2 },
                ipc: { type: "NamespaceMode", id: 3 },
              },
            },
            LinuxSandboxSecurityContext: {
              fields: { namespaceOptions: { type: "NamespaceOption", id: 1 } },
            },
            LinuxPodSandboxConfig: {
              fields: {
                cgroupParent: str(1),
                securityContext: { type: "LinuxSandboxSecurityContext", id: 2 },
              },
            },
            PodSandboxMetadata: {
              fields: {
                name: str(1),
                uid: str(2),
                namespace: str(3),
                attempt: { type: "uint32", id: 4 },
              },
            },
            PodSandboxConfig: {
              fields: {
                metadata: { type: "PodSandboxMetadata", id: 1 },
                hostname: str(2),
                logDirectory: str(3),
                labels: map(6),
                annotations: map(7),
                linux: { type: "LinuxPodSandboxConfig", id: 8 },
              },
            },
            RunPodSandboxRequest: {
              fields: { config: { type: "PodSandboxConfig", id: 1 }, runtimeHandler: str(2) },
            },
            RunPodSandboxResponse: { fields: { podSandboxId: str(1) } },
            StopPodSandboxRequest: { fields: { podSandboxId: str(1) } },
            StopPodSandboxResponse: { fields: {} },
            RemovePodSandboxRequest: { fields: { podSandboxId: str(1) } },
            RemovePodSandboxResponse: { fields: {} },
            PodSandboxStatusRequest: {
              fields: { podSandboxId: str(1), verbose: { type: "bool", id: 2 } },
            },
            PodSandboxState: { values: { SANDBOX_READY: 0, SANDBOX_NOTREADY: 1 } },
            PodSandboxStatus: {
              fields: {
                id: str(1),
                metadata: { type: "PodSandboxMetadata", id: 2 },
                state: { type: "PodSandboxState", id: 3 },
                createdAt: { type: "int64", id: 4 },
                runtimeHandler: str(9),
              },
            },
            PodSandboxStatusResponse: {
              fields: { status: { type: "PodSandboxStatus", id: 1 }, info: map(2) },
            },
            StatusRequest: { fields: { verbose: { type: "bool", id: 1 } } },
            RuntimeCondition: {
              fields: {
                type: str(1),
                status: { type: "bool", id: 2 },
                reason: str(3),
                message: str(4),
              },
            },
            RuntimeStatus: {
              fields: { conditions: { rule: "repeated", type: "RuntimeCondition", id: 1 } },
            },
            RuntimeHandler: { fields: { name: str(1) } },
            StatusResponse: {
              fields: {
                status: { type: "RuntimeStatus", id: 1 },
                info: map(2),
                runtimeHandlers: { rule: "repeated", type: "RuntimeHandler", id: 3 },
              },
            },
          },
        },
      },
    },
  },
};

/** Options of every CRI call. */
export interface CriCallOptions {
  /** Deadline of one call, connection included. Defaults to 5000 ms. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;

/** A failed CRI call; `message` is one sentence naming the socket. */
export class CriError extends Error {
  constructor(
    message: string,
    /** The socket path the call went to. */
    readonly socket: string,
    /** The gRPC status code, when the call reached gRPC. */
    readonly code?: grpc.status,
  ) {
    super(message);
    this.name = "CriError";
  }
}

/** The runtime's name and version, from `Version`. */
export interface CriVersion {
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

/** One condition of `Status`, e.g. `RuntimeReady` or `NetworkReady`. */
export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** What `Status` (verbose) says about the runtime and its handlers. */
export interface CriStatus {
  /** The `RuntimeReady` condition is true. `NetworkReady` is not required: host-network pods and
   * the handler check do not need CNI. */
  ready: boolean;
  conditions: RuntimeCondition[];
  /** Names of the runtime handlers, sorted; the empty default-handler alias is left out. */
  handlers: string[];
  /** Where `handlers` came from: the `runtime_handlers` field (containerd 2.x) or the runtimes
   * of the verbose `config` JSON (containerd 1.6/1.7, whose `runtime_handlers` is empty). */
  handlerSource: "runtime_handlers" | "config" | "none";
}

/** The raw `StatusResponse` as the loader decodes it (camelCase, defaults filled in). */
export interface RawStatusResponse {
  status: { conditions: RuntimeCondition[] } | null;
  info: Record<string, string>;
  runtimeHandlers: { name: string }[];
}

export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";

/** The subset of `PodSandboxConfig` this client sends. */
export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  logDirectory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroupParent?: string;
    securityContext?: {
      namespaceOptions?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode };
    };
  };
}

export type PodSandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";

/** The subset of `PodSandboxStatus` this client reads. */
export interface PodSandboxStatus {
  id: string;
  state: PodSandboxState;
  runtimeHandler: string;
  /** Nanoseconds since the epoch, as a decimal string (int64). */
  createdAt: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number } | null;
}

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
type Unary = (
  req: object,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: Callback<unknown>,
) => void;
type RuntimeServiceClient = grpc.Client & Record<string, Unary>;

let serviceCtor: grpc.ServiceClientConstructor | undefined;

function runtimeServiceCtor(): grpc.ServiceClientConstructor {
  if (!serviceCtor) {
    // The cast: protobufjs types IMethod.comment as required, which the JSON form does not need.
    const definition = protoLoader.fromJSON(RUNTIME_V1 as unknown as Descriptor, {
      longs: String,
      enums: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } };
    };
    serviceCtor = pkg.runtime.v1.RuntimeService;
  }
  return serviceCtor;
}

/** Turns a gRPC failure into a sentence a node operator can act on. */
function describeFailure(
  method: string,
  socket: string,
  timeoutMs: number,
  err: grpc.ServiceError,
): string {
  const details = err.details || err.message;
  let why: string;
  if (err.code === grpc.status.DEADLINE_EXCEEDED) {
    why = `no answer within ${timeoutMs} ms`;
  } else if (err.code === grpc.status.UNAVAILABLE && /ENOENT/.test(details)) {
    why = "the socket does not exist (is containerd running?)";
  } else if (err.code === grpc.status.UNAVAILABLE && /ECONNREFUSED/.test(details)) {
    why = "connection refused (nothing listens on the socket)";
  } else if (err.code === grpc.status.UNIMPLEMENTED) {
    why = `the runtime does not serve runtime.v1 (is the CRI plugin enabled?): ${details}`;
  } else {
    why = `${grpc.status[err.code] ?? err.code}: ${details}`;
  }
  return `CRI ${method} on ${socket} failed: ${why}.`;
}

/** A RuntimeService client on `socket`; `options` are gRPC channel arguments. */
function newClient(socket: string, options: grpc.ChannelOptions = {}): RuntimeServiceClient {
  const Ctor = runtimeServiceCtor();
  return new Ctor(`unix://${socket}`, grpc.credentials.createInsecure(), {
    // The verbose Status info can be large on busy nodes.
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    ...options,
  }) as RuntimeServiceClient;
}

/** One unary call on `client`, with a deadline and a one-sentence error. */
function invoke<T>(
  client: RuntimeServiceClient,
  socket: string,
  method: string,
  request: object,
  opts: CriCallOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise<T>((resolve, reject) => {
    client[method](
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, value) => {
        if (err)
          reject(new CriError(describeFailure(method, socket, timeoutMs, err), socket, err.code));
        else resolve(value as T);
      },
    );
  });
}

/** One unary call on a fresh channel, closed afterwards so nothing keeps the process alive. */
async function call<T>(
  socket: string,
  method: string,
  request: object,
  opts: CriCallOptions = {},
): Promise<T> {
  const client = newClient(socket);
  try {
    return await invoke<T>(client, socket, method, request, opts);
  } finally {
    client.close();
  }
}

/**
 * A CRI channel kept open across calls, for the daemon's `Status` once per interval: a fresh
 * channel per call, as the one-shot commands use, costs a connection and an HTTP/2 session
 * with its allocations on every pass. grpc-js reconnects a kept channel by itself when
 * containerd restarts (the old connection ends, the next call dials the socket again); while
 * it cannot connect, calls fail at once (no waitForReady) and the reconnect backoff is capped
 * at 1 s instead of gRPC's 120 s, so a containerd that is back is seen by the next pass.
 */
export class CriChannel {
  private client: RuntimeServiceClient | undefined;

  constructor(readonly socket: string) {}

  async status(opts?: CriCallOptions): Promise<CriStatus> {
    this.client ??= newClient(this.socket, {
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
    });
    const raw = await invoke<RawStatusResponse>(
      this.client,
      this.socket,
      "Status",
      { verbose: true },
      opts,
    );
    return parseStatus(raw, this.socket);
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}

/** `Version`: the runtime's name and version (the preflight's containerd version). */
export async function criVersion(socket: string, opts?: CriCallOptions): Promise<CriVersion> {
  const res = await call<{
    runtimeName: string;
    runtimeVersion: string;
    runtimeApiVersion: string;
  }>(socket, "Version", { version: "v1" }, opts);
  return {
    runtimeName: res.runtimeName,
    runtimeVersion: res.runtimeVersion,
    runtimeApiVersion: res.runtimeApiVersion,
  };
}

/**
 * Reads the handler names and readiness out of a verbose `StatusResponse`. Pure, so the
 * containerd 2.x shape can be tested without a 2.x daemon. `socket` only names the source in
 * errors.
 */
export function parseStatus(raw: RawStatusResponse, socket: string): CriStatus {
  const conditions = (raw.status?.conditions ?? []).map((c) => ({
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
  }));
  const ready = conditions.some((c) => c.type === "RuntimeReady" && c.status);
  const fromField = raw.runtimeHandlers.map((h) => h.name).filter((n) => n !== "");
  if (fromField.length > 0) {
    return {
      ready,
      conditions,
      handlers: [...new Set(fromField)].sort(),
      handlerSource: "runtime_handlers",
    };
  }
  const configJson = raw.info["config"];
  if (configJson === undefined) {
    return { ready, conditions, handlers: [], handlerSource: "none" };
  }
  let config: unknown;
  try {
    config = JSON.parse(configJson);
  } catch (err) {
    throw new CriError(
      `CRI Status on ${socket} returned a verbose "config" that is not JSON: ${messageOf(err)}.`,
      socket,
    );
  }
  const runtimes = (config as { containerd?: { runtimes?: unknown } } | null)?.containerd?.runtimes;
  if (runtimes === null || typeof runtimes !== "object") {
    return { ready, conditions, handlers: [], handlerSource: "none" };
  }
  return { ready, conditions, handlers: Object.keys(runtimes).sort(), handlerSource: "config" };
}

/** `Status` with verbose info: readiness and the registered runtime handlers. */
export async function criStatus(socket: string, opts?: CriCallOptions): Promise<CriStatus> {
  const raw = await call<RawStatusResponse>(socket, "Status", { verbose: true }, opts);
  return parseStatus(raw, socket);
}

/** `RunPodSandbox`: starts a sandbox on `runtimeHandler` ("" is the default handler); returns its id. */
export async function runPodSandbox(
  socket: string,
  config: PodSandboxConfig,
  runtimeHandler: string,
  opts?: CriCallOptions,
): Promise<string> {
  const res = await call<{ podSandboxId: string }>(
    socket,
    "RunPodSandbox",
    { config, runtimeHandler },
    opts,
  );
  return res.podSandboxId;
}

/** `PodSandboxStatus` of one sandbox. */
export async function podSandboxStatus(
  socket: string,
  id: string,
  opts?: CriCallOptions,
): Promise<PodSandboxStatus> {
  const res = await call<{ status: PodSandboxStatus | null }>(
    socket,
    "PodSandboxStatus",
    { podSandboxId: id, verbose: false },
    opts,
  );
  if (!res.status) {
    throw new CriError(
      `CRI PodSandboxStatus on ${socket} returned no status for sandbox ${id}.`,
      socket,
    );
  }
  const s = res.status;
  return {
    id: s.id,
    state: s.state,
    runtimeHandler: s.runtimeHandler,
    createdAt: s.createdAt,
    metadata: s.metadata,
  };
}

/** `StopPodSandbox`: stops the sandbox's processes (idempotent). */
export async function stopPodSandbox(
  socket: string,
  id: string,
  opts?: CriCallOptions,
): Promise<void> {
  await call(socket, "StopPodSandbox", { podSandboxId: id }, opts);
}

/** `RemovePodSandbox`: removes a stopped sandbox (idempotent). */
export async function removePodSandbox(
  socket: string,
  id: string,
  opts?: CriCallOptions,
): Promise<void> {
  await call(socket, "RemovePodSandbox", { podSandboxId: id }, opts);
}

/**
 * How long to keep calling while containerd is (re)starting. The pause between calls starts at
 * {@link FIRST_POLL_MS} and grows by half each time up to `maxDelayMs`: containerd's CRI answers
 * within tens of ms of its socket (1.6 reports "server is not initialized yet" and RuntimeReady
 * false until the CRI plugin's Run has started), so a coarse fixed pause would be most of the
 * wait, while the cap bounds the calls on a containerd that takes seconds (systemd's
 * RestartSec).
 */
export interface WaitOptions extends CriCallOptions {
  /** Budget of the whole wait; no call starts after it. Defaults to 10 s. */
  waitMs?: number;
  /** The longest pause between two calls. Defaults to 100 ms. */
  maxDelayMs?: number;
}

/** The first pause of a wait. */
export const FIRST_POLL_MS = 5;
const DEFAULT_WAIT_MS = 10_000;
const DEFAULT_MAX_DELAY_MS = 100;

/** The verdict of {@link waitForHandler}. */
export type HandlerCheck =
  | { live: true; attempts: number; handlers: string[] }
  | {
      live: false;
      attempts: number;
      /** Why the handler is not live, one sentence naming the socket and the handler. */
      reason: string;
      /** `unreachable`: containerd never answered; `not-ready`: RuntimeReady stayed false;
       * `missing`: containerd answered and does not know the handler. */
      cause: "unreachable" | "not-ready" | "missing";
      /** The handlers containerd reported, when it answered. */
      handlers: string[];
    };

/** The wait's budget and backoff (pure; exported for the tests). */
export function pollPlan(opts: WaitOptions): { waitMs: number; policy: BackoffPolicy } {
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const maxDelayMs = opts.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  if (!Number.isFinite(waitMs) || waitMs < 0) {
    throw new Error(`waitMs must be a number of ms >= 0; got ${waitMs}.`);
  }
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < 1) {
    throw new Error(`maxDelayMs must be a number of ms >= 1; got ${maxDelayMs}.`);
  }
  return {
    waitMs,
    policy: { initialMs: Math.min(FIRST_POLL_MS, maxDelayMs), maxMs: maxDelayMs, factor: 1.5 },
  };
}

/** A look that may change on the next call: containerd not answering, or not ready yet. */
class NotYet extends Error {
  constructor(readonly check: Extract<HandlerCheck, { live: false }>) {
    super(check.reason);
  }
}

/**
 * Waits until containerd answers `Status` with RuntimeReady and then reports whether `handler`
 * is registered. Connection failures and a not-ready runtime are retried (containerd may still be
 * starting); a ready runtime without the handler is a final answer, since the config is loaded.
 */
export async function waitForHandler(
  socket: string,
  handler: string,
  opts: WaitOptions = {},
): Promise<HandlerCheck> {
  const { waitMs, policy } = pollPlan(opts);
  const look = async (attempt: number): Promise<HandlerCheck> => {
    let status: CriStatus;
    try {
      status = await criStatus(socket, opts);
    } catch (err) {
      throw new NotYet({
        live: false,
        attempts: attempt,
        cause: "unreachable",
        handlers: [],
        reason: `containerd did not answer on ${socket} within ${waitMs} ms (${attempt} call(s)); last error: ${messageOf(err)}`,
      });
    }
    if (!status.ready) {
      const cond = status.conditions.find((c) => c.type === "RuntimeReady");
      const detail = cond ? `${cond.reason} ${cond.message}`.trim() : "no RuntimeReady condition";
      throw new NotYet({
        live: false,
        attempts: attempt,
        cause: "not-ready",
        handlers: status.handlers,
        reason: `containerd on ${socket} answered but its runtime is not ready within ${waitMs} ms (${attempt} call(s)): ${detail || "no reason given"}.`,
      });
    }
    if (status.handlers.includes(handler)) {
      return { live: true, attempts: attempt, handlers: status.handlers };
    }
    return {
      live: false,
      attempts: attempt,
      cause: "missing",
      handlers: status.handlers,
      reason: `containerd on ${socket} does not know runtime handler "${handler}"; it reports ${
        status.handlers.length ? status.handlers.map((h) => `"${h}"`).join(", ") : "no handlers"
      }.`,
    };
  };
  try {
    return await retry((attempt) => look(attempt + 1), {
      attempts: Infinity,
      deadline: Date.now() + waitMs,
      policy,
      isRetryable: (err) => err instanceof NotYet,
    });
  } catch (err) {
    if (err instanceof NotYet) return err.check;
    throw err;
  }
}

/**
 * Waits until containerd answers `Version` (used after a restart), with bounded retries.
 * Throws a {@link CriError} naming the socket and the last failure when it never answers.
 */
export async function waitForCri(socket: string, opts: WaitOptions = {}): Promise<CriVersion> {
  const { waitMs, policy } = pollPlan(opts);
  let calls = 0;
  try {
    return await retry(
      () => {
        calls++;
        return criVersion(socket, opts);
      },
      { attempts: Infinity, deadline: Date.now() + waitMs, policy, isRetryable: () => true },
    );
  } catch (lastError) {
    throw new CriError(
      `containerd did not answer on ${socket} within ${waitMs} ms (${calls} call(s)); last error: ${messageOf(lastError)}`,
      socket,
      lastError instanceof CriError ? lastError.code : undefined,
    );
  }
}
