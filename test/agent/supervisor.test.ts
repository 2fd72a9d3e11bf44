import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { backoffDelay, retry } from "../../agent/src/lib/backoff";
import { IsolationMode } from "vnode-contract";
import { captureLogger } from "../support/logCapture";
import {
  describeExit,
  exitMetricLabels,
  ManagerSupervisor,
  type ManagerExit,
  type SupervisorOptions,
} from "../../agent/src/daemon/supervisor";

describe("backoffDelay", () => {
  const policy = { initialMs: 100, maxMs: 1000, factor: 2 };
  it.each([
    [0, 100],
    [1, 200],
    [2, 400],
    [3, 800],
    [4, 1000],
    [60, 1000],
    [5000, 1000],
  ])("attempt %i -> %i ms", (attempt, ms) => {
    expect(backoffDelay(attempt, policy)).toBe(ms);
  });

  it("takes up to `jitter` of each delay away", () => {
    const jittered = { ...policy, jitter: 0.5 };
    expect(backoffDelay(2, jittered, () => 0)).toBe(400);
    expect(backoffDelay(2, jittered, () => 0.5)).toBe(300);
    expect(backoffDelay(2, jittered, () => 0.999999)).toBe(200);
  });

  it.each([
    [{ initialMs: -1, maxMs: 10 }],
    [{ initialMs: 10, maxMs: 5 }],
    [{ initialMs: 1, maxMs: 5, factor: 0.5 }],
    [{ initialMs: 1, maxMs: 5, jitter: 2 }],
  ])("rejects %j", (bad) => {
    expect(() => backoffDelay(0, bad)).toThrow(/^invalid backoff policy .*: need 0 <= initialMs/);
  });
});

describe("retry", () => {
  it("retries retryable errors with the policy's delays, then returns", async () => {
    const slept: number[] = [];
    let calls = 0;
    const result = await retry(
      async (attempt) => {
        calls++;
        if (attempt < 2) throw new Error(`try ${attempt}`);
        return "done";
      },
      {
        attempts: 5,
        policy: { initialMs: 10, maxMs: 100 },
        isRetryable: () => true,
        sleep: async (ms) => void slept.push(ms),
      },
    );
    expect([result, calls, slept]).toEqual(["done", 3, [10, 20]]);
  });

  it("rethrows a non-retryable error at once and the last error after the attempts", async () => {
    const opts = { attempts: 3, policy: { initialMs: 1, maxMs: 1 }, sleep: async () => {} };
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new Error("fatal");
        },
        { ...opts, isRetryable: () => false },
      ),
    ).rejects.toThrow("fatal");
    expect(calls).toBe(1);
    await expect(
      retry(
        async (a) => {
          throw new Error(`try ${a}`);
        },
        { ...opts, isRetryable: () => true },
      ),
    ).rejects.toThrow("try 2");
  });

  it("with a deadline: any number of tries, the last wait cut to end at it, then the last error", async () => {
    let clock = 0;
    const slept: number[] = [];
    const tried: number[] = [];
    await expect(
      retry(
        async (a) => {
          tried.push(clock);
          throw new Error(`try ${a}`);
        },
        {
          attempts: Infinity,
          deadline: 100,
          now: () => clock,
          policy: { initialMs: 10, maxMs: 40 },
          isRetryable: () => true,
          sleep: async (ms) => {
            slept.push(ms);
            clock += ms;
          },
        },
      ),
    ).rejects.toThrow("try 4");
    expect(slept).toEqual([10, 20, 40, 30]);
    expect(tried).toEqual([0, 10, 30, 70, 100]);
    await expect(
      retry(async () => 1, {
        attempts: Infinity,
        policy: { initialMs: 1, maxMs: 1 },
        isRetryable: () => true,
      }),
    ).rejects.toThrow(
      "retry attempts must be an integer >= 1 (or Infinity with a deadline); got Infinity.",
    );
  });
});

describe("describeExit and exitMetricLabels", () => {
  const base = { pid: 42, code: null, signal: null, runtimeMs: 1234, exits: 3, restartInMs: 4000 };
  it.each([
    [
      { ...base, code: 3 },
      "vNode manager (pid 42) exited with code 3 after 1.2 s, exit 3; restarting in 4.0 s.",
      { code: "3", signal: "" },
    ],
    [
      { ...base, signal: "SIGKILL" as const, restartInMs: null },
      "vNode manager (pid 42) was killed by SIGKILL after 1.2 s, exit 3; not restarting: the agent is stopping.",
      { code: "", signal: "SIGKILL" },
    ],
    [
      { ...base, pid: undefined, error: "spawn /x ENOENT", runtimeMs: 2 },
      "vNode manager (pid none) could not be started (spawn /x ENOENT) after 0.0 s, exit 3; restarting in 4.0 s.",
      { code: "", signal: "" },
    ],
  ])("%j", (exit, sentence, labels) => {
    expect(describeExit(exit)).toBe(sentence);
    expect(exitMetricLabels(exit)).toEqual(labels);
  });
});

// ---------------------------------------------------------------------------------------------

/** Whether a pid is a live process (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("ManagerSupervisor with real processes", () => {
  let dir: string;
  let log: string;
  const supervisors: ManagerSupervisor[] = [];
  const exits: ManagerExit[] = [];
  // The supervisor logs each line of the manager's output at info, with its stream.
  const { lines: output, logger: outputLogger } = captureLogger();
  const logLines = () =>
    output
      .filter((l) => l.level === "info" && typeof l.obj.stream === "string")
      .map((l) => ({ stream: l.obj.stream as string, line: l.msg }));

  /** Writes an executable sh script; it appends to $LOG and sees its run number in $RUN. */
  const script = (name: string, body: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(
      file,
      `#!/bin/sh\nRUN=$(( $(cat "$LOG" 2>/dev/null | grep -c '^start') + 1 ))\n` +
        `echo "start $RUN $$ VNODE_PER_POD=\${VNODE_PER_POD-unset}" >> "$LOG"\n${body}\n`,
      { mode: 0o755 },
    );
    return file;
  };
  const logged = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []);
  const starts = () => logged().filter((l) => l.startsWith("start"));

  const supervise = (opts: Partial<SupervisorOptions> & Pick<SupervisorOptions, "command">) => {
    const s = new ManagerSupervisor({
      mode: IsolationMode.PerNamespace,
      env: { PATH: process.env.PATH, LOG: log },
      backoff: { initialMs: 40, maxMs: 160, factor: 2 },
      resetAfterMs: 10_000,
      graceMs: 2000,
      onExit: (e) => exits.push(e),
      logger: outputLogger,
      ...opts,
    });
    supervisors.push(s);
    return s;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-supervisor-"));
    log = path.join(dir, "log");
    exits.length = 0;
    output.length = 0;
  });
  afterEach(async () => {
    // Stop even when a test failed, so no manager outlives the suite.
    await Promise.all(supervisors.splice(0).map((s) => s.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    [IsolationMode.PerPod, " TRUE ", "true"],
    [IsolationMode.PerPod, undefined, "true"],
    [IsolationMode.PerNamespace, "true", "false"],
    [IsolationMode.PerNamespace, undefined, "false"],
  ])(
    "starts the manager with VNODE_PER_POD exactly as the mode says (%s, base env %j)",
    async (mode, base, expected) => {
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LOG: log };
      if (base !== undefined) env.VNODE_PER_POD = base;
      const s = supervise({
        command: `${script("m.sh", "exec sleep 1000")}`,
        mode,
        env,
      });
      s.start();
      await until("the manager to start", () => starts().length === 1);
      expect(starts()[0]).toMatch(new RegExp(`^start 1 \\d+ VNODE_PER_POD=${expected}$`));
      expect(s.pid).toBeGreaterThan(0);
    },
  );

  it("runs an argv without a shell", async () => {
    const file = script("m.sh", "exec sleep 1000");
    const s = supervise({ command: [file], mode: IsolationMode.PerPod });
    s.start();
    await until("the manager to start", () => starts().length === 1);
    // With an argv the pid is the script's own: `$$` in the script is the supervised pid.
    expect(starts()[0]).toBe(`start 1 ${s.pid} VNODE_PER_POD=true`);
  });

  it("restarts after each exit with capped exponential backoff, reporting every exit", async () => {
    const s = supervise({ command: script("m.sh", "exit 3") });
    s.start();
    await until("five exits", () => exits.length >= 5);
    await s.stop();
    expect(exits.slice(0, 5).map((e) => [e.code, e.signal, e.exits, e.restartInMs])).toEqual([
      [3, null, 1, 40],
      [3, null, 2, 80],
      [3, null, 3, 160],
      [3, null, 4, 160],
      [3, null, 5, 160],
    ]);
    expect(starts().length).toBeGreaterThanOrEqual(5);
    expect(exits.every((e) => e.error === undefined)).toBe(true);
  });

  it("starts the delay over after a run that lasted resetAfterMs", async () => {
    // Runs 1 and 2 exit at once; run 3 lives 2 s (healthy); run 4 exits at once. The margins are
    // wide so a loaded machine's slow process start (seen: > 300 ms) never reads as a healthy run.
    const s = supervise({
      command: script("m.sh", '[ "$RUN" = 3 ] && sleep 2\nexit 1'),
      resetAfterMs: 1500,
    });
    s.start();
    await until("four exits", () => exits.length >= 4);
    await s.stop();
    expect(exits.slice(0, 4).map((e) => e.restartInMs)).toEqual([40, 80, 40, 80]);
    expect(exits[2].runtimeMs).toBeGreaterThanOrEqual(1500);
  });

  it("stop() sends SIGTERM to the group, does not restart, and resolves once it is gone", async () => {
    const s = supervise({
      // An argv, so the script is the supervised process; `wait` lets its trap run at once.
      command: [
        script(
          "m.sh",
          `trap 'echo term >> "$LOG"; exit 0' TERM\nwhile :; do sleep 0.05 & wait $!; done`,
        ),
      ],
    });
    s.start();
    await until("the manager to start", () => starts().length === 1);
    const pid = s.pid!;
    const t0 = Date.now();
    await s.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(alive(pid)).toBe(false);
    expect(logged().slice(1)).toEqual(["term"]);
    expect(exits.map((e) => [e.pid, e.code, e.signal, e.restartInMs])).toEqual([
      [pid, 0, null, null],
    ]);
    await new Promise((r) => setTimeout(r, 200));
    expect(starts()).toHaveLength(1);
    expect(s.pid).toBeUndefined();
    await s.stop(); // idempotent
  });

  it("stop() sends SIGKILL after the grace period to a manager that ignores SIGTERM", async () => {
    // SIG_IGN is inherited, so the sleeps ignore SIGTERM too.
    const s = supervise({
      command: [script("m.sh", "trap '' TERM\nwhile :; do sleep 0.05; done")],
      graceMs: 400,
    });
    s.start();
    await until("the manager to start", () => starts().length === 1);
    const pid = s.pid!;
    const t0 = Date.now();
    await s.stop();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(400);
    expect(took).toBeLessThan(3000);
    expect(alive(pid)).toBe(false);
    expect(exits.map((e) => [e.code, e.signal, e.restartInMs])).toEqual([[null, "SIGKILL", null]]);
  });

  it("stop() waits for the whole group, not just the shell that sh -c started", async () => {
    // The outer sh dies of SIGTERM at once; the script it runs ignores SIGTERM and holds on.
    const file = script("m.sh", "trap '' TERM\nwhile :; do sleep 0.05; done");
    const s = supervise({ command: file, graceMs: 400 });
    s.start();
    await until("the manager to start", () => starts().length === 1);
    const scriptPid = Number(starts()[0].split(" ")[2]);
    expect(scriptPid).not.toBe(s.pid);
    const t0 = Date.now();
    await s.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(alive(scriptPid)).toBe(false);
    expect(exits.map((e) => [e.code, e.signal, e.restartInMs])).toEqual([[null, "SIGTERM", null]]);
  });

  it("stop() takes the manager's children with it (sh -c does not forward signals)", async () => {
    const pidFile = path.join(dir, "child.pid");
    const s = supervise({
      command: `sleep 1000 & echo $! > ${pidFile}; echo started >> "$LOG"; wait`,
    });
    s.start();
    await until("the grandchild", () => fs.existsSync(pidFile) && logged().includes("started"));
    const grandchild = Number(fs.readFileSync(pidFile, "utf8"));
    expect(alive(grandchild)).toBe(true);
    await s.stop();
    await until("the grandchild to be reaped", () => !alive(grandchild), 2000);
  });

  it("stop() during the restart delay cancels the restart", async () => {
    const s = supervise({
      command: script("m.sh", "exit 7"),
      backoff: { initialMs: 300, maxMs: 300 },
    });
    s.start();
    await until("the first exit", () => exits.length === 1);
    await s.stop();
    await new Promise((r) => setTimeout(r, 450));
    expect(starts()).toHaveLength(1);
    expect(exits.map((e) => [e.code, e.restartInMs])).toEqual([[7, 300]]);
  });

  it("reports a manager that cannot be started and keeps trying", async () => {
    const missing = path.join(dir, "no-such-manager");
    const s = supervise({ command: [missing] });
    s.start();
    await until("two failed starts", () => exits.length >= 2);
    await s.stop();
    expect(exits.slice(0, 2)).toEqual([
      {
        pid: undefined,
        code: null,
        signal: null,
        error: `spawn ${missing} ENOENT`,
        runtimeMs: expect.any(Number),
        exits: 1,
        restartInMs: 40,
      },
      {
        pid: undefined,
        code: null,
        signal: null,
        error: `spawn ${missing} ENOENT`,
        runtimeMs: expect.any(Number),
        exits: 2,
        restartInMs: 80,
      },
    ]);
  });

  it("logs the manager's stdout and stderr line by line", async () => {
    const s = supervise({ command: "echo out one; echo err one >&2; echo out two; exit 0" });
    s.start();
    await until("the exit", () => exits.length >= 1);
    await until("the lines", () => logLines().length >= 3);
    await s.stop();
    const byStream = (stream: string) =>
      logLines()
        .filter((l) => l.stream === stream)
        .map((l) => l.line);
    expect(byStream("stdout").slice(0, 2)).toEqual(["out one", "out two"]);
    expect(byStream("stderr").slice(0, 1)).toEqual(["err one"]);
  });

  it("keeps supervising when the exit callback throws", async () => {
    let calls = 0;
    const s = supervise({
      command: script("m.sh", "exit 1"),
      onExit: () => {
        calls++;
        throw new Error("callback bug");
      },
    });
    s.start();
    await until("a restart after the throwing callback", () => calls >= 2);
    await s.stop();
    expect(starts().length).toBeGreaterThanOrEqual(2);
  });

  it("refuses an empty command and a second start()", () => {
    expect(() => supervise({ command: "  " })).toThrow("--manager-command must not be empty.");
    expect(() => supervise({ command: [] })).toThrow("--manager-command must not be empty.");
    const s = supervise({ command: script("m.sh", "exec sleep 1000") });
    s.start();
    expect(() => s.start()).toThrow("the manager supervisor was already started.");
  });
});
