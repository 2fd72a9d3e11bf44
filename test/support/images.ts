/**
 * Local container images for the agent image tests and `npm run bench:image`, with no registry:
 *
 * - a "node" base image standing in for both default base images of agent/Dockerfile (node's
 *   official bookworm-slim and alpine images): the machine's own `node` binary (same major as
 *   the pinned defaults) at /usr/local/bin, its exact shared-library closure from `ldd`, the
 *   machine's npm, busybox as /bin/sh, env and friends, and the machine's CA bundle;
 * - a fixture "upstream vNode" image holding a stand-in multi-call binary and its role links, to
 *   exercise `VNODE_IMAGE`.
 *
 * Why not a debootstrap rootfs: the Dockerfile needs from its bases only a shell, node, npm and
 * /usr/bin/env; the host's own node and libraries give exactly that in seconds and offline,
 * where debootstrap needs a Debian mirror and minutes. The image is cached between runs in a
 * private containers store (never /var/lib/containers), tagged by a hash of every input, so a
 * new node or npm on the machine builds a new base and reruns reuse the old one.
 *
 * Every buildah/podman call goes through {@link buildahArgs}/{@link podmanArgs}: private
 * --root/--runroot, runc, cgroupfs, file events; containers get explicit ulimits because the
 * sandbox refuses to raise hard rlimits.
 */
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AGENT_IMAGE, PAYLOAD_ROLES, PAYLOAD_ROLE_NAMES } from "vnode-contract";
import { describeIf } from "./describeIf";

/** Repository root: the build context of agent/Dockerfile. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const DOCKERFILE = path.join(REPO_ROOT, "agent", "Dockerfile");

/** Where the Dockerfile puts the vNode payload; the agent's default `--payload-dir`. */
export const IMAGE_PAYLOAD_DIR = AGENT_IMAGE.payloadDir;

/** Explicit rlimits for every container (the sandbox refuses to raise hard limits). */
export const ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

// Part of each cache key: bump when a recipe below changes.
const NODE_RECIPE = "node-base v1";
const PAYLOAD_RECIPE = "vnode-payload v2";

const OVERLAYFS_MAGIC = 0x794c7630;

/** A private containers/storage store shared by buildah and podman. */
export interface Store {
  root: string;
  runroot: string;
  /** podman's --tmpdir (its runtime state). */
  tmpdir: string;
  driver: "overlay" | "vfs";
}

/** The cache dir shared by the test helpers; `VNODE_TEST_CACHE` overrides. */
export function cacheDir(): string {
  return process.env.VNODE_TEST_CACHE || path.join(os.tmpdir(), "vnode-test-cache");
}

/**
 * The store the image tests and the benchmark share, so base images and the layer cache
 * survive between runs. overlay unless the cache dir itself is on overlayfs (a container),
 * where the kernel refuses overlay-on-overlay and vfs is the one driver that works.
 */
export function defaultStore(dir = path.join(cacheDir(), "containers")): Store {
  fs.mkdirSync(dir, { recursive: true });
  const driver =
    (process.env.VNODE_TEST_STORAGE_DRIVER as Store["driver"] | undefined) ??
    (fs.statfsSync(dir).type === OVERLAYFS_MAGIC ? "vfs" : "overlay");
  return {
    root: path.join(dir, `root-${driver}`),
    runroot: path.join(dir, `runroot-${driver}`),
    tmpdir: path.join(dir, `podman-tmp-${driver}`),
    driver,
  };
}

function onPath(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
  return dirs.map((d) => path.join(d, cmd)).find((p) => fs.existsSync(p));
}

/** Why buildah/podman image tests cannot run here, or undefined when they can. */
export function imageToolsUnavailable(): string | undefined {
  if (process.platform !== "linux") return `image tests need Linux; this is ${process.platform}`;
  if (process.getuid?.() !== 0)
    return "image tests need root (buildah/podman with private storage, runc)";
  for (const [bin, pkg] of [
    ["buildah", "buildah"],
    ["podman", "podman"],
    ["runc", "runc"],
    ["busybox", "busybox-static"],
    ["npm", "npm (comes with node)"],
    ["ldd", "libc-bin"],
  ]) {
    if (!onPath(bin)) return `${bin} is not installed (Debian package ${pkg})`;
  }
  return undefined;
}

/**
 * `describe` that skips with a printed reason when buildah/podman cannot run here, except on CI
 * (`CI=true`), where a missing requirement fails instead of skipping silently.
 */
export function describeWithImageTools(name: string, fn: () => void): void {
  describeIf(imageToolsUnavailable(), name, fn);
}

function storeFlags(store: Store): string[] {
  return ["--root", store.root, "--runroot", store.runroot, "--storage-driver", store.driver];
}

/** Full argv for buildah on `store`. */
export function buildahArgs(store: Store, args: string[]): string[] {
  return [...storeFlags(store), ...args];
}

/** Full argv for podman on `store`: runc, cgroupfs, file events (no systemd/journald here). */
export function podmanArgs(store: Store, args: string[]): string[] {
  return [
    ...storeFlags(store),
    "--runtime",
    "runc",
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "file",
    "--tmpdir",
    store.tmpdir,
    ...args,
  ];
}

export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time in seconds. */
  seconds: number;
}

/** Runs a command to completion; never throws on a non-zero exit (see {@link check}). */
export function exec(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Exec> {
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 600_000,
        cwd: opts.cwd,
        env: opts.env,
        killSignal: "SIGKILL",
      },
      (err, stdout, stderr) => {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({
          code,
          stdout,
          stderr: err && code === -1 ? `${stderr}\n${err.message}` : stderr,
          seconds,
        });
      },
    );
  });
}

/** Throws with the command and its output tail when it failed. */
export function check(what: string, r: Exec): Exec {
  if (r.code !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`${what} failed with exit code ${r.code}:\n${tail}`);
  }
  return r;
}

export const buildah = (store: Store, args: string[], timeoutMs?: number) =>
  exec("buildah", buildahArgs(store, args), { timeoutMs });
export const podman = (store: Store, args: string[], timeoutMs?: number) =>
  exec("podman", podmanArgs(store, args), { timeoutMs });

/** The absolute library paths in `ldd` output (resolved `=>` targets and the loader). */
export function parseLdd(output: string): string[] {
  const libs = new Set<string>();
  for (const line of output.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.add(m[1]);
  }
  return [...libs].sort();
}

function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex");
}

/** What goes into the node base image, from this machine. */
export interface NodeBaseInputs {
  node: string;
  npmDir: string;
  busybox: string;
  /** Shared libraries of node and busybox (host paths, kept at the same path in the image). */
  libs: string[];
  caBundle?: string;
}

export function nodeBaseInputs(): NodeBaseInputs {
  const node = fs.realpathSync(process.execPath);
  const npmCli = fs.realpathSync(onPath("npm") ?? "npm");
  const npmDir = path.resolve(path.dirname(npmCli), "..");
  if (!fs.existsSync(path.join(npmDir, "package.json"))) {
    throw new Error(
      `Cannot find npm's package dir from ${npmCli}; expected ${npmDir}/package.json.`,
    );
  }
  const busybox = fs.realpathSync(onPath("busybox") ?? "busybox");
  const libs = new Set<string>();
  for (const bin of [node, busybox]) {
    let out = "";
    try {
      out = execFileSync("ldd", [bin], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    } catch {
      // "not a dynamic executable": busybox-static needs no libraries
    }
    for (const lib of parseLdd(out)) libs.add(lib);
  }
  const ca = "/etc/ssl/certs/ca-certificates.crt";
  return {
    node,
    npmDir,
    busybox,
    libs: [...libs].sort(),
    caBundle: fs.existsSync(ca) ? ca : undefined,
  };
}

/** Cache key over the bytes of every input (npm by its package.json) and the recipe. */
export function nodeBaseKey(inputs: NodeBaseInputs): string {
  const parts: (string | Buffer)[] = [NODE_RECIPE];
  for (const file of [inputs.node, inputs.busybox, ...inputs.libs, inputs.caBundle ?? "no-ca"]) {
    parts.push(file, fs.existsSync(file) ? fs.readFileSync(file) : "");
  }
  parts.push(fs.readFileSync(path.join(inputs.npmDir, "package.json")));
  return sha256(...parts).slice(0, 16);
}

async function imageExists(store: Store, ref: string): Promise<boolean> {
  return (await podman(store, ["image", "exists", ref])).code === 0;
}

/** Removes the other tags of `repository` (stale cache keys), keeping `keep`. */
async function pruneOtherTags(store: Store, repository: string, keep: string): Promise<void> {
  const r = check(
    "listing images",
    await podman(store, ["images", "--format", "{{.Repository}}:{{.Tag}}"]),
  );
  const stale = r.stdout
    .split("\n")
    .filter((ref) => ref.startsWith(`${repository}:`) && ref !== keep);
  if (stale.length) await podman(store, ["rmi", "--force", ...stale]);
}

/**
 * Builds a container from scratch, lets `fill` write its rootfs, applies `config` and commits it
 * as `ref`. The working container is removed even when a step fails.
 */
export async function commitFromScratch(
  store: Store,
  ref: string,
  fill: (rootfs: string) => void,
  config: string[],
): Promise<void> {
  const ctr = check(
    "buildah from scratch",
    await buildah(store, ["from", "scratch"]),
  ).stdout.trim();
  try {
    const rootfs = check("buildah mount", await buildah(store, ["mount", ctr])).stdout.trim();
    fill(rootfs);
    check("buildah config", await buildah(store, ["config", ...config, ctr]));
    check(`buildah commit ${ref}`, await buildah(store, ["commit", "--quiet", "--rm", ctr, ref]));
  } catch (err) {
    await buildah(store, ["rm", ctr]);
    throw err;
  }
}

/** Copies a host file to the same path under `rootfs`, following symlinks. */
function copyInto(rootfs: string, file: string, dest = file): void {
  const target = path.join(rootfs, dest);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(file, target);
  fs.chmodSync(target, fs.statSync(file).mode & 0o7777);
}

function symlinkInto(rootfs: string, linkPath: string, target: string): void {
  const at = path.join(rootfs, linkPath);
  fs.mkdirSync(path.dirname(at), { recursive: true });
  fs.rmSync(at, { force: true });
  fs.symlinkSync(target, at);
}

/** Lays out the node base rootfs like node's official images (node and npm under /usr/local). */
export function fillNodeBase(rootfs: string, inputs: NodeBaseInputs): void {
  copyInto(rootfs, inputs.node, "/usr/local/bin/node");
  // Libraries keep the path ldd resolved them to: the loader searches there without a cache.
  for (const lib of inputs.libs) copyInto(rootfs, lib);
  fs.cpSync(inputs.npmDir, path.join(rootfs, "usr/local/lib/node_modules/npm"), {
    recursive: true,
    verbatimSymlinks: true,
  });
  symlinkInto(rootfs, "/usr/local/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js");
  symlinkInto(rootfs, "/usr/local/bin/npx", "../lib/node_modules/npm/bin/npx-cli.js");
  copyInto(rootfs, inputs.busybox, "/bin/busybox");
  const applets = execFileSync(inputs.busybox, ["--list-full"], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean);
  for (const applet of applets) {
    if (!fs.existsSync(path.join(rootfs, applet)))
      symlinkInto(rootfs, `/${applet}`, "/bin/busybox");
  }
  if (inputs.caBundle) copyInto(rootfs, inputs.caBundle);
  fs.mkdirSync(path.join(rootfs, "etc"), { recursive: true });
  fs.writeFileSync(path.join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  fs.writeFileSync(path.join(rootfs, "etc/group"), "root:x:0:\n");
  fs.mkdirSync(path.join(rootfs, "root"), { mode: 0o700, recursive: true });
  fs.mkdirSync(path.join(rootfs, "tmp"), { recursive: true });
  fs.chmodSync(path.join(rootfs, "tmp"), 0o1777);
}

/**
 * Returns the ref of the local node base image, building it when this machine's inputs have no
 * cached image yet. The CA bundle (and NODE_EXTRA_CA_CERTS) let npm in the build stage trust
 * what the machine trusts, e.g. a TLS-inspecting proxy in front of the npm registry.
 */
export async function ensureNodeBaseImage(store: Store): Promise<string> {
  const inputs = nodeBaseInputs();
  const repository = "localhost/vnode-test/node";
  const ref = `${repository}:${nodeBaseKey(inputs)}`;
  if (await imageExists(store, ref)) return ref;
  const env = ["--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
  if (inputs.caBundle) env.push("--env", `NODE_EXTRA_CA_CERTS=${inputs.caBundle}`);
  await commitFromScratch(store, ref, (rootfs) => fillNodeBase(rootfs, inputs), [
    ...env,
    "--cmd",
    '["node"]',
  ]);
  await pruneOtherTags(store, repository, ref);
  return ref;
}

/**
 * A stand-in "upstream vNode" image laid out as vNode's docs describe the real one: one
 * multi-call binary and its role names as symlinks to it (here a script; never a working shim).
 */
export interface PayloadFixture {
  ref: string;
  /** Path of the multi-call binary in the image. */
  binary: string;
  content: string;
  /** Role names (symlinks to the binary) in the image, as paths. */
  links: string[];
}

const STAND_IN = (name: string) =>
  `#!/bin/sh\n# Test stand-in for ${name}; not the vNode runtime.\necho "$(basename "$0"): test stand-in" >&2\nexit 1\n`;

/**
 * Returns the ref of a local "upstream vNode" image: `/usr/local/bin/vnode` and links named
 * `roles` to it. Without `roles`, every role of the contract; fewer to exercise the refusal.
 */
export async function ensurePayloadImage(
  store: Store,
  roles: readonly string[] = PAYLOAD_ROLE_NAMES.map((r) => PAYLOAD_ROLES[r]),
): Promise<PayloadFixture> {
  const binary = "/usr/local/bin/vnode";
  const content = STAND_IN("vnode");
  const links = roles.map((name) => `/usr/local/bin/${name}`);
  const repository = "localhost/vnode-test/vnode-upstream";
  const ref = `${repository}:${sha256(PAYLOAD_RECIPE, binary, content, ...links).slice(0, 16)}`;
  if (!(await imageExists(store, ref))) {
    const fill = (rootfs: string) => {
      fs.mkdirSync(path.join(rootfs, "usr/local/bin"), { recursive: true });
      fs.writeFileSync(path.join(rootfs, binary), content, { mode: 0o755 });
      for (const link of links) fs.symlinkSync("vnode", path.join(rootfs, link));
      fs.mkdirSync(path.join(rootfs, "etc"), { recursive: true });
      fs.writeFileSync(path.join(rootfs, "etc/vnode-release"), "0.0.0-test\n");
    };
    await commitFromScratch(store, ref, fill, ["--cmd", "[]"]);
  }
  return { ref, binary, content, links };
}

export interface BuildOptions {
  tag: string;
  buildArgs: Record<string, string>;
  /** Build context; defaults to the repo root. */
  context?: string;
  /** Ignore the layer cache (a cold build; the base images are still local). */
  noCache?: boolean;
  /** Build only up to this stage (e.g. `build`). */
  target?: string;
}

/**
 * `buildah bud` argv for agent/Dockerfile: layer cache on, never pulls, host network for npm.
 * `--force-rm`: buildah 1.28 otherwise leaves a mounted working container behind for a stage
 * that is only a FROM (the payload selector) and for every failed build.
 */
export function budArgs(opts: BuildOptions): string[] {
  const context = opts.context ?? REPO_ROOT;
  const args = [
    "bud",
    "--layers",
    "--force-rm",
    "--pull-never",
    "--network",
    "host",
    "--runtime",
    "runc",
    "--isolation",
    "oci",
  ];
  args.push(...ULIMITS, "--file", path.join(context, "agent", "Dockerfile"), "--tag", opts.tag);
  if (opts.noCache) args.push("--no-cache");
  if (opts.target) args.push("--target", opts.target);
  for (const [k, v] of Object.entries(opts.buildArgs)) args.push("--build-arg", `${k}=${v}`);
  return [...args, context];
}

/** Builds agent/Dockerfile; throws with the build log's tail on failure. */
export async function buildAgentImage(store: Store, opts: BuildOptions): Promise<Exec> {
  return check(`buildah bud ${opts.tag}`, await buildah(store, budArgs(opts), 900_000));
}

export interface RunOptions {
  /** host path -> container path, mounted read-only. */
  readOnlyMounts?: Record<string, string>;
  entrypoint?: string;
}

/**
 * Runs the image the way a hardened DaemonSet would: no network, read-only root filesystem
 * (podman adds tmpfs /tmp, /run), explicit ulimits, removed afterwards.
 */
export function runArgs(image: string, args: string[], opts: RunOptions = {}): string[] {
  const argv = ["run", "--rm", "--network", "none", "--read-only", ...ULIMITS];
  for (const [host, ctr] of Object.entries(opts.readOnlyMounts ?? {}))
    argv.push("--volume", `${host}:${ctr}:ro`);
  if (opts.entrypoint) argv.push("--entrypoint", opts.entrypoint);
  return [...argv, image, ...args];
}

export function runImage(
  store: Store,
  image: string,
  args: string[],
  opts: RunOptions = {},
): Promise<Exec> {
  return podman(store, runArgs(image, args, opts), 120_000);
}

/** `podman image inspect` of one image. */
export async function inspectImage(store: Store, ref: string): Promise<ImageInspect> {
  const r = check(`podman image inspect ${ref}`, await podman(store, ["image", "inspect", ref]));
  return (JSON.parse(r.stdout) as ImageInspect[])[0];
}

export interface ImageInspect {
  Id: string;
  Size: number;
  User?: string;
  Config: {
    Entrypoint?: string[];
    Cmd?: string[];
    Env?: string[];
    Labels?: Record<string, string>;
    User?: string;
  };
}

/** Mounts the image's rootfs read-only for `fn` and unmounts it afterwards. */
export async function withImageRootfs<T>(
  store: Store,
  ref: string,
  fn: (rootfs: string) => T | Promise<T>,
): Promise<T> {
  const rootfs = check(
    `podman image mount ${ref}`,
    await podman(store, ["image", "mount", ref]),
  ).stdout.trim();
  try {
    return await fn(rootfs);
  } finally {
    await podman(store, ["image", "unmount", ref]);
  }
}

/** Every path under `rootfs` (relative, with a leading /), directories included. */
export function listTree(rootfs: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(rootfs, rel), { withFileTypes: true })) {
      const p = `${rel}/${e.name}`;
      out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk("");
  return out.sort();
}
