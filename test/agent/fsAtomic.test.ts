import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import {
  copyFileAtomic,
  isTempFile,
  readIfExists,
  removeFile,
  removeTempLeftovers,
  sha256,
  sha256File,
  sha256FileComparing,
  tempPathFor,
  writeFileAtomic,
} from "../../agent/src/host/fsAtomic";
import { listFiles, makeHostRoot, removeHostRoot } from "../support/hostRoot";

let dir: string;
beforeEach(async () => {
  dir = await makeHostRoot("vnode-fsatomic-");
});
afterEach(async () => {
  await removeHostRoot(dir);
});

const mode = (p: string) => fs.statSync(p).mode & 0o7777;

describe("sha256", () => {
  it("hashes bytes and strings alike", () => {
    expect(sha256("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256(Buffer.from("abc"))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  it("hashes a file by streaming", async () => {
    const f = path.join(dir, "f");
    await fsp.writeFile(f, "abc");
    expect(await sha256File(f)).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });
});

describe("sha256FileComparing", () => {
  // Over two read chunks (1 MiB each), so a difference after the first chunk is seen too.
  const bytes = Buffer.alloc(2 * 1024 * 1024 + 3, 7);
  const variant = (edit: (b: Buffer) => Buffer) => edit(Buffer.from(bytes));

  it.each([
    ["the same bytes", bytes, true],
    ["a byte changed in the last chunk", variant((b) => ((b[b.length - 1] = 8), b)), false],
    ["a byte changed in the first chunk", variant((b) => ((b[0] = 8), b)), false],
    ["a prefix", bytes.subarray(0, bytes.length - 1), false],
    ["one more byte", Buffer.concat([bytes, Buffer.from([7])]), false],
    ["an empty file", Buffer.alloc(0), false],
  ])("hashes the file and compares it with %s", async (_what, other, identical) => {
    const a = path.join(dir, "a");
    const b = path.join(dir, "b");
    await fsp.writeFile(a, bytes);
    await fsp.writeFile(b, other);
    expect(await sha256FileComparing(a, b)).toEqual({ sha256: sha256(bytes), identical });
  });

  it("says two empty files are identical", async () => {
    await fsp.writeFile(path.join(dir, "a"), "");
    await fsp.writeFile(path.join(dir, "b"), "");
    expect(await sha256FileComparing(path.join(dir, "a"), path.join(dir, "b"))).toEqual({
      sha256: sha256(""),
      identical: true,
    });
  });

  it("throws ENOENT for a missing file on either side", async () => {
    await fsp.writeFile(path.join(dir, "a"), "x");
    await expect(
      sha256FileComparing(path.join(dir, "a"), path.join(dir, "missing")),
    ).rejects.toMatchObject({ code: "ENOENT" });
    await expect(
      sha256FileComparing(path.join(dir, "missing"), path.join(dir, "a")),
    ).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("readIfExists", () => {
  it("returns the bytes, or null for a missing file", async () => {
    await fsp.writeFile(path.join(dir, "a"), "x=1\n");
    expect(await readIfExists(path.join(dir, "a"))).toEqual(Buffer.from("x=1\n"));
    expect(await readIfExists(path.join(dir, "missing"))).toBeNull();
  });

  it("throws for errors other than a missing file", async () => {
    await expect(readIfExists(dir)).rejects.toMatchObject({ code: "EISDIR" });
  });
});

describe("writeFileAtomic", () => {
  it("creates parent dirs and a 0644 file, leaving no temp file", async () => {
    const f = path.join(dir, "etc", "containerd", "config.toml");
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(f, "version = 2\n");
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(f, "utf8")).toBe("version = 2\n");
    expect(mode(f)).toBe(0o644);
    expect(listFiles(dir)).toEqual(["etc/containerd/config.toml"]);
  });

  it("keeps the mode of the file it replaces unless told", async () => {
    const f = path.join(dir, "config.toml");
    await fsp.writeFile(f, "old");
    await fsp.chmod(f, 0o600);
    await writeFileAtomic(f, "new");
    expect(mode(f)).toBe(0o600);
    await writeFileAtomic(f, "newer", 0o755);
    expect(mode(f)).toBe(0o755);
    expect(fs.readFileSync(f, "utf8")).toBe("newer");
  });

  it("replaces by rename: a reader holding the old file keeps reading the old bytes", async () => {
    const f = path.join(dir, "shim");
    await fsp.writeFile(f, "old bytes");
    const inodeBefore = fs.statSync(f).ino;
    const reader = await fsp.open(f, "r");
    try {
      await writeFileAtomic(f, "new bytes");
      expect((await reader.readFile()).toString()).toBe("old bytes");
    } finally {
      await reader.close();
    }
    expect(fs.statSync(f).ino).not.toBe(inodeBefore);
    expect(fs.readFileSync(f, "utf8")).toBe("new bytes");
  });

  it("refuses to replace a symlink, leaving it as it was", async () => {
    const target = path.join(dir, "real.toml");
    const link = path.join(dir, "config.toml");
    await fsp.writeFile(target, "real");
    await fsp.symlink(target, link);
    await expect(writeFileAtomic(link, "x")).rejects.toThrow(
      `${link} is a symlink; refusing to replace it with a regular file.`,
    );
    expect(fs.readlinkSync(link)).toBe(target);
    expect(fs.readFileSync(target, "utf8")).toBe("real");
    expect(listFiles(dir)).toEqual(["config.toml", "real.toml"]);
  });

  it("refuses to replace a directory", async () => {
    const d = path.join(dir, "conf.d");
    await fsp.mkdir(d);
    await expect(writeFileAtomic(d, "x")).rejects.toThrow(
      `${d} exists and is not a regular file; refusing to replace it.`,
    );
  });
});

describe("copyFileAtomic", () => {
  it("copies with the given mode and returns the sha256 of what it wrote", async () => {
    const src = path.join(dir, "src");
    const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
    await fsp.writeFile(src, bytes);
    const dest = path.join(dir, "opt", "bin", "shim");
    expect(await copyFileAtomic(src, dest, 0o755)).toBe(sha256(bytes));
    expect(fs.readFileSync(dest).equals(bytes)).toBe(true);
    expect(mode(dest)).toBe(0o755);
  });

  it("removes its temp file and leaves the target untouched when the copy fails", async () => {
    const dest = path.join(dir, "shim");
    await fsp.writeFile(dest, "old");
    await expect(copyFileAtomic(path.join(dir, "no-such-source"), dest)).rejects.toMatchObject({
      code: "ENOENT",
    });
    expect(fs.readFileSync(dest, "utf8")).toBe("old");
    expect(listFiles(dir)).toEqual(["shim"]);
  });
});

describe("removeFile", () => {
  it("is idempotent", async () => {
    const f = path.join(dir, "f");
    await fsp.writeFile(f, "x");
    expect(await removeFile(f)).toBe(true);
    expect(await removeFile(f)).toBe(false);
    expect(fs.existsSync(f)).toBe(false);
  });
});

describe("temp files", () => {
  it("are named .<name>.<12 hex>.tmp next to the target", () => {
    const t = tempPathFor("/etc/containerd/config.toml");
    expect(path.dirname(t)).toBe("/etc/containerd");
    expect(path.basename(t)).toMatch(/^\.config\.toml\.[0-9a-f]{12}\.tmp$/);
    expect(isTempFile(t, "/etc/containerd/config.toml")).toBe(true);
    expect(isTempFile(t, "/etc/containerd/other.toml")).toBe(false);
    expect(isTempFile("/etc/containerd/config.toml")).toBe(false);
  });

  it("left by a killed writer are removed, and nothing else", async () => {
    for (const name of [
      "config.toml",
      ".config.toml.0123456789ab.tmp",
      ".config.toml.notours.tmp",
      ".other.toml.aaaaaaaaaaaa.tmp",
      "notes.tmp",
    ]) {
      await fsp.writeFile(path.join(dir, name), "x");
    }
    expect(await removeTempLeftovers(dir, path.join(dir, "config.toml"))).toEqual([
      path.join(dir, ".config.toml.0123456789ab.tmp"),
    ]);
    expect(await removeTempLeftovers(dir)).toEqual([
      path.join(dir, ".other.toml.aaaaaaaaaaaa.tmp"),
    ]);
    expect(listFiles(dir)).toEqual([".config.toml.notours.tmp", "config.toml", "notes.tmp"]);
    expect(await removeTempLeftovers(path.join(dir, "missing"))).toEqual([]);
  });
});
