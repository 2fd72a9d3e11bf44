/**
 * The webhook over real HTTPS: certificates made by openssl in the test, a keep-alive client
 * posting AdmissionReviews, bad requests answered with a status and a message (and the server
 * still serving after them), and a Secret-style rotation of the certificate files picked up
 * without a restart. Last, the CLI as a process: `vnode-agent webhook`, SIGTERM drains.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { TLSSocket } from "node:tls";
import { enforcementRules } from "vnode-contract";
import { AgentError } from "../../agent/src/lib/errors";
import { startWebhookServer, type WebhookServer } from "../../agent/src/webhook/server";
import { admissionReview, CASES, RULES } from "../support/admissionCases";
import { type Ca, makeCa, opensslUnavailable, secretDir } from "../support/tlsCerts";

const why = opensslUnavailable();
if (why && process.env.CI === "true")
  throw new Error(`webhook-server test needs openssl on CI: ${why}`);
if (why) console.warn(`skipping webhook-server test: ${why}`);
const maybe = why ? describe.skip : describe;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  reusedSocket: boolean;
  fingerprint: string;
}

function request(
  agent: https.Agent,
  url: string,
  opts: { method?: string; path: string; body?: string | Buffer; headers?: Record<string, string> },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${url}${opts.path}`,
      {
        agent,
        method: opts.method ?? "POST",
        headers: {
          ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        // Read now: a keep-alive socket goes back to the agent (res.socket = null) at 'end'.
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            reusedSocket: req.reusedSocket,
            fingerprint,
          }),
        );
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${opts.path} in 10 s`)));
    req.end(opts.body);
  });
}

const review = (i = 0, uid = `uid-${i}`) => JSON.stringify(admissionReview(CASES[i], uid));

maybe("webhook HTTPS server", () => {
  let work: string;
  let ca: Ca;
  let secret: ReturnType<typeof secretDir>;
  let first: { cert: string; key: string };
  let server: WebhookServer;
  let agent: https.Agent;
  const warnings: string[] = [];

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-webhook-"));
    ca = makeCa(path.join(work, "ca"));
    first = ca.issue("vnode-webhook.vnode-runtime.svc");
    secret = secretDir(path.join(work, "tls"), first);
    server = await startWebhookServer({
      listen: "127.0.0.1:0",
      tlsCertFile: secret.certFile,
      tlsKeyFile: secret.keyFile,
      rules: enforcementRules({ ...RULES, classes: { "per-namespace": "vnode" } }),
      maxBodyBytes: 64 * 1024,
      reloadIntervalMs: 200,
      log: {
        info() {},
        debug() {},
        warn: (o: object, msg: string) => warnings.push(`${msg}: ${JSON.stringify(o)}`),
      },
    });
    agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.certPem });
  });

  afterAll(async () => {
    agent?.destroy();
    await server?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("each validating path judges by what it says of the namespace (only per-namespace offered here)", async () => {
    const judge = async (p: string, c: (typeof CASES)[number]) => {
      const r = await request(agent, server.url, {
        path: p,
        body: JSON.stringify(admissionReview(c, "uid-v")),
      });
      expect(r.status).toBe(200);
      return JSON.parse(r.body).response as { allowed: boolean; status?: { message: string } };
    };
    const named = (prefix: string) =>
      CASES.find((c) => c.name.startsWith(prefix)) as (typeof CASES)[number];
    const vnodePod = named("vNode class with plain container ports");
    expect(await judge("/validate/per-namespace", vnodePod)).toEqual({
      uid: "uid-v",
      allowed: true,
    });
    // per-pod has no class here: every pod of a namespace labelled per-pod is refused.
    expect((await judge("/validate/per-pod", vnodePod)).status?.message).toBe(
      'namespace "team-a" has label vnode.loft.sh/isolation=per-pod, an isolation mode this cluster does not offer; no pod is admitted there until the label is per-namespace or is removed (default mode per-namespace)',
    );
    expect((await judge("/validate/unknown-isolation", vnodePod)).status?.message).toBe(
      'namespace "team-a" has label vnode.loft.sh/isolation with a value that is not an isolation mode; no pod is admitted there until the label is per-namespace or is removed (default mode per-namespace)',
    );
    expect(
      (await judge("/validate/per-namespace", named("hostNetwork under the namespace's class")))
        .status?.message,
    ).toBe(
      "hostNetwork is not supported by vNode: the pod sets spec.hostNetwork: true (for such pods the API server also sets every port's hostPort to its containerPort)",
    );
  });

  test("reviews over one keep-alive connection: exact AdmissionReview v1 answers", async () => {
    const a = await request(agent, server.url, { path: "/mutate", body: review(0, "uid-a") });
    expect(a.status).toBe(200);
    expect(a.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(a.body)).toEqual({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: {
        uid: "uid-a",
        allowed: true,
        patchType: "JSONPatch",
        patch: Buffer.from(
          '[{"op":"add","path":"/spec/runtimeClassName","value":"vnode"}]',
        ).toString("base64"),
      },
    });
    const b = await request(agent, server.url, { path: "/validate", body: review(0, "uid-b") });
    expect(b.reusedSocket).toBe(true);
    expect(JSON.parse(b.body)).toEqual({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: {
        uid: "uid-b",
        allowed: false,
        status: {
          code: 403,
          reason: "Forbidden",
          message:
            'pod has no runtimeClassName; pods in namespace "team-a" must use a vNode RuntimeClass (vnode)',
        },
      },
    });
    const c = await request(agent, server.url, {
      path: "/mutate/per-namespace",
      body: review(0, "uid-c"),
    });
    expect(c.reusedSocket).toBe(true);
    expect(JSON.parse(c.body).response.patch).toBe(JSON.parse(a.body).response.patch);
  });

  test("health endpoints", async () => {
    const h = await request(agent, server.url, { method: "GET", path: "/healthz" });
    expect([h.status, h.body]).toEqual([200, "ok\n"]);
    const r = await request(agent, server.url, { method: "GET", path: "/readyz" });
    expect([r.status, r.body]).toEqual([200, "ok\n"]);
  });

  const bad: [string, Parameters<typeof request>[2], number, string | RegExp][] = [
    [
      "malformed JSON",
      { path: "/validate", body: '{"apiVersion": "admission.k8s.io/v1",' },
      400,
      /^malformed JSON body: .+\n$/,
    ],
    [
      "a review of another kind",
      { path: "/validate", body: JSON.stringify({ apiVersion: "v1", kind: "Pod" }) },
      400,
      'apiVersion must be admission.k8s.io/v1 (the only version served); got "v1".\n',
    ],
    [
      "a wrong content-type",
      { path: "/validate", body: review(), headers: { "content-type": "text/plain" } },
      400,
      'content-type must be application/json; got "text/plain"\n',
    ],
    [
      "a body over the limit, announced by content-length",
      { path: "/validate", body: Buffer.alloc(64 * 1024 + 1, 0x20) },
      413,
      "request body exceeds the limit of 65536 bytes\n",
    ],
    [
      "a body over the limit, chunked",
      {
        path: "/mutate",
        body: Buffer.alloc(200 * 1024, 0x20),
        headers: { "transfer-encoding": "chunked" },
      },
      413,
      "request body exceeds the limit of 65536 bytes\n",
    ],
    [
      "GET on a review path",
      { method: "GET", path: "/validate" },
      405,
      "method GET not allowed on /validate; use POST\n",
    ],
    [
      "a mode without a class",
      { path: "/mutate/per-pod", body: review() },
      404,
      "no RuntimeClass is configured for mode per-pod (--class per-pod=NAME): /mutate/per-pod; served paths: /mutate, /mutate/per-namespace, /validate/per-namespace, /validate/per-pod, /validate/unknown-isolation, /validate, /healthz, /readyz\n",
    ],
    [
      "an unknown path",
      { path: "/admit", body: review() },
      404,
      "not found: /admit; served paths: /mutate, /mutate/per-namespace, /validate/per-namespace, /validate/per-pod, /validate/unknown-isolation, /validate, /healthz, /readyz\n",
    ],
  ];
  test.each(bad)(
    "%s: status and message, and the server keeps serving",
    async (_n, opts, status, body) => {
      // A fresh agent per case: a 413 closes its connection.
      const own = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.certPem });
      try {
        const r = await request(own, server.url, opts);
        expect(r.status).toBe(status);
        if (typeof body === "string") expect(r.body).toBe(body);
        else expect(r.body).toMatch(body);
        const ok = await request(own, server.url, { path: "/validate", body: review(0, "after") });
        expect([ok.status, JSON.parse(ok.body).response.uid]).toEqual([200, "after"]);
      } finally {
        own.destroy();
      }
    },
  );

  test("plain HTTP and garbage on the TLS port are dropped; the server keeps serving", async () => {
    for (const junk of ["GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n", "\x16\x03\x01\x00\x05hello"]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(server.address.port, "127.0.0.1", () => s.write(junk));
        s.on("close", () => resolve());
        s.on("error", () => undefined);
        s.resume();
      });
    }
    const r = await request(agent, server.url, { method: "GET", path: "/healthz" });
    expect(r.status).toBe(200);
  });

  test("a rotated certificate is served to new connections without a restart", async () => {
    const before = await request(new https.Agent({ ca: ca.certPem }), server.url, {
      method: "GET",
      path: "/healthz",
    });
    expect(before.fingerprint).toBe(new X509Certificate(first.cert).fingerprint256);
    expect(server.fingerprint()).toBe(before.fingerprint);

    const second = ca.issue("vnode-webhook.vnode-runtime.svc");
    const want = new X509Certificate(second.cert).fingerprint256;
    expect(want).not.toBe(before.fingerprint);
    secret.rotate(second);
    // The poll (200 ms here) notices the swap by itself: no reload() call, no signal.
    const deadline = Date.now() + 10_000;
    while (server.fingerprint() !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(server.fingerprint()).toBe(want);

    const after = await request(new https.Agent({ ca: ca.certPem }), server.url, {
      path: "/validate",
      body: review(0, "rotated"),
    });
    expect(after.fingerprint).toBe(want);
    expect(JSON.parse(after.body).response.uid).toBe("rotated");
    // The keep-alive connection opened before the rotation still works.
    const old = await request(agent, server.url, { path: "/validate", body: review(0, "old") });
    expect([old.reusedSocket, old.fingerprint]).toEqual([true, before.fingerprint]);
  });

  test("a half-written rotation (new cert, old key) keeps the previous pair", async () => {
    const current = server.fingerprint();
    const third = ca.issue("vnode-webhook.vnode-runtime.svc");
    const dataDir = fs.realpathSync(path.join(work, "tls", "..data"));
    fs.writeFileSync(path.join(dataDir, "tls.crt"), third.cert);
    warnings.length = 0;
    expect(await server.reload()).toBe(false);
    expect(server.fingerprint()).toBe(current);
    // The 200 ms reload timer may have tried too: at least one warning, every one of them this.
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    for (const w of warnings) {
      expect(w).toMatch(
        /^certificate not reloaded; serving the previous one: \{"reason":".*are not a usable certificate and key pair/,
      );
    }
    const r = await request(new https.Agent({ ca: ca.certPem }), server.url, {
      method: "GET",
      path: "/healthz",
    });
    expect(r.fingerprint).toBe(current);
    fs.writeFileSync(path.join(dataDir, "tls.key"), third.key);
    expect(await server.reload()).toBe(true);
    expect(server.fingerprint()).toBe(new X509Certificate(third.cert).fingerprint256);
  });

  test("startup fails with a message naming the flag", async () => {
    const rules = enforcementRules(RULES);
    const start = (cert: string, key: string) =>
      startWebhookServer({ listen: "127.0.0.1:0", tlsCertFile: cert, tlsKeyFile: key, rules });
    const missing = path.join(work, "missing.crt");
    await expect(start(missing, secret.keyFile)).rejects.toThrow(
      new AgentError(`--tls-cert-file ${missing}: cannot read (ENOENT).`, 2),
    );
    const other = ca.issue("other");
    const keyFile = path.join(work, "other.key");
    fs.writeFileSync(keyFile, other.key);
    await expect(start(secret.certFile, keyFile)).rejects.toThrow(
      /^--tls-cert-file .*tls\.crt and --tls-key-file .*other\.key are not a usable certificate and key pair \(.+\)\.$/,
    );
    await expect(start(keyFile, keyFile)).rejects.toThrow(
      /^--tls-cert-file .*other\.key: not a PEM certificate \(.+\)\.$/,
    );
  });

  test("readyz answers 503 after setNotReady", async () => {
    server.setNotReady("shutting down (SIGTERM)");
    const r = await request(agent, server.url, { method: "GET", path: "/readyz" });
    expect([r.status, r.body]).toEqual([503, "shutting down (SIGTERM)\n"]);
    const h = await request(agent, server.url, { method: "GET", path: "/healthz" });
    expect(h.status).toBe(200);
  });
});

maybe("vnode-agent webhook, the process", () => {
  let child: ChildProcess | undefined;
  let work: string;

  afterAll(() => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("serves reviews, then on SIGTERM fails /readyz for --shutdown-delay and exits 0", async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-webhook-cli-"));
    const ca = makeCa(path.join(work, "ca"));
    const secret = secretDir(path.join(work, "tls"), ca.issue("webhook"));
    const main = path.resolve(__dirname, "../../agent/src/cli/main.ts");
    // One process (tsx as a loader, not its CLI wrapper), in its own group so afterAll can
    // kill everything it started.
    child = spawn(
      process.execPath,
      ["--import", "tsx", main, "webhook", "--listen", "127.0.0.1:0"]
        .concat(["--tls-cert-file", secret.certFile, "--tls-key-file", secret.keyFile])
        .concat(["--class", "per-namespace=vnode", "--class", "per-pod=vnode-per-pod"])
        .concat(["--exclude-namespace", "vnode-runtime", "--shutdown-delay", "1500ms"]),
      {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, POD_NAMESPACE: "vnode-system" },
      },
    );
    const lines: Record<string, unknown>[] = [];
    let stderr = "";
    const waitFor = (msg: string, timeoutMs = 30_000) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`no "${msg}" log line; stderr:\n${stderr}`)),
          timeoutMs,
        );
        const check = () => {
          const hit = lines.find((l) => l.msg === msg);
          if (hit) {
            clearTimeout(t);
            child?.stderr?.off("data", check);
            resolve(hit);
          }
        };
        child?.stderr?.on("data", check);
        check();
      });
    child.stderr?.setEncoding("utf8");
    let partial = "";
    child.stderr?.on("data", (d: string) => {
      stderr += d;
      const parts = (partial + d).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        if (line.startsWith("{")) lines.push(JSON.parse(line));
      }
    });
    const listening = await waitFor("webhook listening");
    const url = `https://127.0.0.1:${listening.port as number}`;
    const rules = await waitFor("enforcing tenancy rules");
    expect(rules.excludedNamespaces).toEqual([
      "kube-node-lease",
      "kube-system",
      "vnode-runtime",
      "vnode-system",
    ]);
    const agent = new https.Agent({ keepAlive: true, ca: ca.certPem });
    try {
      const labelled = admissionReview({ ...CASES[1] }, "cli");
      const r = await request(agent, url, {
        path: "/mutate/per-pod",
        body: JSON.stringify(labelled),
      });
      expect(JSON.parse(r.body).response.patch).toBe(
        Buffer.from(
          '[{"op":"add","path":"/spec/runtimeClassName","value":"vnode-per-pod"}]',
        ).toString("base64"),
      );
      const exited = new Promise<number | null>((resolve) =>
        child?.on("exit", (code) => resolve(code)),
      );
      child.kill("SIGTERM");
      await waitFor("shutting down");
      const ready = await request(agent, url, { method: "GET", path: "/readyz" });
      expect([ready.status, ready.body]).toEqual([503, "shutting down (SIGTERM)\n"]);
      // Reviews are still answered while the Service drains.
      const late = await request(agent, url, { path: "/validate", body: review(0, "late") });
      expect(JSON.parse(late.body).response.uid).toBe("late");
      expect(await exited).toBe(0);
      expect(lines.map((l) => l.msg)).toContain("stopped");
    } finally {
      agent.destroy();
    }
  });
});
