/**
 * A pause image for pod sandboxes in tests, built locally so no registry is needed: buildah
 * `from scratch`, Debian's static busybox, entrypoint `busybox sleep`. The docker-archive is
 * cached (keyed by the busybox bytes and this recipe), so only the first run on a machine builds.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The image reference the archive carries and the test containerd's `sandbox_image`. */
export const PAUSE_IMAGE = "localhost/vnode-test/pause:1";

/** Debian's busybox-static installs here; the dynamic `busybox` package uses the same path. */
export const BUSYBOX = "/bin/busybox";

// Part of the cache key: change it when the recipe below changes.
const RECIPE = `v1 ${PAUSE_IMAGE} busybox sleep`;

/** Where built archives are kept between runs; `VNODE_TEST_CACHE` overrides. */
export function cacheDir(): string {
  return process.env.VNODE_TEST_CACHE || path.join(os.tmpdir(), "vnode-test-cache");
}

/** True when an ELF file has no program interpreter (PT_INTERP), i.e. is statically linked. */
export function isStaticElf(file: string): boolean {
  const b = fs.readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = b[4] === 2;
  const le = b[5] === 1;
  const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const phoff = is64 ? Number(le ? b.readBigUInt64LE(32) : b.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  for (let i = 0; i < phnum; i++) {
    if (u32(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? "/usr/bin:/bin")
    .split(":")
    .some((dir) => dir && fs.existsSync(path.join(dir, cmd)));
}

/** Why the pause image cannot be built here, or undefined when it can. */
export function pauseImageUnavailable(): string | undefined {
  if (!onPath("buildah")) return "buildah is not installed (Debian package buildah)";
  if (!fs.existsSync(BUSYBOX)) return `${BUSYBOX} is missing (Debian package busybox-static)`;
  if (!isStaticElf(BUSYBOX))
    return `${BUSYBOX} is dynamically linked; install Debian's busybox-static`;
  return undefined;
}

function cacheKey(): string {
  return createHash("sha256")
    .update(RECIPE)
    .update(fs.readFileSync(BUSYBOX))
    .digest("hex")
    .slice(0, 16);
}

/**
 * Returns the path of the pause image's docker-archive, building it when it is not cached.
 * Builds in a private buildah store (vfs, so it works on any filesystem) and publishes the
 * archive with a rename, so parallel test workers never see a half-written file.
 */
export async function pauseImageArchive(): Promise<string> {
  const dir = cacheDir();
  const archive = path.join(dir, `pause-${cacheKey()}.tar`);
  if (fs.existsSync(archive)) return archive;
  fs.mkdirSync(dir, { recursive: true });
  const work = fs.mkdtempSync(path.join(dir, "build-"));
  const buildah = [
    "--root",
    path.join(work, "root"),
    "--runroot",
    path.join(work, "runroot"),
    "--storage-driver",
    "vfs",
  ];
  const b = (...args: string[]) =>
    run("buildah", [...buildah, ...args], { maxBuffer: 16 * 1024 * 1024 });
  try {
    const name = `vnode-pause-${path.basename(work)}`;
    await b("from", "--name", name, "scratch");
    await b("copy", name, BUSYBOX, "/bin/busybox");
    await b("config", "--entrypoint", '["/bin/busybox","sleep","2147483647"]', "--cmd", "", name);
    const tmp = path.join(work, "pause.tar");
    await b(
      "commit",
      "--quiet",
      "--format",
      "docker",
      name,
      `docker-archive:${tmp}:${PAUSE_IMAGE}`,
    );
    await b("rm", name);
    fs.renameSync(tmp, archive);
    return archive;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(
      `Building the pause image with buildah failed: ${e.stderr?.trim() || e.message}`,
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Imports the pause image into the `k8s.io` namespace of the containerd at `socket`. */
export async function importPauseImage(socket: string): Promise<void> {
  const archive = await pauseImageArchive();
  try {
    await run("ctr", ["--address", socket, "--namespace", "k8s.io", "images", "import", archive]);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(
      `Importing ${archive} into containerd at ${socket} failed: ${e.stderr?.trim() || e.message}`,
    );
  }
}
