/**
 * Unary gRPC calls over HTTP/2 on a unix socket, with Node's own `http2` module, following
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md: POST `/<service>/<method>`,
 * `content-type: application/grpc`, `te: trailers`, `grpc-timeout`, one length-prefixed
 * uncompressed message each way, status in `grpc-status`/`grpc-message` trailers (or in the
 * headers of a trailers-only response).
 *
 * Why not `@grpc/grpc-js`: the agent makes two or three unary calls to one local socket per
 * run, and loading grpc-js (~580 KB bundled) plus a channel per call was a large part of the
 * CLI's fixed cost. One HTTP/2 session per socket is kept for the life of the process and
 * reused by every call; it is unref'd while idle, so it never keeps the process alive. A
 * session that the server closes (containerd restarting) is dropped and the next call connects
 * afresh.
 */
import * as http2 from "node:http2";
import * as net from "node:net";

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export enum GrpcStatus {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** A call that ended with a status other than OK; `details` is the server's (or our) reason. */
export class GrpcCallError extends Error {
  constructor(
    readonly code: GrpcStatus,
    readonly details: string,
  ) {
    super(`${GrpcStatus[code] ?? code}: ${details}`);
    this.name = "GrpcCallError";
  }
}

export interface UnaryOptions {
  /** Deadline of the call, connecting included. */
  timeoutMs: number;
  /** Largest response message accepted. Defaults to 16 MiB (a verbose CRI Status can be big). */
  maxReceiveBytes?: number;
}

const DEFAULT_MAX_RECEIVE = 16 * 1024 * 1024;

interface Connection {
  session: http2.ClientHttp2Session;
  /** Settles when the socket is connected (or failed to). */
  ready: Promise<void>;
  /** Calls in flight; the session is ref'd only while there are some. */
  active: number;
}

/** One session per socket path, for the life of the process. */
const connections = new Map<string, Connection>();

function connect(socket: string): Connection {
  const session = http2.connect("http://localhost", {
    createConnection: () => net.connect(socket),
    settings: { enablePush: false },
  });
  const conn: Connection = {
    session,
    active: 0,
    ready: new Promise<void>((resolve, reject) => {
      session.once("connect", () => resolve());
      session.once("error", reject);
    }),
  };
  // Rejections surface through the calls that await `ready`, not as unhandled ones.
  conn.ready.catch(() => undefined);
  const drop = () => {
    if (connections.get(socket) === conn) connections.delete(socket);
  };
  // A server going away (containerd restarting) ends the session: later calls reconnect.
  session.on("goaway", drop);
  session.on("close", drop);
  session.on("error", drop);
  session.unref();
  connections.set(socket, conn);
  return conn;
}

function usable(conn: Connection | undefined): conn is Connection {
  return conn !== undefined && !conn.session.closed && !conn.session.destroyed;
}

/** Closes every cached session (the process exits without it too: idle sessions are unref'd). */
export function closeGrpcConnections(): void {
  for (const conn of connections.values()) conn.session.close();
  connections.clear();
}

/** The number of sessions currently cached (for tests). */
export function openGrpcConnections(): number {
  return connections.size;
}

/** `grpc-timeout`: at most 8 digits, so long deadlines go in seconds. */
function grpcTimeout(ms: number): string {
  const n = Math.max(0, Math.ceil(ms));
  return n < 1e8 ? `${n}m` : `${Math.ceil(n / 1000)}S`;
}

/** The gRPC status for an HTTP status when the server sent no grpc-status (the spec's table). */
function statusForHttp(httpStatus: number): GrpcStatus {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** `grpc-message` is percent-encoded UTF-8. */
function decodeGrpcMessage(raw: unknown): string {
  if (typeof raw !== "string") return "";
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The single message of a unary response body (5-byte prefix: compressed flag, length). */
function unframe(body: Buffer): Buffer {
  if (body.length < 5) {
    throw new GrpcCallError(
      GrpcStatus.INTERNAL,
      `response has ${body.length} byte(s), not one length-prefixed message`,
    );
  }
  if (body[0] !== 0) {
    throw new GrpcCallError(
      GrpcStatus.INTERNAL,
      "response message is compressed, but no compression was negotiated",
    );
  }
  const len = body.readUInt32BE(1);
  if (body.length !== 5 + len) {
    throw new GrpcCallError(
      GrpcStatus.INTERNAL,
      `response message is framed as ${len} byte(s) but the body has ${body.length - 5} after the prefix`,
    );
  }
  return body.subarray(5);
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/**
 * Calls `path` (`/package.Service/Method`) on the gRPC server at unix socket `socket` with the
 * serialised `request`; resolves with the serialised response. Failures reject with a
 * {@link GrpcCallError}: UNAVAILABLE when the socket cannot be reached or the connection
 * drops, DEADLINE_EXCEEDED after `timeoutMs`, else the server's status.
 */
export async function unaryCall(
  socket: string,
  path: string,
  request: Uint8Array,
  opts: UnaryOptions,
): Promise<Buffer> {
  const deadline = Date.now() + opts.timeoutMs;
  const cached = connections.get(socket);
  const conn = usable(cached) ? cached : connect(socket);
  conn.active++;
  conn.session.ref();
  try {
    await connected(conn, deadline);
    return await exchange(
      conn.session,
      path,
      request,
      deadline,
      opts.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE,
    );
  } finally {
    if (--conn.active === 0 && !conn.session.destroyed) conn.session.unref();
  }
}

const deadlineExceeded = () => new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");

/** Waits until the session's socket is connected, or fails by the deadline. */
async function connected(conn: Connection, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<"expired">((resolve) => {
    timer = setTimeout(() => resolve("expired"), Math.max(0, deadline - Date.now()));
  });
  try {
    if ((await Promise.race([conn.ready, expired])) === "expired") {
      // Still not connected: give this connection up, the next call starts a fresh one.
      conn.session.destroy();
      throw deadlineExceeded();
    }
  } catch (err) {
    if (err instanceof GrpcCallError) throw err;
    throw new GrpcCallError(GrpcStatus.UNAVAILABLE, (err as Error).message);
  } finally {
    clearTimeout(timer);
  }
}

/** One request/response on a connected session. */
function exchange(
  session: http2.ClientHttp2Session,
  path: string,
  request: Uint8Array,
  deadline: number,
  maxReceive: number,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": grpcTimeout(deadline - Date.now()),
        "user-agent": "vnode-agent",
      });
    } catch (err) {
      // The session closed between the check and the request: nothing was sent.
      reject(new GrpcCallError(GrpcStatus.UNAVAILABLE, (err as Error).message));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let headers: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    let failure: GrpcCallError | undefined;
    let streamError: Error | undefined;
    const timer = setTimeout(
      () => {
        failure ??= deadlineExceeded();
        stream.close(http2.constants.NGHTTP2_CANCEL);
      },
      Math.max(0, deadline - Date.now()),
    );

    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (received > 5 + maxReceive) {
        failure ??= new GrpcCallError(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `response larger than ${maxReceive} bytes`,
        );
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      chunks.push(chunk);
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("error", (err) => {
      streamError = err;
    });
    stream.on("close", () => {
      clearTimeout(timer);
      try {
        resolve(settle());
      } catch (err) {
        reject(err as Error);
      }
    });
    stream.end(frame(request));

    function settle(): Buffer {
      if (failure) throw failure;
      // A trailers-only response carries the status in its headers.
      const statusHeader = trailers?.["grpc-status"] ?? headers?.["grpc-status"];
      if (statusHeader === undefined) {
        const httpStatus = Number(headers?.[":status"] ?? 0);
        if (headers && httpStatus !== 200) {
          throw new GrpcCallError(
            statusForHttp(httpStatus),
            `HTTP status ${httpStatus} without a gRPC status`,
          );
        }
        const cause = streamError?.message ?? `stream closed with code ${stream.rstCode}`;
        throw new GrpcCallError(
          GrpcStatus.UNAVAILABLE,
          `the connection ended before the call completed (${cause})`,
        );
      }
      const code = Number(statusHeader);
      if (code !== GrpcStatus.OK) {
        throw new GrpcCallError(
          code in GrpcStatus ? code : GrpcStatus.UNKNOWN,
          decodeGrpcMessage(trailers?.["grpc-message"] ?? headers?.["grpc-message"]),
        );
      }
      const contentType = String(headers?.["content-type"] ?? "");
      if (!contentType.startsWith("application/grpc")) {
        throw new GrpcCallError(
          GrpcStatus.UNKNOWN,
          `response content-type is "${contentType}", not application/grpc`,
        );
      }
      return unframe(Buffer.concat(chunks));
    }
  });
}
