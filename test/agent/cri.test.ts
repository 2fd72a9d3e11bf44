import * as fs from "node:fs";
import {
  CriChannel,
  CriError,
  type CriStatus,
  criStatus,
  criVersion,
  parseStatus,
  podSandboxStatus,
  removePodSandbox,
  runPodSandbox,
  stopPodSandbox,
  FIRST_POLL_MS,
  pollPlan,
  waitForCri,
  waitForHandler,
} from "../../agent/src/cri/client";
import { backoffDelay } from "../../agent/src/lib/backoff";
import {
  describeWithContainerd,
  type TestContainerd,
  startContainerd,
} from "../support/containerd";

const ready = { type: "RuntimeReady", status: true, reason: "", message: "" };
const noNetwork = {
  type: "NetworkReady",
  status: false,
  reason: "NetworkPluginNotReady",
  message: "cni plugin not initialized",
};

describe("parseStatus", () => {
  it("takes handlers from runtime_handlers (containerd 2.x), dropping the default alias", () => {
    const status = parseStatus(
      {
        status: { conditions: [ready, noNetwork] },
        info: { config: JSON.stringify({ containerd: { runtimes: { stale: {} } } }) },
        runtimeHandlers: [{ name: "runc" }, { name: "" }, { name: "vnode" }],
      },
      "/run/containerd/containerd.sock",
    );
    expect(status).toEqual({
      ready: true,
      conditions: [ready, noNetwork],
      handlers: ["runc", "vnode"],
      handlerSource: "runtime_handlers",
    });
  });

  it("falls back to the runtimes of the verbose config JSON (containerd 1.6/1.7)", () => {
    const status = parseStatus(
      {
        status: { conditions: [{ ...ready, status: false, reason: "Starting" }] },
        info: {
          config: JSON.stringify({ containerd: { runtimes: { vnode: {}, runc: {}, nvidia: {} } } }),
        },
        runtimeHandlers: [],
      },
      "/s.sock",
    );
    expect(status.ready).toBe(false);
    expect(status.handlers).toEqual(["nvidia", "runc", "vnode"]);
    expect(status.handlerSource).toBe("config");
  });

  it("reports no handlers when Status was not verbose", () => {
    expect(parseStatus({ status: null, info: {}, runtimeHandlers: [] }, "/s.sock")).toEqual({
      ready: false,
      conditions: [],
      handlers: [],
      handlerSource: "none",
    });
  });

  it("names the socket when the verbose config is not JSON", () => {
    expect(() =>
      parseStatus({ status: null, info: { config: "{oops" }, runtimeHandlers: [] }, "/x/c.sock"),
    ).toThrow(/^CRI Status on \/x\/c\.sock returned a verbose "config" that is not JSON: /);
  });
});

describe("CRI calls without a daemon", () => {
  it("fails with one sentence naming a socket that does not exist", async () => {
    const err = await criVersion("/nonexistent/vnode-test.sock", { timeoutMs: 2000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CriError);
    expect((err as CriError).message).toBe(
      "CRI Version on /nonexistent/vnode-test.sock failed: the socket does not exist (is containerd running?).",
    );
  });

  it("waitForCri gives up when its budget is spent and says so", async () => {
    const started = Date.now();
    const err = await waitForCri("/nonexistent/vnode-test.sock", {
      waitMs: 150,
      maxDelayMs: 50,
    }).then(
      () => new Error("containerd answered"),
      (e: unknown) => e as Error,
    );
    const m =
      /^containerd did not answer on \/nonexistent\/vnode-test\.sock within 150 ms \((\d+) call\(s\)\); last error: (.*)$/.exec(
        err.message,
      );
    expect(m?.[2]).toBe(
      "CRI Version on /nonexistent/vnode-test.sock failed: the socket does not exist (is containerd running?).",
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    // The pauses (5, 8, 11, 17, 25, 38, 50 ms...) allow at most 9 calls in 150 ms; how many run
    // depends on how long each failing call takes on a loaded machine (3 seen at load 5), so
    // only the bound is asserted here and the schedule itself by the pollPlan test below.
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(m?.[1])).toBeLessThanOrEqual(9);
  });

  it("the wait starts with 5 ms pauses, grows them by half up to the cap, and stops at its budget", () => {
    const { policy, waitMs } = pollPlan({ waitMs: 400, maxDelayMs: 100 });
    expect(waitMs).toBe(400);
    expect(policy).toEqual({ initialMs: FIRST_POLL_MS, maxMs: 100, factor: 1.5 });
    expect(FIRST_POLL_MS).toBe(5);
    expect(Array.from({ length: 10 }, (_, i) => backoffDelay(i, policy))).toEqual([
      5, 8, 11, 17, 25, 38, 57, 85, 100, 100,
    ]);
    expect(pollPlan({}).waitMs).toBe(10_000);
    expect(pollPlan({}).policy.maxMs).toBe(100);
    expect(pollPlan({ maxDelayMs: 2 }).policy.initialMs).toBe(2);
  });

  it("rejects nonsense wait settings", async () => {
    await expect(waitForHandler("/x.sock", "vnode", { waitMs: -1 })).rejects.toThrow(
      "waitMs must be a number of ms >= 0; got -1.",
    );
    await expect(waitForCri("/x.sock", { maxDelayMs: 0 })).rejects.toThrow(
      "maxDelayMs must be a number of ms >= 1; got 0.",
    );
  });
});

describeWithContainerd(
  "CRI client against a real containerd",
  () => {
    let ctrd: TestContainerd;
    beforeAll(async () => {
      ctrd = await startContainerd({ pauseImage: true });
    }, 120_000);
    afterAll(async () => {
      await ctrd?.cleanup();
    });

    it("reads the runtime name and version", async () => {
      const version = await criVersion(ctrd.socket);
      expect(version.runtimeName).toBe("containerd");
      expect(version.runtimeApiVersion).toBe("v1");
      // The same version containerd itself reports, e.g. "1.6.20~ds1".
      const { execFileSync } = await import("node:child_process");
      const cli = execFileSync("containerd", ["--version"], { encoding: "utf8" }).split(" ")[2];
      expect(version.runtimeVersion).toBe(cli);
    });

    it("lists runc from the verbose config, with the runtime ready", async () => {
      const status = await criStatus(ctrd.socket);
      expect(status.ready).toBe(true);
      expect(status.handlers).toEqual(["runc"]);
      expect(status.handlerSource).toBe("config");
    });

    it("sees a vnode handler after the config gains it and containerd restarts through the script", async () => {
      const before = await waitForHandler(ctrd.socket, "vnode", { waitMs: 100 });
      expect(before).toEqual({
        live: false,
        attempts: 1,
        cause: "missing",
        handlers: ["runc"],
        reason: `containerd on ${ctrd.socket} does not know runtime handler "vnode"; it reports "runc".`,
      });

      const oldPid = ctrd.pid;
      fs.appendFileSync(
        ctrd.configPath,
        `
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode]
      runtime_type = "io.containerd.runc.v2"
`,
      );
      const { execFileSync } = await import("node:child_process");
      execFileSync(ctrd.restartScript, { stdio: "pipe" });
      expect(ctrd.pid).not.toBe(oldPid);

      const after = await waitForHandler(ctrd.socket, "vnode", { waitMs: 10_000 });
      expect(after.live).toBe(true);
      expect(after.handlers).toEqual(["runc", "vnode"]);
    });

    it("a kept CriChannel answers across a containerd restart (it reconnects by itself)", async () => {
      const channel = new CriChannel(ctrd.socket);
      try {
        expect((await channel.status()).ready).toBe(true);
        const pid = ctrd.pid;
        await ctrd.restart();
        expect(ctrd.pid).not.toBe(pid);
        // The first call may still meet the closed connection; the reconnect backoff is capped
        // at 1 s, so a few calls later the same channel reaches the new containerd.
        let status: CriStatus | undefined;
        for (let i = 0; i < 50 && status === undefined; i++) {
          status = await channel.status({ timeoutMs: 1000 }).catch(() => undefined);
          if (status === undefined) await new Promise((r) => setTimeout(r, 100));
        }
        expect(status?.ready).toBe(true);
      } finally {
        channel.close();
      }
    });

    it("waitForHandler called while containerd is down keeps calling until it is back, then sees the handler", async () => {
      await ctrd.stop();
      const waiting = waitForHandler(ctrd.socket, "vnode", { waitMs: 30_000, maxDelayMs: 20 });
      // containerd comes back only once the wait has met the missing socket for 100 ms.
      await new Promise((r) => setTimeout(r, 100));
      await ctrd.start();
      const check = await waiting;
      expect(check.live).toBe(true);
      expect(check.handlers).toEqual(["runc", "vnode"]);
      // 100 ms of 5, 8, 11, 17, 20 ms pauses: at least 5 calls met the missing socket.
      expect(check.attempts).toBeGreaterThan(5);
    });

    it("runs a host-network pod sandbox on the vnode handler until SANDBOX_READY, then stops and removes it", async () => {
      const id = await runPodSandbox(
        ctrd.socket,
        {
          metadata: { name: "probe", uid: "c0ffee-1", namespace: "vnode-test", attempt: 0 },
          hostname: "",
          linux: {
            securityContext: { namespaceOptions: { network: "NODE", pid: "POD", ipc: "POD" } },
          },
        },
        "vnode",
        { timeoutMs: 60_000 },
      );
      try {
        const status = await podSandboxStatus(ctrd.socket, id);
        expect(status.id).toBe(id);
        expect(status.state).toBe("SANDBOX_READY");
        expect(status.runtimeHandler).toBe("vnode");
        expect(status.metadata).toEqual({
          name: "probe",
          uid: "c0ffee-1",
          namespace: "vnode-test",
          attempt: 0,
        });
        expect(BigInt(status.createdAt) > 0n).toBe(true);

        await stopPodSandbox(ctrd.socket, id, { timeoutMs: 30_000 });
        expect((await podSandboxStatus(ctrd.socket, id)).state).toBe("SANDBOX_NOTREADY");
      } finally {
        await stopPodSandbox(ctrd.socket, id, { timeoutMs: 30_000 });
        await removePodSandbox(ctrd.socket, id, { timeoutMs: 30_000 });
      }
      const gone = await podSandboxStatus(ctrd.socket, id).catch((e: unknown) => e);
      expect(gone).toBeInstanceOf(CriError);
      expect((gone as CriError).message).toMatch(
        new RegExp(
          `^CRI PodSandboxStatus on ${ctrd.socket.replace(/[.]/g, "\\.")} failed: NOT_FOUND: `,
        ),
      );
    });

    it("refuses an unknown runtime handler", async () => {
      await expect(
        runPodSandbox(
          ctrd.socket,
          { metadata: { name: "x", uid: "u-2", namespace: "vnode-test" } },
          "nope",
        ),
      ).rejects.toThrow(/^CRI RunPodSandbox on .* failed: .*no runtime for "nope" is configured/);
    });

    it("waitForHandler with containerd stopped fails when its budget is spent, with the reason", async () => {
      await ctrd.stop();
      const started = Date.now();
      const check = await waitForHandler(ctrd.socket, "vnode", {
        waitMs: 300,
        maxDelayMs: 100,
        timeoutMs: 1000,
      });
      const took = Date.now() - started;
      expect(check.live).toBe(false);
      const calls = check.attempts;
      expect(check).toEqual({
        live: false,
        attempts: calls,
        cause: "unreachable",
        handlers: [],
        reason:
          `containerd did not answer on ${ctrd.socket} within 300 ms (${calls} call(s)); last error: ` +
          `CRI Status on ${ctrd.socket} failed: the socket does not exist (is containerd running?).`,
      });
      expect(calls).toBeGreaterThan(4);
      expect(took).toBeGreaterThanOrEqual(300);
      expect(took).toBeLessThan(5000);
    });
  },
  { pauseImage: true },
);

describeWithContainerd(
  "test harness cleanup after a test that left a sandbox running",
  () => {
    it("kills the sandbox's shim and pause process, unmounts and removes the temp dir", async () => {
      const ctrd = await startContainerd({ pauseImage: true });
      let cleaned = false;
      try {
        const id = await runPodSandbox(
          ctrd.socket,
          {
            metadata: { name: "left-behind", uid: "c0ffee-3", namespace: "vnode-test" },
            linux: { securityContext: { namespaceOptions: { network: "NODE" } } },
          },
          "",
          { timeoutMs: 60_000 },
        );
        expect((await podSandboxStatus(ctrd.socket, id)).state).toBe("SANDBOX_READY");
        const shims = () => processesWithArg(ctrd.socket);
        expect(shims().length).toBe(1);

        await ctrd.cleanup();
        cleaned = true;
        expect(shims()).toEqual([]);
        expect(fs.existsSync(ctrd.dir)).toBe(false);
        expect(fs.readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(ctrd.dir);
      } finally {
        if (!cleaned) await ctrd.cleanup();
      }
    });
  },
  { pauseImage: true },
);

/** Pids of processes with `arg` among their arguments (the shims name their containerd's socket). */
function processesWithArg(arg: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").includes(arg))
        pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}
