import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import {
  lockPath,
  parseHolder,
  processAlive,
  processStartTime,
  staleReason,
  withHostLock,
  type LockHolder,
  type ProcessProbe,
} from "../../agent/src/host/lock";
import {
  makeHostRoot,
  removeHostRoot,
  runTsChild,
  startTsChild,
  supportScript,
} from "../support/hostRoot";
import { captureLogger } from "../support/logCapture";

const holderScript = supportScript("lockHolder.ts");

async function waitFor(cond: () => boolean, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A pid that is certainly not running: a child that has exited and been reaped. */
function deadPid(): number {
  return spawnSync("true").pid as number;
}

describe("staleReason", () => {
  const holder = (h: Partial<LockHolder>): LockHolder => ({
    pid: 42,
    hostname: "node-a",
    startedAt: "2025-01-02T03:04:05.000Z",
    pidStartTime: "123",
    token: "t",
    ...h,
  });
  const probe = (alive: boolean, start: string | null): ProcessProbe => ({
    hostname: "node-a",
    alive: () => alive,
    startTime: () => start,
  });

  it.each([
    ["unreadable, fresh", null, 100, probe(true, "123"), null],
    ["unreadable, old", null, 2500, probe(true, "123"), "lock file is unreadable and 2500 ms old"],
    ["same host, pid dead", holder({}), 5, probe(false, null), "pid 42 is not running"],
    ["same host, pid alive", holder({}), 99999, probe(true, "123"), null],
    [
      "same host, pid reused",
      holder({}),
      5,
      probe(true, "999"),
      "pid 42 now belongs to another process (start time 999, holder's 123)",
    ],
    ["same host, start time unknown", holder({ pidStartTime: null }), 5, probe(true, "999"), null],
    ["other host, refreshed", holder({ hostname: "pod-b" }), 1000, probe(false, null), null],
    [
      "other host, not refreshed",
      holder({ hostname: "pod-b" }),
      31000,
      probe(true, "123"),
      "holder on host pod-b has not refreshed the lock for 31000 ms",
    ],
  ])("%s", (_name, h, ageMs, p, expected) => {
    expect(staleReason({ holder: h, ageMs }, p, 30000)).toBe(expected);
  });
});

describe("lock file contents and process probes", () => {
  it("parses a holder and rejects anything else", () => {
    const h = {
      pid: 7,
      hostname: "n",
      startedAt: "2025-01-02T03:04:05.000Z",
      pidStartTime: "55",
      token: "ab",
    };
    expect(parseHolder(JSON.stringify(h))).toEqual(h);
    expect(parseHolder(JSON.stringify({ ...h, pidStartTime: undefined }))).toEqual({
      ...h,
      pidStartTime: null,
    });
    expect(parseHolder("")).toBeNull();
    expect(parseHolder('{"pid":"7"}')).toBeNull();
  });

  it("sees our own process alive with a stable start time, and a reaped child dead", () => {
    const dead = deadPid();
    expect(processAlive(process.pid)).toBe(true);
    expect(processAlive(dead)).toBe(false);
    expect(processStartTime(process.pid)).toMatch(/^\d+$/);
    expect(processStartTime(process.pid)).toBe(processStartTime(process.pid));
    expect(processStartTime(dead)).toBeNull();
  });
});

describe("withHostLock", () => {
  let root: string;
  let lock: string;
  beforeEach(async () => {
    root = await makeHostRoot("vnode-lock-");
    lock = lockPath(root);
  });
  afterEach(async () => {
    await removeHostRoot(root);
  });

  it("holds a lock file naming this process while fn runs and removes it after", async () => {
    expect(lock).toBe(path.join(root, "var/lib/vnode-agent/agent.lock"));
    const seen = await withHostLock(
      root,
      async () => JSON.parse(fs.readFileSync(lock, "utf8")) as LockHolder,
    );
    expect(seen).toMatchObject({
      pid: process.pid,
      hostname: os.hostname(),
      pidStartTime: processStartTime(process.pid),
    });
    expect(seen.token).toMatch(/^[0-9a-f]{16}$/);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it("releases the lock when fn throws, and passes the error on", async () => {
    await expect(
      withHostLock(root, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(fs.existsSync(lock)).toBe(false);
  });

  it("fails fast when nested in one process", async () => {
    await expect(withHostLock(root, () => withHostLock(root, async () => 1))).rejects.toThrow(
      `host lock ${lock} is already held by this process; withHostLock is not reentrant.`,
    );
    expect(fs.existsSync(lock)).toBe(false);
  });

  it("times out with the holder named when a live holder keeps it", async () => {
    const holder = {
      pid: process.pid,
      hostname: os.hostname(),
      startedAt: "2025-01-02T03:04:05.000Z",
      pidStartTime: processStartTime(process.pid),
      token: "someoneelse",
    };
    await fsp.mkdir(path.dirname(lock), { recursive: true });
    await fsp.writeFile(lock, JSON.stringify(holder));
    const { lines, logger } = captureLogger();
    const fn = jest.fn(async () => 1);
    await expect(withHostLock(root, fn, { timeoutMs: 300, pollMs: 20, logger })).rejects.toThrow(
      `timed out after 300 ms waiting for the host lock ${lock}, held by pid ${process.pid} on host ${os.hostname()} since 2025-01-02T03:04:05.000Z; another vnode-agent is working on this node (delete the file only if it is not).`,
    );
    expect(fn).not.toHaveBeenCalled();
    expect(JSON.parse(fs.readFileSync(lock, "utf8"))).toEqual(holder);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([["info", "waiting for the host lock"]]);
  });

  it("takes over a lock from another host that stopped refreshing it", async () => {
    const holder = {
      pid: 1,
      hostname: "vnode-agent-old-pod",
      startedAt: "2025-01-02T03:04:05.000Z",
      pidStartTime: "5",
      token: "x",
    };
    await fsp.mkdir(path.dirname(lock), { recursive: true });
    await fsp.writeFile(lock, JSON.stringify(holder));
    const old = new Date(Date.now() - 60000);
    await fsp.utimes(lock, old, old);
    const { lines, logger } = captureLogger();
    expect(await withHostLock(root, async () => "ran", { staleAfterMs: 30000, logger })).toBe(
      "ran",
    );
    expect(lines).toHaveLength(1);
    expect(lines[0].msg).toBe("took over a stale host lock");
    expect(lines[0].obj.staleHolder).toEqual(holder);
    expect(lines[0].obj.reason).toMatch(
      /^holder on host vnode-agent-old-pod has not refreshed the lock for 6\d{4} ms$/,
    );
  });

  it("refreshes the lock's mtime while held, so other hosts do not take it over", async () => {
    await withHostLock(
      root,
      async () => {
        const old = new Date(Date.now() - 3600_000);
        await fsp.utimes(lock, old, old);
        await new Promise((r) => setTimeout(r, 250));
        expect(Date.now() - fs.statSync(lock).mtimeMs).toBeLessThan(1000);
      },
      { staleAfterMs: 300 },
    );
  });

  it("does not delete a lock someone else holds by the time it releases", async () => {
    const { lines, logger } = captureLogger();
    const other = JSON.stringify({
      pid: 1,
      hostname: "x",
      startedAt: "s",
      pidStartTime: null,
      token: "other",
    });
    await withHostLock(root, async () => fsp.writeFile(lock, other), { logger });
    expect(fs.readFileSync(lock, "utf8")).toBe(other);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ["warn", "host lock was taken over while held"],
    ]);
  });

  it("takes over the lock of a holder process that was killed", async () => {
    const log = path.join(root, "log");
    const child = startTsChild(holderScript, [root, log, "A", "forever"]);
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes("acquired") && resolve());
        child.on("exit", (code) => reject(new Error(`holder exited early with ${code}`)));
      });
      expect((JSON.parse(fs.readFileSync(lock, "utf8")) as LockHolder).pid).toBe(child.pid);
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGKILL");
      await exited;
    } finally {
      child.kill("SIGKILL");
    }
    const { lines, logger } = captureLogger();
    await withHostLock(root, async () => fs.appendFileSync(log, "start parent\n"), { logger });
    expect(lines.map((l) => [l.level, l.msg, l.obj.reason])).toEqual([
      ["warn", "took over a stale host lock", `pid ${child.pid} is not running`],
    ]);
    expect(fs.readFileSync(log, "utf8")).toBe("start A\nstart parent\n");
    expect(fs.existsSync(lock)).toBe(false);
  });

  it("serialises two agent processes: the second waits for the first to finish", async () => {
    const log = path.join(root, "log");
    const release = path.join(root, "release");
    const first = runTsChild(holderScript, [root, log, "A", `until:${release}`]);
    let secondChild: ReturnType<typeof startTsChild> | undefined;
    try {
      await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, "utf8") === "start A\n");
      // The second starts while the first holds the lock; the first lets go once the second waits.
      const second = startTsChild(holderScript, [root, log, "B", "0"]);
      secondChild = second;
      let secondErr = "";
      second.stderr.on("data", (d: Buffer) => (secondErr += d.toString()));
      const secondDone = new Promise((r) => second.on("close", r));
      await waitFor(() => secondErr.includes("waiting for the host lock"));
      expect(fs.readFileSync(log, "utf8")).toBe("start A\n");
      await fsp.writeFile(release, "");
      const [a, code] = await Promise.all([first, secondDone]);
      expect([a.code, code]).toEqual([0, 0]);
      expect(fs.readFileSync(log, "utf8")).toBe("start A\nend A\nstart B\nend B\n");
      const waited = secondErr
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { msg: string; holder: { pid: number } });
      expect(waited.map((w) => [w.msg, w.holder.pid])).toEqual([
        ["waiting for the host lock", a.pid],
      ]);
    } finally {
      // Never leave a holder polling for its release file, even when an expectation failed.
      await fsp.writeFile(release, "").catch(() => undefined);
      secondChild?.kill("SIGKILL");
    }
    expect(fs.existsSync(lock)).toBe(false);
  });

  it("serialises processes started at the same moment", async () => {
    const log = path.join(root, "log");
    const results = await Promise.all(
      ["A", "B", "C"].map((id) => runTsChild(holderScript, [root, log, id, "200"])),
    );
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    const lines = fs.readFileSync(log, "utf8").trim().split("\n");
    expect(lines).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) {
      expect(lines[i]).toMatch(/^start [ABC]$/);
      expect(lines[i + 1]).toBe(lines[i].replace("start", "end"));
    }
    expect(new Set(lines).size).toBe(6);
  });
});
