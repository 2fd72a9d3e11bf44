/**
 * Unary gRPC over HTTP/2 on a unix socket: against a real gRPC server (@grpc/grpc-js, the
 * reference implementation for Node) for the protocol, and against a bare node:http2 server for
 * what a gRPC server rarely does (connection counting, trailers-only answers, odd frames).
 */
import * as grpc from "@grpc/grpc-js";
import * as fs from "node:fs";
import * as http2 from "node:http2";
import * as os from "node:os";
import * as path from "node:path";
import {
  GrpcCallError,
  GrpcStatus,
  closeGrpcConnections,
  openGrpcConnections,
  unaryCall,
} from "../../agent/src/grpcUnary";
import { runTsChild } from "../support/hostRoot";

let dir: string;
beforeAll(() => {
  // Short base: unix socket paths are limited to 108 bytes.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-grpc-"));
});
afterAll(() => {
  closeGrpcConnections();
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => closeGrpcConnections());

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(GrpcCallError);
      const e = err as GrpcCallError;
      return { code: GrpcStatus[e.code], details: e.details };
    },
  );

describe("against a grpc-js server", () => {
  let server: grpc.Server;
  let socket: string;
  const bytes = (b: Buffer) => b;
  const method = (name: string): grpc.MethodDefinition<Buffer, Buffer> => ({
    path: `/test.v1.Echo/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  });
  /** How far ahead the server saw the deadline of the last Reverse call, in ms. */
  let deadlineAhead: number | undefined;

  beforeAll(async () => {
    socket = path.join(dir, "grpcjs.sock");
    server = new grpc.Server();
    server.addService(
      { Reverse: method("Reverse"), Fail: method("Fail"), Hang: method("Hang") },
      {
        Reverse: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          const d = call.getDeadline();
          deadlineAhead = (d instanceof Date ? d.getTime() : d) - Date.now();
          cb(null, Buffer.from([...call.request].reverse()));
        },
        Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          cb({ code: grpc.status.NOT_FOUND, details: "no sandbox ü 100% gone" });
        },
        Hang: () => undefined,
      },
    );
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  it("sends the request with a deadline and returns the response bytes", async () => {
    const out = await unaryCall(socket, "/test.v1.Echo/Reverse", Buffer.from([1, 2, 3, 0]), {
      timeoutMs: 5000,
    });
    expect([...out]).toEqual([0, 3, 2, 1]);
    // grpc-timeout reached the server (without it the deadline is Infinity).
    expect(deadlineAhead).toBeGreaterThan(3000);
    expect(deadlineAhead).toBeLessThanOrEqual(5000);
    // An empty message (all fields default) is a zero-length frame.
    expect(
      (await unaryCall(socket, "/test.v1.Echo/Reverse", Buffer.alloc(0), { timeoutMs: 5000 }))
        .length,
    ).toBe(0);
  });

  it("reports the server's status and its percent-encoded message", async () => {
    expect(
      await failure(unaryCall(socket, "/test.v1.Echo/Fail", Buffer.alloc(0), { timeoutMs: 5000 })),
    ).toEqual({ code: "NOT_FOUND", details: "no sandbox ü 100% gone" });
  });

  it("reports UNIMPLEMENTED for a method the server does not have", async () => {
    const r = await failure(
      unaryCall(socket, "/test.v1.Echo/Nope", Buffer.alloc(0), { timeoutMs: 5000 }),
    );
    expect(r.code).toBe("UNIMPLEMENTED");
  });

  it("gives up at the deadline", async () => {
    const started = Date.now();
    expect(
      await failure(unaryCall(socket, "/test.v1.Echo/Hang", Buffer.alloc(0), { timeoutMs: 300 })),
    ).toEqual({ code: "DEADLINE_EXCEEDED", details: "Deadline exceeded" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("refuses a response larger than the limit", async () => {
    expect(
      await failure(
        unaryCall(socket, "/test.v1.Echo/Reverse", Buffer.alloc(2000, 1), {
          timeoutMs: 5000,
          maxReceiveBytes: 1000,
        }),
      ),
    ).toEqual({ code: "RESOURCE_EXHAUSTED", details: "response larger than 1000 bytes" });
  });
});

describe("against a bare HTTP/2 server", () => {
  let server: http2.Http2Server;
  let socket: string;
  let sessions = 0;
  const live = new Set<http2.ServerHttp2Session>();
  /** What the server does with the next request (path -> behaviour). */
  const handlers: Record<string, (stream: http2.ServerHttp2Stream) => void> = {
    "/ok": (stream) => {
      stream.respond(
        { ":status": 200, "content-type": "application/grpc" },
        { waitForTrailers: true },
      );
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0xab, 0xcd]));
    },
    "/trailers-only": (stream) => {
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/grpc",
          "grpc-status": "7",
          "grpc-message": "not%20allowed",
        },
        { endStream: true },
      );
    },
    "/http404": (stream) => {
      stream.respond({ ":status": 404 }, { endStream: true });
    },
    "/compressed": (stream) => {
      stream.respond(
        { ":status": 200, "content-type": "application/grpc" },
        { waitForTrailers: true },
      );
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from([1, 0, 0, 0, 1, 0xff]));
    },
    "/short-frame": (stream) => {
      stream.respond(
        { ":status": 200, "content-type": "application/grpc" },
        { waitForTrailers: true },
      );
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from([0, 0, 0, 0, 9, 1]));
    },
    "/reset": (stream) => {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    },
    "/hangup": (stream) => {
      stream.session?.destroy();
    },
  };

  beforeAll(async () => {
    socket = path.join(dir, "h2.sock");
    server = http2.createServer();
    server.on("session", (s) => {
      sessions++;
      live.add(s);
      s.on("close", () => live.delete(s));
    });
    server.on("stream", (stream, headers) => {
      expect(headers["content-type"]).toBe("application/grpc");
      expect(headers.te).toBe("trailers");
      expect(headers["grpc-timeout"]).toMatch(/^[0-9]{1,8}m$/);
      stream.resume();
      // A stream the handler resets reports it as an error on this side too.
      stream.on("error", () => undefined);
      stream.on("end", () => handlers[String(headers[":path"])](stream));
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });
  afterAll(async () => {
    for (const s of live) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const call = (p: string) => unaryCall(socket, p, Buffer.from([1]), { timeoutMs: 5000 });

  it("reuses one connection for every call, and reconnects after the server closed it", async () => {
    const before = sessions;
    for (let i = 0; i < 3; i++) expect([...(await call("/ok"))]).toEqual([0xab, 0xcd]);
    expect(sessions - before).toBe(1);
    expect(openGrpcConnections()).toBe(1);

    // What a restarting containerd does: close the connection while it is idle.
    for (const s of live) s.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(openGrpcConnections()).toBe(0);
    expect([...(await call("/ok"))]).toEqual([0xab, 0xcd]);
    expect(sessions - before).toBe(2);
  });

  it("reads the status of a trailers-only response", async () => {
    expect(await failure(call("/trailers-only"))).toEqual({
      code: "PERMISSION_DENIED",
      details: "not allowed",
    });
  });

  it("maps an HTTP error without gRPC status per the gRPC spec", async () => {
    expect(await failure(call("/http404"))).toEqual({
      code: "UNIMPLEMENTED",
      details: "HTTP status 404 without a gRPC status",
    });
  });

  it("refuses malformed response frames", async () => {
    expect(await failure(call("/compressed"))).toEqual({
      code: "INTERNAL",
      details: "response message is compressed, but no compression was negotiated",
    });
    expect(await failure(call("/short-frame"))).toEqual({
      code: "INTERNAL",
      details: "response message is framed as 9 byte(s) but the body has 1 after the prefix",
    });
  });

  it("reports a reset stream or a dropped connection as UNAVAILABLE", async () => {
    const reset = await failure(call("/reset"));
    expect(reset.code).toBe("UNAVAILABLE");
    expect(reset.details).toMatch(/^the connection ended before the call completed \(/);
    const hangup = await failure(call("/hangup"));
    expect(hangup.code).toBe("UNAVAILABLE");
    // The next call gets a fresh connection.
    expect([...(await call("/ok"))]).toEqual([0xab, 0xcd]);
  });

  it("does not keep the process alive after a call", async () => {
    const script = path.join(dir, "child.ts");
    fs.writeFileSync(
      script,
      `import { unaryCall } from ${JSON.stringify(path.resolve(__dirname, "../../agent/src/grpcUnary"))};
unaryCall(${JSON.stringify(socket)}, "/ok", Buffer.from([1]), { timeoutMs: 5000 }).then((b) =>
  console.log([...b].join(",")),
);
`,
    );
    const started = Date.now();
    const r = await runTsChild(script, []);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: "171,205\n" });
    // It exits on its own although the server keeps the connection open.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("without a server", () => {
  it("says the socket does not exist", async () => {
    const r = await failure(
      unaryCall(path.join(dir, "missing.sock"), "/x", Buffer.alloc(0), { timeoutMs: 2000 }),
    );
    expect(r).toEqual({
      code: "UNAVAILABLE",
      details: `connect ENOENT ${path.join(dir, "missing.sock")}`,
    });
  });

  it("says the connection was refused when nothing listens on the path", async () => {
    const notASocket = path.join(dir, "plain-file");
    fs.writeFileSync(notASocket, "");
    const r = await failure(unaryCall(notASocket, "/x", Buffer.alloc(0), { timeoutMs: 2000 }));
    expect(r).toEqual({ code: "UNAVAILABLE", details: `connect ECONNREFUSED ${notASocket}` });
    expect(openGrpcConnections()).toBe(0);
  });
});
