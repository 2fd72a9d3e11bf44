/**
 * The agent's state dir as the DaemonSet gives it: a hostPath volume, so a mount point, under the
 * agent's read-only root filesystem. rmdir refuses a mount point (EBUSY) and anything whose parent
 * is on a read-only mount (EROFS, checked before emptiness), so "remove the state dir when empty"
 * must leave it and go on. Found by the node e2e (`npm run e2e:node`): every install failed in its
 * cleanup with `EROFS: read-only file system, rmdir '/host/var/lib/vnode-agent'`.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { removeStateDirIfEmpty } from "../../agent/src/host/ledger";
import { describeIf } from "../support/describeIf";

const unavailable =
  process.platform !== "linux" || process.getuid?.() !== 0
    ? "mounting needs root on Linux"
    : undefined;

describeIf(unavailable, "removeStateDirIfEmpty on a state dir that is a mount point", () => {
  let root: string;
  const mounted: string[] = [];
  const mount = (...args: string[]) => {
    execFileSync("mount", args);
    mounted.unshift(args[args.length - 1]);
  };

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-statedir-"));
    fs.mkdirSync(path.join(root, "host/var/lib/vnode-agent"), { recursive: true });
    fs.mkdirSync(path.join(root, "node-state"));
  });

  afterEach(() => {
    for (const m of mounted.splice(0)) execFileSync("umount", [m]);
    fs.rmSync(root, { recursive: true, force: true });
  });

  const loc = () => ({ hostRoot: path.join(root, "host") });
  const stateDir = () => path.join(root, "host/var/lib/vnode-agent");

  it("leaves an empty state dir that is a mount point (EBUSY)", async () => {
    mount("--bind", path.join(root, "node-state"), stateDir());
    await expect(removeStateDirIfEmpty(loc())).resolves.toBeUndefined();
    expect(fs.statSync(stateDir()).isDirectory()).toBe(true);
  });

  it("leaves a state dir whose parent is read-only (EROFS), as under readOnlyRootFilesystem", async () => {
    const parent = path.join(root, "host/var/lib");
    mount("--bind", parent, parent);
    execFileSync("mount", ["-o", "remount,bind,ro", parent]); // the same mount, now read-only
    mount("--bind", path.join(root, "node-state"), stateDir());
    await expect(removeStateDirIfEmpty(loc())).resolves.toBeUndefined();
    expect(fs.statSync(stateDir()).isDirectory()).toBe(true);
  });

  it("still removes an empty state dir it may remove", async () => {
    await removeStateDirIfEmpty(loc());
    expect(fs.existsSync(stateDir())).toBe(false);
  });
});
