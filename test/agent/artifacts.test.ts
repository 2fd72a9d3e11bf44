import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import {
  decideArtifactRemoval,
  installArtifacts,
  planArtifacts,
  planArtifactsOnHost,
  readPayload,
  removeArtifacts,
  type PayloadFile,
} from "../../agent/src/host/artifacts";
import { sha256 } from "../../agent/src/host/fsAtomic";
import {
  ledgerPath,
  loadLedger,
  newLedger,
  type ArtifactEntry,
  type Ledger,
} from "../../agent/src/host/ledger";
import { listFiles, makeHostRoot, putHostFile, removeHostRoot } from "../support/hostRoot";
import { META } from "../support/stateDriver";

const DIR = "/opt/vnode/bin";
const T0 = "2025-01-02T03:04:05.000Z";
const h = (s: string) => sha256(s);

describe("planArtifacts", () => {
  const payload: PayloadFile[] = [
    { name: "a", source: "/payload/a", sha256: h("a"), size: 1 },
    { name: "b", source: "/payload/b", sha256: h("b"), size: 1 },
    { name: "c", source: "/payload/c", sha256: h("c"), size: 1 },
    { name: "d", source: "/payload/d", sha256: h("d"), size: 1 },
  ];
  const entry = (p: string, sha: string): ArtifactEntry => ({
    path: p,
    sha256: sha,
    state: "done",
    previousSha256: null,
    createdDirs: [],
    updatedAt: T0,
  });

  it("creates, replaces on content or mode, leaves equal files, removes what the payload dropped", () => {
    const current = new Map([
      [`${DIR}/a`, null],
      [`${DIR}/b`, { sha256: h("old b"), mode: 0o755 }],
      [`${DIR}/c`, { sha256: h("c"), mode: 0o644 }],
      [`${DIR}/d`, { sha256: h("d"), mode: 0o755 }],
      [`${DIR}/gone`, { sha256: h("gone"), mode: 0o755 }],
      [`${DIR}/edited`, { sha256: h("someone's"), mode: 0o755 }],
    ]);
    const recorded = [
      entry(`${DIR}/gone`, h("gone")),
      entry(`${DIR}/edited`, h("edited")),
      entry("/elsewhere/x", h("x")),
    ];
    expect(planArtifacts(payload, DIR, current, recorded)).toEqual([
      {
        target: `${DIR}/a`,
        action: "create",
        source: "/payload/a",
        sha256: h("a"),
        currentSha256: null,
      },
      {
        target: `${DIR}/b`,
        action: "replace",
        source: "/payload/b",
        sha256: h("b"),
        currentSha256: h("old b"),
      },
      {
        target: `${DIR}/c`,
        action: "replace",
        source: "/payload/c",
        sha256: h("c"),
        currentSha256: h("c"),
      },
      {
        target: `${DIR}/d`,
        action: "unchanged",
        source: "/payload/d",
        sha256: h("d"),
        currentSha256: h("d"),
      },
      { target: `${DIR}/gone`, action: "remove", sha256: h("gone"), currentSha256: h("gone") },
    ]);
  });

  it("removes an installed file only while it holds the bytes we installed", () => {
    const e = entry(`${DIR}/a`, h("a"));
    expect(decideArtifactRemoval(e, h("a"))).toBe("remove");
    expect(decideArtifactRemoval(e, h("other"))).toBe("keep");
    expect(decideArtifactRemoval(e, null)).toBe("missing");
  });
});

describe("artifacts on a host root", () => {
  let root: string;
  let payload: string;
  beforeEach(async () => {
    root = await makeHostRoot("vnode-artifacts-");
    payload = await makeHostRoot("vnode-payload-");
  });
  afterEach(async () => {
    await removeHostRoot(root);
    await removeHostRoot(payload);
  });

  const loc = () => ({ hostRoot: root });
  const mode = (p: string) => fs.statSync(path.join(root, p)).mode & 0o7777;

  it("reads the payload sorted with hashes, and names the flag on bad input", async () => {
    await fsp.writeFile(path.join(payload, "vnode-runtime"), "rt");
    await fsp.writeFile(path.join(payload, "containerd-shim-vnode-v2"), "shim");
    expect(await readPayload(payload)).toEqual([
      {
        name: "containerd-shim-vnode-v2",
        source: path.join(payload, "containerd-shim-vnode-v2"),
        sha256: h("shim"),
        size: 4,
      },
      {
        name: "vnode-runtime",
        source: path.join(payload, "vnode-runtime"),
        sha256: h("rt"),
        size: 2,
      },
    ]);
    await expect(readPayload(path.join(payload, "nope"))).rejects.toThrow(
      `--payload-dir ${payload}/nope is not a directory.`,
    );
    await fsp.mkdir(path.join(payload, "lib"));
    await expect(readPayload(payload)).rejects.toThrow(
      `--payload-dir ${payload} contains lib, which is not a regular file; only files are installed.`,
    );
    const empty = path.join(root, "empty");
    await fsp.mkdir(empty);
    await expect(readPayload(empty)).rejects.toThrow(
      `--payload-dir ${empty} has no files to install.`,
    );
  });

  it("installs 0755 copies recorded in the ledger, and a rerun changes nothing", async () => {
    const big = Buffer.alloc(2 * 1024 * 1024 + 3, 1);
    await fsp.writeFile(path.join(payload, "containerd-shim-vnode-v2"), big);
    await fsp.writeFile(path.join(payload, "vnode-runtime"), "rt", { mode: 0o600 });
    const first = await installArtifacts(loc(), newLedger(META), { payloadDir: payload });
    expect(first.plan.map((i) => [i.target, i.action])).toEqual([
      [`${DIR}/containerd-shim-vnode-v2`, "create"],
      [`${DIR}/vnode-runtime`, "create"],
    ]);
    expect(fs.readFileSync(path.join(root, DIR, "containerd-shim-vnode-v2")).equals(big)).toBe(
      true,
    );
    expect([mode(`${DIR}/containerd-shim-vnode-v2`), mode(`${DIR}/vnode-runtime`)]).toEqual([
      0o755, 0o755,
    ]);
    const ledger = (await loadLedger(loc())) as Ledger;
    expect(ledger).toEqual(first.ledger);
    expect(
      ledger.artifacts.map((a) => [a.path, a.sha256, a.state, a.previousSha256, a.createdDirs]),
    ).toEqual([
      [`${DIR}/containerd-shim-vnode-v2`, sha256(big), "done", null, [DIR, "/opt/vnode", "/opt"]],
      [`${DIR}/vnode-runtime`, h("rt"), "done", null, []],
    ]);

    const before = fs.readFileSync(ledgerPath(loc()));
    const inode = fs.statSync(path.join(root, DIR, "vnode-runtime")).ino;
    const second = await installArtifacts(loc(), ledger, { payloadDir: payload });
    expect(second.plan.map((i) => i.action)).toEqual(["unchanged", "unchanged"]);
    expect(fs.readFileSync(ledgerPath(loc())).equals(before)).toBe(true);
    expect(fs.statSync(path.join(root, DIR, "vnode-runtime")).ino).toBe(inode);
  });

  it("replaces a running binary without ETXTBSY; the running process is unaffected", async () => {
    const shim = `${DIR}/containerd-shim-vnode-v2`;
    await fsp.copyFile("/bin/sleep", path.join(payload, "containerd-shim-vnode-v2"));
    let { ledger } = await installArtifacts(loc(), newLedger(META), { payloadDir: payload });
    const running = spawn(path.join(root, shim), ["30"], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 100));
      // Writing in place is what the atomic copy avoids:
      await expect(fsp.writeFile(path.join(root, shim), "x")).rejects.toMatchObject({
        code: "ETXTBSY",
      });
      await fsp.copyFile("/bin/true", path.join(payload, "containerd-shim-vnode-v2"));
      ({ ledger } = await installArtifacts(loc(), ledger, { payloadDir: payload }));
      expect(fs.readFileSync(path.join(root, shim)).equals(fs.readFileSync("/bin/true"))).toBe(
        true,
      );
      expect(running.exitCode).toBeNull();
      expect(ledger.artifacts[0]).toMatchObject({
        sha256: sha256(fs.readFileSync("/bin/true")),
        previousSha256: null,
      });
    } finally {
      running.kill("SIGKILL");
    }
  });

  it("records the hash of a file it replaced that it had not installed", async () => {
    await putHostFile(root, `${DIR}/vnode-runtime`, "foreign", 0o755);
    await fsp.writeFile(path.join(payload, "vnode-runtime"), "rt");
    const { ledger, plan } = await installArtifacts(loc(), newLedger(META), {
      payloadDir: payload,
    });
    expect(plan.map((i) => i.action)).toEqual(["replace"]);
    expect(ledger.artifacts.map((a) => [a.previousSha256, a.createdDirs])).toEqual([
      [h("foreign"), []],
    ]);
  });

  it.each([
    ["its last byte", (b: Buffer) => Buffer.concat([b.subarray(0, -1), Buffer.from([2])])],
    ["a missing last byte", (b: Buffer) => b.subarray(0, -1)],
    ["an extra byte", (b: Buffer) => Buffer.concat([b, Buffer.from([1])])],
  ])(
    "plans to replace an installed copy that differs from the payload in %s, with the copy's own hash",
    async (_what, edit) => {
      const big = Buffer.alloc(2 * 1024 * 1024 + 3, 1);
      await fsp.writeFile(path.join(payload, "shim"), big);
      const installed = edit(big);
      await putHostFile(root, `${DIR}/shim`, installed, 0o755);
      expect(await planArtifactsOnHost(root, null, { payloadDir: payload })).toEqual([
        {
          target: `${DIR}/shim`,
          action: "replace",
          source: path.join(payload, "shim"),
          sha256: sha256(big),
          currentSha256: sha256(installed),
        },
      ]);
    },
  );

  it("copies by the plan it is given: a payload changed since planning fails the hash check", async () => {
    await fsp.writeFile(path.join(payload, "a"), "planned");
    const planned = await planArtifactsOnHost(root, null, { payloadDir: payload });
    await fsp.writeFile(path.join(payload, "a"), "swapped");
    await expect(
      installArtifacts(loc(), newLedger(META), { payloadDir: payload }, planned),
    ).rejects.toThrow(
      `artifact ${DIR}/a has sha256 ${h("swapped")} after copying ${path.join(payload, "a")}, expected ${h("planned")}; the payload changed during install or the disk is faulty.`,
    );
    // The intent was saved before the copy, so a rerun knows the file is ours.
    expect((await loadLedger(loc()))?.artifacts.map((a) => [a.path, a.state, a.sha256])).toEqual([
      [`${DIR}/a`, "intent", h("planned")],
    ]);
  });

  it("removes a file a new payload no longer has", async () => {
    await fsp.writeFile(path.join(payload, "a"), "a");
    await fsp.writeFile(path.join(payload, "b"), "b");
    let { ledger } = await installArtifacts(loc(), newLedger(META), { payloadDir: payload });
    await fsp.rm(path.join(payload, "b"));
    expect(
      (await planArtifactsOnHost(root, ledger, { payloadDir: payload })).map((i) => [
        i.target,
        i.action,
      ]),
    ).toEqual([
      [`${DIR}/a`, "unchanged"],
      [`${DIR}/b`, "remove"],
    ]);
    ({ ledger } = await installArtifacts(loc(), ledger, { payloadDir: payload }));
    expect(ledger.artifacts.map((a) => a.path)).toEqual([`${DIR}/a`]);
    expect(listFiles(path.join(root, DIR))).toEqual(["a"]);
  });

  it("cleans temp files a killed copy left in the install dir", async () => {
    await putHostFile(root, `${DIR}/.a.0123456789ab.tmp`, "half");
    await fsp.writeFile(path.join(payload, "a"), "a");
    await installArtifacts(loc(), newLedger(META), { payloadDir: payload });
    expect(listFiles(path.join(root, DIR))).toEqual(["a"]);
  });

  it("uninstalls only unchanged files it installed and the dirs it created when empty; twice is harmless", async () => {
    await fsp.writeFile(path.join(payload, "a"), "a");
    await fsp.writeFile(path.join(payload, "b"), "b");
    await fsp.writeFile(path.join(payload, "c"), "c");
    const { ledger } = await installArtifacts(loc(), newLedger(META), { payloadDir: payload });
    await fsp.writeFile(path.join(root, DIR, "b"), "patched by an admin");
    await fsp.rm(path.join(root, DIR, "c"));
    expect(await removeArtifacts(root, ledger.artifacts)).toEqual({
      removed: [`${DIR}/a`],
      missing: [`${DIR}/c`],
      kept: [
        {
          path: `${DIR}/b`,
          reason: `changed since install (sha256 ${h("patched by an admin")}, installed ${h("b")})`,
        },
      ],
      removedDirs: [],
    });
    expect(listFiles(path.join(root, "opt"))).toEqual(["vnode/bin/b"]);

    await fsp.rm(path.join(root, DIR, "b"));
    expect(await removeArtifacts(root, ledger.artifacts)).toEqual({
      removed: [],
      missing: [`${DIR}/a`, `${DIR}/b`, `${DIR}/c`],
      kept: [],
      removedDirs: [DIR, "/opt/vnode", "/opt"],
    });
    expect(fs.existsSync(path.join(root, "opt"))).toBe(false);
  });

  it("leaves an install dir that existed before it", async () => {
    await putHostFile(root, "/opt/vnode/README", "kept");
    await fsp.mkdir(path.join(root, DIR));
    await fsp.writeFile(path.join(payload, "a"), "a");
    const { ledger } = await installArtifacts(loc(), newLedger(META), { payloadDir: payload });
    expect(ledger.artifacts[0].createdDirs).toEqual([]);
    expect((await removeArtifacts(root, ledger.artifacts)).removedDirs).toEqual([]);
    expect(fs.existsSync(path.join(root, DIR))).toBe(true);
  });
});
