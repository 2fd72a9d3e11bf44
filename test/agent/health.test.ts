import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { AgentError, ExitCode } from "../../agent/src/lib/errors";
import {
  HealthState,
  parseListen,
  startHealthServer,
  type HealthServer,
} from "../../agent/src/daemon/health";
import { IsolationMode } from "vnode-contract";
import { createMetrics, type AgentMetrics } from "../../agent/src/daemon/metrics";
import { parsePrometheusText, valueOf } from "../support/prometheus";

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, method = "GET", agent?: http.Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("Prometheus text parser used by these tests", () => {
  it.each([
    ["no trailing newline", "# TYPE a counter\na 1"],
    ["sample before TYPE", "a 1\n"],
    ["bad value", "# TYPE a gauge\na one\n"],
    ["unquoted label", "# TYPE a gauge\na{x=1} 1\n"],
    ["bad escape", '# TYPE a gauge\na{x="\\t"} 1\n'],
    ["duplicate series", '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n'],
    ["foreign sample", "# TYPE a gauge\nb 1\n"],
    ["non-contiguous", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# HELP a again\n"],
    ["histogram without +Inf", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
    [
      "histogram not cumulative",
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    ],
  ])("rejects %s", (_name, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });

  it("reads escapes, labels and special values", () => {
    const fams = parsePrometheusText(
      '# HELP a says \\\\ and \\n\n# TYPE a gauge\na{x="q\\"1",y=""} +Inf\na NaN 1700000000\n',
    );
    expect(fams.get("a")!.help).toBe("says \\ and \n");
    expect(fams.get("a")!.samples[0]).toEqual({
      name: "a",
      labels: { x: 'q"1', y: "" },
      value: Infinity,
    });
  });
});

describe("parseListen", () => {
  it.each([
    [":8090", { host: undefined, port: 8090 }],
    [":0", { host: undefined, port: 0 }],
    ["0.0.0.0:8090", { host: "0.0.0.0", port: 8090 }],
    ["127.0.0.1:65535", { host: "127.0.0.1", port: 65535 }],
    ["localhost:9", { host: "localhost", port: 9 }],
    ["[::1]:8090", { host: "::1", port: 8090 }],
    ["[::]:8090", { host: "::", port: 8090 }],
  ])("%s", (value, expected) => {
    expect(parseListen(value)).toEqual(expected);
  });

  const usage = '--listen must be ":PORT", "HOST:PORT" or "[IPV6]:PORT" with PORT 0-65535; got';
  it.each([
    ["8090", "expected one colon between host and port, IPv6 hosts in brackets"],
    ["", "expected one colon between host and port, IPv6 hosts in brackets"],
    ["::1:8090", "expected one colon between host and port, IPv6 hosts in brackets"],
    [":", 'port "" is not a number from 0 to 65535'],
    [":65536", 'port "65536" is not a number from 0 to 65535'],
    [":http", 'port "http" is not a number from 0 to 65535'],
    [":-1", 'port "-1" is not a number from 0 to 65535'],
    ["[1.2.3.4]:80", '"1.2.3.4" is not an IPv6 address'],
    ["bad_host:80", '"bad_host" is not an IPv4 address or a host name'],
  ])("rejects %j", (value, why) => {
    let err: unknown;
    try {
      parseListen(value);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).exitCode).toBe(ExitCode.BadInput);
    expect((err as Error).message).toBe(`${usage} ${JSON.stringify(value)} (${why}).`);
  });
});

describe("health server", () => {
  let clock = 1_000_000;
  let state: HealthState;
  let metrics: AgentMetrics;
  let server: HealthServer;

  beforeEach(async () => {
    clock = 1_000_000;
    state = new HealthState(90_000, () => clock);
    metrics = createMetrics();
    server = await startHealthServer({ listen: "127.0.0.1:0", state, registry: metrics.registry });
  });
  afterEach(() => server.close());

  it("listens where asked and reports the port it got", () => {
    expect(server.address.host).toBe("127.0.0.1");
    expect(server.address.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.address.port}`);
  });

  describe("/healthz", () => {
    it("is 200 while the heartbeat is fresh and 503 once it is stale", async () => {
      expect(await request(`${server.url}/healthz`)).toMatchObject({
        status: 200,
        body: "ok\n",
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
      clock += 90_000;
      expect((await request(`${server.url}/healthz`)).status).toBe(200);
      clock += 1;
      expect(await request(`${server.url}/healthz`)).toMatchObject({
        status: 503,
        body: "daemon loop stalled: last heartbeat 90.0 s ago (limit 90.0 s)\n",
      });
      state.beat();
      expect((await request(`${server.url}/healthz`)).status).toBe(200);
    });

    it("answers HEAD without a body and ignores the query string", async () => {
      expect(await request(`${server.url}/healthz?verbose=1`, "HEAD")).toMatchObject({
        status: 200,
        body: "",
      });
    });
  });

  describe("/readyz", () => {
    it.each([
      [{ handlerVerified: false, labelsSet: false }, 503, "runtime handler not verified\n"],
      [{ handlerVerified: false, labelsSet: true }, 503, "runtime handler not verified\n"],
      [{ handlerVerified: true, labelsSet: false }, 503, "node labels not set\n"],
      [{ handlerVerified: true, labelsSet: true }, 200, "ok\n"],
      [
        { handlerVerified: false, labelsSet: false, reason: "installing\nsecond line" },
        503,
        "installing\n",
      ],
      [{ handlerVerified: true, labelsSet: true, reason: "ignored when ready" }, 200, "ok\n"],
    ])("%j -> %i %j", async (readiness, status, body) => {
      state.setReadiness(readiness);
      expect(await request(`${server.url}/readyz`)).toMatchObject({ status, body });
    });

    it("is not ready before the daemon says anything", async () => {
      expect(await request(`${server.url}/readyz`)).toMatchObject({
        status: 503,
        body: "starting\n",
      });
    });
  });

  describe("/metrics", () => {
    it("serves every agent metric in Prometheus text format", async () => {
      const reply = await request(`${server.url}/metrics`);
      expect(reply.status).toBe(200);
      expect(reply.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
      const fams = parsePrometheusText(reply.body);
      const agentFamilies = [...fams.values()]
        .filter(
          (f) =>
            !f.name.startsWith("vnode_agent_process_") && !f.name.startsWith("vnode_agent_nodejs_"),
        )
        .map((f) => [f.name, f.type]);
      expect(agentFamilies).toEqual([
        ["vnode_agent_isolation_mode", "gauge"],
        ["vnode_agent_install_duration_seconds", "histogram"],
        ["vnode_agent_containerd_restarts_total", "counter"],
        ["vnode_agent_drift_repairs_total", "counter"],
        ["vnode_agent_reconcile_errors_total", "counter"],
        ["vnode_agent_last_successful_reconcile_timestamp_seconds", "gauge"],
        ["vnode_agent_preflight_failures_total", "counter"],
        ["vnode_agent_manager_exits_total", "counter"],
        ["vnode_agent_manager_restarts_total", "counter"],
        ["vnode_agent_manager_container_restarts", "gauge"],
      ]);
      // Unlabelled counters exist at 0 from the start, so rate() works from the first scrape.
      expect(
        valueOf(fams, "vnode_agent_drift_repairs_total", "vnode_agent_drift_repairs_total"),
      ).toBe(0);
      expect(fams.get("vnode_agent_process_resident_memory_bytes")?.type).toBe("gauge");
      expect(
        valueOf(
          fams,
          "vnode_agent_process_resident_memory_bytes",
          "vnode_agent_process_resident_memory_bytes",
        ),
      ).toBeGreaterThan(0);
    });

    it("reports what the daemon recorded, with exact values", async () => {
      metrics.setIsolationMode(IsolationMode.PerNamespace);
      metrics.setIsolationMode(IsolationMode.PerPod);
      metrics.installDuration.observe({ result: "success" }, 3.2);
      metrics.containerdRestarts.inc({ reason: "install" });
      metrics.containerdRestarts.inc({ reason: "drift" });
      metrics.containerdRestarts.inc({ reason: "drift" });
      metrics.driftRepairs.inc();
      metrics.reconcileErrors.inc(3);
      metrics.lastSuccessfulReconcile.set(1735787045);
      metrics.preflightFailures.inc({ check: "cgroup-v2" });
      metrics.managerExits.inc({ code: "1", signal: "" });
      metrics.managerExits.inc({ code: "", signal: "SIGKILL" });
      metrics.managerRestarts.inc(2);

      const fams = parsePrometheusText((await request(`${server.url}/metrics`)).body);
      const samples = (family: string) =>
        fams.get(family)!.samples.map((s) => [s.name.slice(family.length), s.labels, s.value]);

      expect(samples("vnode_agent_isolation_mode")).toEqual([["", { mode: "per-pod" }, 1]]);
      expect(samples("vnode_agent_install_duration_seconds")).toEqual([
        ...[0.5, 1, 2].map((le) => ["_bucket", { le: String(le), result: "success" }, 0]),
        ...[5, 10, 20, 30, 60, 120, 300].map((le) => [
          "_bucket",
          { le: String(le), result: "success" },
          1,
        ]),
        ["_bucket", { le: "+Inf", result: "success" }, 1],
        ["_sum", { result: "success" }, 3.2],
        ["_count", { result: "success" }, 1],
      ]);
      expect(samples("vnode_agent_containerd_restarts_total")).toEqual([
        ["", { reason: "install" }, 1],
        ["", { reason: "drift" }, 2],
      ]);
      expect(samples("vnode_agent_drift_repairs_total")).toEqual([["", {}, 1]]);
      expect(samples("vnode_agent_reconcile_errors_total")).toEqual([["", {}, 3]]);
      expect(samples("vnode_agent_last_successful_reconcile_timestamp_seconds")).toEqual([
        ["", {}, 1735787045],
      ]);
      expect(samples("vnode_agent_preflight_failures_total")).toEqual([
        ["", { check: "cgroup-v2" }, 1],
      ]);
      expect(samples("vnode_agent_manager_exits_total")).toEqual([
        ["", { code: "1", signal: "" }, 1],
        ["", { code: "", signal: "SIGKILL" }, 1],
      ]);
      expect(samples("vnode_agent_manager_restarts_total")).toEqual([["", {}, 2]]);
    });

    it("keeps registries apart: a second agent's metrics do not leak", async () => {
      createMetrics({ processMetrics: false }).driftRepairs.inc(5);
      const fams = parsePrometheusText((await request(`${server.url}/metrics`)).body);
      expect(
        valueOf(fams, "vnode_agent_drift_repairs_total", "vnode_agent_drift_repairs_total"),
      ).toBe(0);
    });
  });

  it.each([
    ["/", 404, "not found: /\n"],
    ["/healthz/extra", 404, "not found: /healthz/extra\n"],
    ["/metricsx", 404, "not found: /metricsx\n"],
  ])("GET %s -> %i", async (p, status, body) => {
    expect(await request(`${server.url}${p}`)).toMatchObject({ status, body });
  });

  it("refuses other methods with 405 and Allow", async () => {
    const reply = await request(`${server.url}/metrics`, "POST");
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe("GET, HEAD");
    expect(reply.body).toBe("method POST not allowed\n");
  });

  it("close() resolves with a keep-alive connection open, and then nothing answers", async () => {
    const agent = new http.Agent({ keepAlive: true });
    try {
      expect((await request(`${server.url}/healthz`, "GET", agent)).status).toBe(200);
      const started = Date.now();
      await server.close();
      expect(Date.now() - started).toBeLessThan(1000);
      await expect(request(`${server.url}/healthz`)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      agent.destroy();
    }
    // afterEach closes again: a second close must not hang either.
    server = { ...server, close: () => Promise.resolve() };
  });
});

describe("startHealthServer errors", () => {
  it("names --listen and the cause when the port is taken", async () => {
    const blocker = http.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const { port } = blocker.address() as AddressInfo;
    try {
      let err: unknown;
      try {
        await startHealthServer({
          listen: `127.0.0.1:${port}`,
          state: new HealthState(1000),
          registry: createMetrics({ processMetrics: false }).registry,
        });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AgentError);
      expect((err as Error).message).toBe(
        `--listen "127.0.0.1:${port}": cannot listen (EADDRINUSE).`,
      );
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it("listens on every interface for :PORT", async () => {
    const s = await startHealthServer({
      listen: ":0",
      state: new HealthState(1000),
      registry: createMetrics({ processMetrics: false }).registry,
    });
    try {
      expect(["::", "0.0.0.0"]).toContain(s.address.host);
      const reply = await request(`http://127.0.0.1:${s.address.port}/healthz`);
      expect(reply.status).toBe(200);
    } finally {
      await s.close();
    }
  });
});
