/**
 * Crash-safe file primitives. Every write goes to a temp file in the target's directory, is
 * fsynced, renamed over the target and the directory is fsynced, so a crash at any point
 * leaves either the old or the new file, never half of one. Renaming (instead of writing in
 * place) also means a running binary never gets ETXTBSY.
 *
 * A killed process can leave its temp file behind; temps have a fixed shape
 * (`.<name>.<12 hex>.tmp`) so {@link removeTempLeftovers} can find and remove exactly those.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants, type Stats } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";

/** Mode of a file this module creates when neither the caller nor an existing file says. */
export const DEFAULT_FILE_MODE = 0o644;

const TEMP_RE = /^\.(.+)\.[0-9a-f]{12}\.tmp$/;

/** Hex sha256 of some bytes. */
export function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Bytes read per call when streaming a file. One buffer per stream, reused for every chunk:
 * memory stays flat for any payload size, and a large chunk keeps the syscall and hashing
 * overhead per byte low (a stream of fresh 64 KiB buffers costs several times the CPU, and
 * its garbage piles up in RSS until the next GC).
 */
const CHUNK_BYTES = 1 << 20;

/** Calls `fn` with each successive chunk read from `handle`; a chunk is valid during the call. */
async function forEachChunkOf(
  handle: fsp.FileHandle,
  fn: (chunk: Buffer) => void | Promise<void>,
): Promise<void> {
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  for (;;) {
    const { bytesRead } = await handle.read(buf, 0, buf.length, null);
    if (bytesRead === 0) return;
    await fn(buf.subarray(0, bytesRead));
  }
}

/** {@link forEachChunkOf} over the file at `file`. */
async function forEachChunk(
  file: string,
  fn: (chunk: Buffer) => void | Promise<void>,
): Promise<void> {
  const handle = await fsp.open(file, "r");
  try {
    await forEachChunkOf(handle, fn);
  } finally {
    await handle.close();
  }
}

/** Hex sha256 of a file, streamed (payload binaries can be large). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await forEachChunk(file, (chunk) => {
    hash.update(chunk);
  });
  return hash.digest("hex");
}

/** The file's bytes, or null when it does not exist. Other errors (EACCES, EISDIR) throw. */
export async function readIfExists(file: string): Promise<Buffer | null> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    if (errno(err) === "ENOENT") return null;
    throw err;
  }
}

/** The name of a fresh temp file next to `target`. */
export function tempPathFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(6).toString("hex")}.tmp`,
  );
}

/** Whether `file` is a temp file this module made (for `target`, when given). */
export function isTempFile(file: string, target?: string): boolean {
  const m = TEMP_RE.exec(path.basename(file));
  if (!m) return false;
  return target === undefined || m[1] === path.basename(target);
}

/**
 * Hex sha256 of `file`, and whether `other` holds exactly the same bytes, in one pass over
 * both: checking an installed copy against its source costs one hash, not two (comparing is
 * a fraction of the cost of hashing, and byte equality is a stronger check than equal hashes).
 * A missing `other` throws ENOENT, like a missing `file`.
 */
export async function sha256FileComparing(
  file: string,
  other: string,
): Promise<{ sha256: string; identical: boolean }> {
  const hash = createHash("sha256");
  const handle = await fsp.open(other, "r");
  let identical = true;
  try {
    const theirs = Buffer.allocUnsafe(CHUNK_BYTES);
    await forEachChunk(file, async (chunk) => {
      hash.update(chunk);
      if (!identical) return;
      const n = await readFully(handle, theirs, chunk.length);
      identical = n === chunk.length && theirs.subarray(0, n).equals(chunk);
    });
    // Same prefix: `other` must end where `file` ends.
    if (identical) identical = (await handle.read(theirs, 0, 1, null)).bytesRead === 0;
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest("hex"), identical };
}

/** Reads up to `length` bytes into `buf`; fewer only at the end of the file. */
async function readFully(handle: fsp.FileHandle, buf: Buffer, length: number): Promise<number> {
  let n = 0;
  while (n < length) {
    const { bytesRead } = await handle.read(buf, n, length - n, null);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}

/**
 * Writes `data` to `file` atomically, creating parent directories. The file keeps the mode
 * and owner of the file it replaces unless `mode` is given; a new file gets `mode` or 0644.
 * A symlink at `file` is refused: replacing it would silently turn the link into a file.
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | string,
  mode?: number,
): Promise<void> {
  await replaceAtomic(file, mode, async (tmp) => {
    const handle = await fsp.open(tmp, "wx", 0o600);
    try {
      await handle.writeFile(data);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle;
  });
}

/**
 * Copies `src` to `dest` atomically and returns the sha256 of the copy, read back from the temp
 * file just before it is renamed into place. Same mode/owner rules as {@link writeFileAtomic}.
 * The kernel copies (copy_file_range, sendfile as the fallback), so no byte of a large binary
 * passes through this process on the way in, and the read-back hash checks what was written.
 */
export async function copyFileAtomic(src: string, dest: string, mode?: number): Promise<string> {
  const hash = createHash("sha256");
  await replaceAtomic(dest, mode, async (tmp) => {
    // EXCL: the temp name is fresh, like the `wx` open of writeFileAtomic.
    await fsp.copyFile(src, tmp, fsConstants.COPYFILE_EXCL);
    const handle = await fsp.open(tmp, "r");
    try {
      await forEachChunkOf(handle, (chunk) => {
        hash.update(chunk);
      });
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle;
  });
  return hash.digest("hex");
}

/**
 * The atomic replace: `create` makes the temp file next to `file` (it must not exist yet),
 * fills it and returns an open handle to it; the temp then gets its mode and owner, is
 * fsynced, renamed over `file`, and the directory is fsynced. On any failure the temp goes.
 */
async function replaceAtomic(
  file: string,
  mode: number | undefined,
  create: (tmp: string) => Promise<fsp.FileHandle>,
): Promise<void> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const existing = await lstatIfExists(file);
  if (existing?.isSymbolicLink()) {
    throw new Error(`${file} is a symlink; refusing to replace it with a regular file.`);
  }
  if (existing && !existing.isFile()) {
    throw new Error(`${file} exists and is not a regular file; refusing to replace it.`);
  }
  const tmp = tempPathFor(file);
  let renamed = false;
  try {
    const handle = await create(tmp);
    try {
      // chmod explicitly: the open() mode is filtered by the umask.
      await handle.chmod(mode ?? (existing ? existing.mode & 0o7777 : DEFAULT_FILE_MODE));
      if (existing) await chownLikeExisting(handle, existing);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, file);
    renamed = true;
    await fsyncDir(dir);
  } finally {
    if (!renamed) await fsp.rm(tmp, { force: true });
  }
}

/** Removes `file` if it exists; returns whether it did. */
export async function removeFile(file: string): Promise<boolean> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if (errno(err) === "ENOENT") return false;
    throw err;
  }
  await fsyncDir(path.dirname(file));
  return true;
}

/**
 * Removes temp files left by a killed writer in `dir` (only those for `target` when given)
 * and returns their paths. Call it only while holding the host lock: a live writer's temp
 * looks the same as a dead one's.
 */
export async function removeTempLeftovers(dir: string, target?: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (errno(err) === "ENOENT" || errno(err) === "ENOTDIR") return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names.sort()) {
    const full = path.join(dir, name);
    if (isTempFile(full, target)) {
      await fsp.rm(full, { force: true });
      removed.push(full);
    }
  }
  return removed;
}

/** fsync a directory so a rename or unlink in it survives a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function lstatIfExists(file: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(file);
  } catch (err) {
    if (errno(err) === "ENOENT") return null;
    throw err;
  }
}

async function chownLikeExisting(handle: fsp.FileHandle, existing: Stats): Promise<void> {
  const own = await handle.stat();
  if (own.uid === existing.uid && own.gid === existing.gid) return;
  try {
    await handle.chown(existing.uid, existing.gid);
  } catch (err) {
    // Only root may give a file away; an unprivileged run keeps its own owner.
    if (errno(err) !== "EPERM") throw err;
  }
}

/** The `code` of a Node.js system error, or undefined. */
export function errno(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String(err.code) : undefined;
}
