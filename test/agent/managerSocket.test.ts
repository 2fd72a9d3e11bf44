/**
 * The manager socket probe against real unix sockets: a listener (connect succeeds, and the
 * probe's connection is closed on both ends), no file (ENOENT), a socket file whose listener
 * died (ECONNREFUSED: the kernel keeps the inode after SIGKILL, as when vNode's manager crashes),
 * and no socket left open by many probes.
 *
 * The timeout branch is not reached here: on Linux a unix connect completes, fails, or (accept
 * queue full) fails at once with EAGAIN; it guards against what cannot be produced on purpose.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { probeUnixSocket } from "../../agent/src/daemon/managerSocket";

describe("probeUnixSocket", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-msock-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("answers ok when something listens, and closes its connection", async () => {
    const sock = path.join(dir, "manager.sock");
    const server = net.createServer();
    const accepted: net.Socket[] = [];
    server.on("connection", (c) => accepted.push(c.on("error", () => undefined)));
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      for (let i = 0; i < 20; i++) {
        expect(await probeUnixSocket(sock, 1000, "/run/vnode/manager.sock")).toEqual({ ok: true });
      }
      // The server saw each probe, and each probe closed its end, so the server's ends close
      // too: nothing leaks on either side.
      await new Promise((r) => setTimeout(r, 100));
      expect(accepted).toHaveLength(20);
      expect(accepted.filter((c) => !c.destroyed)).toHaveLength(0);
    } finally {
      accepted.forEach((c) => c.destroy());
      await new Promise((r) => server.close(r));
    }
  });

  it("names ENOENT when there is no socket", async () => {
    expect(await probeUnixSocket(path.join(dir, "none.sock"), 1000, "/run/vnode/x.sock")).toEqual({
      ok: false,
      code: "ENOENT",
      reason:
        "vNode manager socket /run/vnode/x.sock: ENOENT (no socket there: the manager has not started or has not created it)",
    });
  });

  it("names ECONNREFUSED when the listener died and left its socket file", async () => {
    const sock = path.join(dir, "stale.sock");
    const child = spawn(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(sock)}, () => console.log("up"))`,
    ]);
    await new Promise<void>((r) => child.stdout.once("data", () => r()));
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    expect(fs.statSync(sock).isSocket()).toBe(true);
    expect(await probeUnixSocket(sock, 1000, "/run/vnode/manager.sock")).toEqual({
      ok: false,
      code: "ECONNREFUSED",
      reason:
        "vNode manager socket /run/vnode/manager.sock: ECONNREFUSED (nothing listens on it: the manager is not running or closed it)",
    });
  });
});
