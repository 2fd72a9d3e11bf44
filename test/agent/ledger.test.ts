import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { isTempFile, sha256 } from "../../agent/src/host/fsAtomic";
import {
  addFileIntent,
  applyFileChange,
  backupHostPath,
  fileProgress,
  ledgerPath,
  loadLedger,
  markFileDone,
  newLedger,
  parseLedger,
  removeLedger,
  restoreOriginal,
  revertFile,
  saveLedger,
  saveLedgerIfChanged,
  type FileEntry,
  type Ledger,
} from "../../agent/src/host/ledger";
import {
  listFiles,
  makeHostRoot,
  putHostFile,
  removeHostRoot,
  runTsChild,
  supportScript,
} from "../support/hostRoot";
import { BLOCK, CONFIG, DROP_IN, DROP_IN_TEXT, META } from "../support/stateDriver";

const T0 = new Date("2025-01-02T03:04:05.000Z");
const T1 = new Date("2025-01-02T03:04:06.000Z");
const ORIGINAL = Buffer.from(
  'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause:3.9"\n',
);
const WRITTEN = Buffer.concat([ORIGINAL, Buffer.from(BLOCK)]);
const sha = (b: Buffer | string) => sha256(b);

describe("ledger (pure)", () => {
  it("starts empty with the install's metadata", () => {
    expect(newLedger(META, T0)).toEqual({
      schemaVersion: 1,
      ...META,
      createdAt: "2025-01-02T03:04:05.000Z",
      updatedAt: "2025-01-02T03:04:05.000Z",
      files: [],
      artifacts: [],
    });
  });

  it("records the intent to modify a file with its original bytes, hash and mode", () => {
    const l = addFileIntent(
      newLedger(META, T0),
      {
        path: CONFIG,
        current: ORIGINAL,
        currentMode: 0o100640,
        next: WRITTEN,
        backup: "/var/lib/vnode-agent/backup/x",
      },
      T1,
    );
    expect(l.files).toEqual([
      {
        path: CONFIG,
        kind: "modified",
        state: "intent",
        originalSha256: sha(ORIGINAL),
        originalBase64: ORIGINAL.toString("base64"),
        originalMode: 0o640,
        backup: "/var/lib/vnode-agent/backup/x",
        writtenSha256: sha(WRITTEN),
        restorable: true,
        createdDirs: [],
        updatedAt: "2025-01-02T03:04:06.000Z",
      },
    ]);
    expect(l.updatedAt).toBe("2025-01-02T03:04:06.000Z");
    expect(markFileDone(l, CONFIG, T1).files[0].state).toBe("done");
  });

  it("records a created file without an original", () => {
    const l = addFileIntent(
      newLedger(META, T0),
      { path: DROP_IN, current: null, next: "x", createdDirs: ["/etc/containerd/conf.d"] },
      T1,
    );
    expect(l.files).toEqual([
      {
        path: DROP_IN,
        kind: "created",
        state: "intent",
        originalSha256: null,
        writtenSha256: sha("x"),
        restorable: true,
        createdDirs: ["/etc/containerd/conf.d"],
        updatedAt: "2025-01-02T03:04:06.000Z",
      },
    ]);
  });

  it("keeps the first original on a rerun, so our own write is never taken for the original", () => {
    let l = addFileIntent(
      newLedger(META, T0),
      { path: CONFIG, current: ORIGINAL, next: WRITTEN },
      T0,
    );
    l = markFileDone(l, CONFIG, T0);
    const next2 = Buffer.concat([WRITTEN, Buffer.from("# v2\n")]);
    l = addFileIntent(l, { path: CONFIG, current: WRITTEN, next: next2 }, T1);
    expect(l.files).toHaveLength(1);
    expect(l.files[0]).toMatchObject({
      kind: "modified",
      state: "intent",
      originalSha256: sha(ORIGINAL),
      originalBase64: ORIGINAL.toString("base64"),
      writtenSha256: sha(next2),
      restorable: true,
    });
  });

  it("stops treating the original as restorable once someone else edited the file", () => {
    let l = markFileDone(
      addFileIntent(newLedger(META, T0), { path: CONFIG, current: ORIGINAL, next: WRITTEN }, T0),
      CONFIG,
      T0,
    );
    const edited = Buffer.concat([WRITTEN, Buffer.from("[debug]\n")]);
    const next = Buffer.concat([edited, Buffer.from("# more\n")]);
    l = markFileDone(addFileIntent(l, { path: CONFIG, current: edited, next }, T1), CONFIG, T1);
    expect(l.files[0].restorable).toBe(false);
    expect(restoreOriginal(l.files[0], next)).toEqual({
      action: "remove-ours",
      reason: "changed since the agent wrote it",
    });
  });

  it("refuses to mark done a write it never recorded", () => {
    expect(() => markFileDone(newLedger(META, T0), CONFIG)).toThrow(
      "ledger has no entry for /etc/containerd/config.toml; record the intent before the write.",
    );
  });

  const modified: FileEntry = addFileIntent(
    newLedger(META, T0),
    { path: CONFIG, current: ORIGINAL, currentMode: 0o640, next: WRITTEN },
    T0,
  ).files[0];
  const created: FileEntry = addFileIntent(
    newLedger(META, T0),
    { path: DROP_IN, current: null, next: DROP_IN_TEXT },
    T0,
  ).files[0];

  it("tells written, pending and diverged apart from the bytes on disk", () => {
    expect(fileProgress(modified, WRITTEN)).toBe("written");
    expect(fileProgress(modified, ORIGINAL)).toBe("pending");
    expect(fileProgress(modified, Buffer.from("other"))).toBe("diverged");
    expect(fileProgress(modified, null)).toBe("diverged");
    expect(fileProgress(created, null)).toBe("pending");
    expect(fileProgress(created, Buffer.from(DROP_IN_TEXT))).toBe("written");
  });

  it("decides how to undo each entry from the bytes on disk", () => {
    expect(restoreOriginal(modified, WRITTEN)).toEqual({
      action: "restore",
      bytes: ORIGINAL,
      mode: 0o640,
      reason: "unchanged since the agent wrote it",
    });
    expect(restoreOriginal(modified, ORIGINAL)).toEqual({
      action: "none",
      reason: "already original",
    });
    expect(restoreOriginal(modified, null)).toEqual({
      action: "none",
      reason: "removed since; not recreated",
    });
    expect(restoreOriginal(modified, Buffer.concat([WRITTEN, Buffer.from("x")]))).toEqual({
      action: "remove-ours",
      reason: "changed since the agent wrote it",
    });
    expect(restoreOriginal(created, Buffer.from(DROP_IN_TEXT))).toEqual({
      action: "delete",
      reason: "created by the agent and unchanged since",
    });
    expect(restoreOriginal(created, null)).toEqual({ action: "none", reason: "already absent" });
    expect(restoreOriginal(created, Buffer.from("edited"))).toEqual({
      action: "remove-ours",
      reason: "created by the agent but changed since",
    });
  });
});

describe("ledger parsing", () => {
  const valid = (): Ledger =>
    markFileDone(
      addFileIntent(newLedger(META, T0), { path: CONFIG, current: ORIGINAL, next: WRITTEN }, T0),
      CONFIG,
      T0,
    );

  it("round-trips through JSON", () => {
    expect(parseLedger(JSON.stringify(valid()), "/x/ledger.json")).toEqual(valid());
  });

  it("names the file when it is not JSON", () => {
    expect(() => parseLedger("{ nope", "/h/var/lib/vnode-agent/ledger.json")).toThrow(
      /^ledger \/h\/var\/lib\/vnode-agent\/ledger\.json is corrupt \(not valid JSON: .+\); originals are backed up next to it under backup\/\.$/,
    );
  });

  it("names the file and the field when the shape is wrong", () => {
    const bad = { ...valid(), isolationMode: "per_pod" };
    expect(() => parseLedger(JSON.stringify(bad), "/l.json")).toThrow(
      'ledger /l.json is invalid: isolationMode: Invalid option: expected one of "per-namespace"|"per-pod".',
    );
  });

  it("rejects original bytes that do not match their hash", () => {
    const bad = valid();
    bad.files[0].originalBase64 = Buffer.from("tampered").toString("base64");
    expect(() => parseLedger(JSON.stringify(bad), "/l.json")).toThrow(
      "ledger /l.json is invalid: files[0].originalBase64: original bytes do not match originalSha256.",
    );
  });

  it("refuses a ledger from a newer agent", () => {
    expect(() => parseLedger(JSON.stringify({ ...valid(), schemaVersion: 2 }), "/l.json")).toThrow(
      "ledger /l.json has schemaVersion 2, written by a newer agent; this agent reads version 1.",
    );
  });
});

describe("ledger on a host root", () => {
  let root: string;
  beforeEach(async () => {
    root = await makeHostRoot("vnode-ledger-");
  });
  afterEach(async () => {
    await removeHostRoot(root);
  });

  it("is absent before the first save, and errors name the file when corrupt", async () => {
    expect(await loadLedger({ hostRoot: root })).toBeNull();
    await putHostFile(root, "/var/lib/vnode-agent/ledger.json", "");
    await expect(loadLedger({ hostRoot: root })).rejects.toThrow(
      `ledger ${root}/var/lib/vnode-agent/ledger.json is corrupt (not valid JSON: Unexpected end of JSON input); originals are backed up next to it under backup/.`,
    );
  });

  it("writes the intent with a 0600 backup before the file changes, then the file, then done", async () => {
    const loc = { hostRoot: root, stateDir: "/state" };
    await putHostFile(root, CONFIG, ORIGINAL, 0o640);
    const { ledger, changed } = await applyFileChange(loc, newLedger(META, T0), CONFIG, WRITTEN);
    expect(changed).toBe(true);
    expect(fs.readFileSync(path.join(root, CONFIG)).equals(WRITTEN)).toBe(true);
    expect(fs.statSync(path.join(root, CONFIG)).mode & 0o7777).toBe(0o640);
    expect(ledgerPath(loc)).toBe(`${root}/state/ledger.json`);
    expect(fs.statSync(ledgerPath(loc)).mode & 0o7777).toBe(0o600);
    const onDisk = await loadLedger(loc);
    expect(onDisk).toEqual(ledger);
    expect(onDisk?.files.map((f) => [f.path, f.kind, f.state, f.backup, f.originalMode])).toEqual([
      [CONFIG, "modified", "done", "/state/backup/etc/containerd/config.toml", 0o640],
    ]);
    expect(backupHostPath(loc, CONFIG)).toBe("/state/backup/etc/containerd/config.toml");
    const backup = path.join(root, "state/backup/etc/containerd/config.toml");
    expect(fs.readFileSync(backup).equals(ORIGINAL)).toBe(true);
    expect(fs.statSync(backup).mode & 0o7777).toBe(0o600);

    // Same inputs again: nothing written, ledger bytes unchanged.
    const before = fs.readFileSync(ledgerPath(loc));
    expect((await applyFileChange(loc, ledger, CONFIG, WRITTEN)).changed).toBe(false);
    expect(fs.readFileSync(ledgerPath(loc)).equals(before)).toBe(true);
  });

  it("with saveDone false leaves the done mark to the next save; saveLedgerIfChanged writes only a different ledger", async () => {
    const loc = { hostRoot: root };
    await putHostFile(root, CONFIG, ORIGINAL);
    const { ledger, changed } = await applyFileChange(loc, newLedger(META, T0), CONFIG, WRITTEN, {
      saveDone: false,
    });
    expect(changed).toBe(true);
    expect(fs.readFileSync(path.join(root, CONFIG)).equals(WRITTEN)).toBe(true);
    // On disk: the intent, saved before the write. In memory: done.
    expect((await loadLedger(loc))?.files.map((f) => f.state)).toEqual(["intent"]);
    expect(ledger.files.map((f) => f.state)).toEqual(["done"]);

    expect(await saveLedgerIfChanged(loc, ledger)).toBe(true);
    const saved = await loadLedger(loc);
    expect(saved).toEqual(ledger);
    const inode = fs.statSync(ledgerPath(loc)).ino;
    expect(await saveLedgerIfChanged(loc, saved!)).toBe(false);
    expect(fs.statSync(ledgerPath(loc)).ino).toBe(inode);
    // A mode given as a number still works (the older signature).
    await applyFileChange(loc, saved!, "/etc/containerd/conf.d/x.toml", "x", 0o600);
    expect(fs.statSync(path.join(root, "etc/containerd/conf.d/x.toml")).mode & 0o7777).toBe(0o600);
  });

  it("reverts byte for byte, deletes created files and the dirs it created, and is idempotent", async () => {
    const loc = { hostRoot: root };
    await putHostFile(root, CONFIG, ORIGINAL, 0o640);
    let ledger = newLedger(META, T0);
    ({ ledger } = await applyFileChange(loc, ledger, CONFIG, WRITTEN));
    ({ ledger } = await applyFileChange(loc, ledger, "/etc/containerd/new/deeper/vnode.toml", "x"));
    expect(ledger.files[1].createdDirs).toEqual([
      "/etc/containerd/new/deeper",
      "/etc/containerd/new",
    ]);
    // Simulate a drift of mode on our written file: restore still brings the original mode back.
    await fsp.chmod(path.join(root, CONFIG), 0o644);

    const decisions = [];
    for (const e of ledger.files) decisions.push((await revertFile(loc, e)).action);
    expect(decisions).toEqual(["restore", "delete"]);
    expect(fs.readFileSync(path.join(root, CONFIG)).equals(ORIGINAL)).toBe(true);
    expect(fs.statSync(path.join(root, CONFIG)).mode & 0o7777).toBe(0o640);
    expect(fs.existsSync(path.join(root, "etc/containerd/new"))).toBe(false);

    const again = [];
    for (const e of ledger.files) again.push((await revertFile(loc, e)).action);
    expect(again).toEqual(["none", "none"]);

    await removeLedger(loc);
    await removeLedger(loc);
    expect(listFiles(root)).toEqual(["etc/containerd/config.toml"]);
  });

  it("removes only our part from a file someone changed since", async () => {
    const loc = { hostRoot: root };
    await putHostFile(root, CONFIG, ORIGINAL);
    const { ledger } = await applyFileChange(loc, newLedger(META, T0), CONFIG, WRITTEN);
    await fsp.appendFile(path.join(root, CONFIG), "[debug]\n");
    const decision = await revertFile(loc, ledger.files[0], (cur) =>
      Buffer.from(cur.toString().replace(BLOCK, "")),
    );
    expect(decision.action).toBe("remove-ours");
    expect(fs.readFileSync(path.join(root, CONFIG), "utf8")).toBe(
      ORIGINAL.toString() + "[debug]\n",
    );
  });

  it("validates before saving", async () => {
    const bad = { ...newLedger(META, T0), agentVersion: "" };
    await expect(saveLedger({ hostRoot: root }, bad)).rejects.toThrow(
      `ledger ${root}/var/lib/vnode-agent/ledger.json not saved, it is invalid: agentVersion: Too small: expected string to have >=1 characters.`,
    );
    expect(await loadLedger({ hostRoot: root })).toBeNull();
  });
});

// The fault tests: a real child process runs install (host lock, ledger, atomic writes,
// artifacts) and is SIGKILLed at one point; a rerun must converge with no temp file left,
// and uninstall must then restore the original byte for byte.
describe("crash between steps and rerun", () => {
  const driver = supportScript("stateDriver.ts");
  const SHIM = "/opt/vnode/bin/containerd-shim-vnode-v2";
  let root: string;
  let payload: string;
  const shimBytes = Buffer.from("#!/bin/sh\necho shim\n");

  beforeEach(async () => {
    root = await makeHostRoot("vnode-crash-");
    payload = path.join(root, "..", path.basename(root) + "-payload");
    await fsp.mkdir(payload);
    await fsp.writeFile(path.join(payload, "containerd-shim-vnode-v2"), shimBytes);
    await fsp.writeFile(path.join(payload, "vnode-helper"), "helper\n");
    await putHostFile(root, CONFIG, ORIGINAL, 0o640);
  });
  afterEach(async () => {
    await removeHostRoot(root);
    await removeHostRoot(payload);
  });

  const tempFiles = () => listFiles(root).filter((f) => isTempFile(f));
  const run = (cmd: string, fault?: string, env: Record<string, string> = {}) =>
    runTsChild(driver, [cmd, root, payload], fault ? { ...env, FAULT: fault } : env);

  async function expectInstalled(): Promise<void> {
    expect(fs.readFileSync(path.join(root, CONFIG)).equals(WRITTEN)).toBe(true);
    expect(fs.readFileSync(path.join(root, DROP_IN), "utf8")).toBe(DROP_IN_TEXT);
    expect(fs.readFileSync(path.join(root, SHIM)).equals(shimBytes)).toBe(true);
    const ledger = (await loadLedger({ hostRoot: root })) as Ledger;
    expect(
      ledger.files.map((f) => [f.path, f.kind, f.state, f.originalSha256, f.writtenSha256]),
    ).toEqual([
      [CONFIG, "modified", "done", sha(ORIGINAL), sha(WRITTEN)],
      [DROP_IN, "created", "done", null, sha(DROP_IN_TEXT)],
    ]);
    expect(ledger.artifacts.map((a) => [a.path, a.state, a.sha256])).toEqual([
      [SHIM, "done", sha(shimBytes)],
      ["/opt/vnode/bin/vnode-helper", "done", sha("helper\n")],
    ]);
    expect(tempFiles()).toEqual([]);
    expect(fs.existsSync(path.join(root, "var/lib/vnode-agent/agent.lock"))).toBe(false);
  }

  async function expectUninstalled(): Promise<void> {
    expect(fs.readFileSync(path.join(root, CONFIG)).equals(ORIGINAL)).toBe(true);
    expect(fs.statSync(path.join(root, CONFIG)).mode & 0o7777).toBe(0o640);
    expect(fs.existsSync(path.join(root, "etc/containerd/conf.d"))).toBe(false);
    expect(fs.existsSync(path.join(root, "opt"))).toBe(false);
    expect(listFiles(root)).toEqual(["etc/containerd/config.toml"]);
  }

  it.each([
    // [kill point, what the host holds right after the kill]
    ["open:/etc/containerd/config.toml#1", "intent recorded, config original"],
    ["rename:/etc/containerd/config.toml#1", "config temp complete, not renamed"],
    ["rename:/var/lib/vnode-agent/ledger.json#2", "config written, ledger still at intent"],
    ["rename:/etc/containerd/conf.d/vnode.toml#1", "drop-in temp in a dir the agent created"],
    ["open:/opt/vnode/bin/containerd-shim-vnode-v2#1", "artifact intent recorded, nothing copied"],
    ["rename:/opt/vnode/bin/vnode-helper#1", "one artifact copied, the next one's temp left"],
  ])("install killed at %s (%s) converges on rerun", async (fault) => {
    const killed = await run("install", fault);
    expect([killed.signal, killed.stderr]).toEqual(["SIGKILL", ""]);
    const ledger = (await loadLedger({ hostRoot: root })) as Ledger;
    // Whatever the kill point, the ledger holds the config's original before anything changed.
    expect(ledger.files[0].originalSha256).toBe(sha(ORIGINAL));
    expect([sha(ORIGINAL), sha(WRITTEN)]).toContain(sha(fs.readFileSync(path.join(root, CONFIG))));
    if (fault.startsWith("rename:/etc") || fault.startsWith("rename:/opt"))
      expect(tempFiles()).toHaveLength(1);

    const rerun = await run("install");
    expect(rerun.code).toBe(0);
    // The killed run still held the host lock: the rerun takes it over and says why.
    expect(
      rerun.stderr
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    ).toMatchObject([
      {
        level: "warn",
        msg: "took over a stale host lock",
        reason: `pid ${killed.pid} is not running`,
      },
    ]);
    await expectInstalled();

    const un = await run("uninstall");
    expect([un.code, un.stderr]).toEqual([0, ""]);
    await expectUninstalled();
  });

  // The installer's way: done marks saved with the next intent, the last ones once at the end.
  // Ledger renames: #1 config intent, #2 drop-in intent, #3 and #4 the artifacts', #5 the end.
  it.each([
    ["rename:/etc/containerd/config.toml#1", "config temp complete, not renamed"],
    ["rename:/var/lib/vnode-agent/ledger.json#2", "config written, its done not saved"],
    ["rename:/opt/vnode/bin/vnode-helper#1", "shim copied, its done not saved"],
    ["rename:/var/lib/vnode-agent/ledger.json#5", "everything written, last done marks not saved"],
  ])("install with deferred done saves killed at %s (%s) converges on rerun", async (fault) => {
    const deferred = { SAVE_DONE: "deferred" };
    const killed = await run("install", fault, deferred);
    expect([killed.signal, killed.stderr]).toEqual(["SIGKILL", ""]);
    const ledger = (await loadLedger({ hostRoot: root })) as Ledger;
    expect(ledger.files[0].originalSha256).toBe(sha(ORIGINAL));
    // Earlier done marks rode along with later intents; the last entry is still an intent.
    expect([...ledger.files, ...ledger.artifacts].map((e) => e.state).pop()).toBe("intent");

    const rerun = await run("install", undefined, deferred);
    expect(rerun.code).toBe(0);
    await expectInstalled();
    const un = await run("uninstall");
    expect([un.code, un.stderr]).toEqual([0, ""]);
    await expectUninstalled();
  });

  it("install with deferred done saves writes the ledger once per intent and once at the end", async () => {
    const ledgerFile = "/var/lib/vnode-agent/ledger.json";
    // The 6th rename onto the ledger would be one too many: the run completes without it.
    const r = await run("install", `rename:${ledgerFile}#6`, { SAVE_DONE: "deferred" });
    expect([r.code, r.signal]).toEqual([0, null]);
    await expectInstalled();
    const again = await run("install", `rename:${ledgerFile}#1`, { SAVE_DONE: "deferred" });
    expect([again.code, again.signal]).toEqual([0, null]);
  });

  it("uninstall killed after restoring the config converges on rerun, and a third run is harmless", async () => {
    expect((await run("install")).code).toBe(0);
    const killed = await run("uninstall", "rename:/etc/containerd/config.toml#1");
    expect(killed.signal).toBe("SIGKILL");
    expect(tempFiles()).toHaveLength(1);
    expect(fs.readFileSync(path.join(root, CONFIG)).equals(WRITTEN)).toBe(true);
    expect((await run("uninstall")).code).toBe(0);
    await expectUninstalled();
    expect((await run("uninstall")).code).toBe(0);
    await expectUninstalled();
  });
});
