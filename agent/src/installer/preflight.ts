/**
 * Preflight: can vNode run on this node? One verdict per check with the reason:
 *   kernel     Linux >= 6.1 (a container shares the host's kernel, so os.release() is the host's)
 *   cgroup     cgroup v2 unified only (v1 and hybrid hosts are unsupported)
 *   containerd containerd (not CRI-O & co.) >= --min-containerd, default 1.7
 *   config     containerd config version 2, 3 or 4, and one this containerd can read
 *   payload    the payload dir carries the shim role (containerd-shim-vnode-v2), which
 *              containerd runs for the handler
 * Facts (kernel release, CRI version, config version) are injected; the judging is pure.
 */
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import { badInput } from "../lib/errors";
import { errno } from "../host/fsAtomic";
import { hostPath } from "../host/paths";

export const CHECK_NAMES = ["kernel", "cgroup", "containerd", "config", "payload"] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export const MIN_KERNEL = "6.1";
export const DEFAULT_MIN_CONTAINERD = "1.7";
export const SUPPORTED_CONFIG_VERSIONS = [2, 3, 4] as const;

export interface CheckResult {
  name: CheckName;
  status: "pass" | "fail" | "skip";
  /** False only for `fail`. */
  ok: boolean;
  detail: string;
}

// ---------------------------------------------------------------------------------------------
// Versions

/** A release version: the leading `major.minor[.patch]` of a string, missing parts 0. */
export type Version = readonly [number, number, number];

/**
 * The version at the start of strings such as `6.18.44-fc-v669`, `1.6.20~ds1`, `v2.1.0`,
 * `1.7.27-0ubuntu1~24.04.1`, `v1.7.13-k3s1`; null when there is none. Pre-release and
 * distribution suffixes are ignored.
 */
export function parseVersion(text: string): Version | null {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), m[3] === undefined ? 0 : Number(m[3])] : null;
}

export function compareVersions(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

export function formatVersion(v: Version, parts = 3): string {
  return v.slice(0, parts).join(".");
}

/** Parses a `--min-containerd` value (`1.7`, `2.0.1`, `v1.7`): bad input names the flag. */
export function parseMinContainerd(value: string | undefined): Version {
  const text = value ?? DEFAULT_MIN_CONTAINERD;
  if (!/^v?\d+\.\d+(\.\d+)?$/.test(text.trim())) {
    throw badInput(`--min-containerd must be a version like 1.7 or 2.0.1; got "${text}".`);
  }
  return parseVersion(text) as Version;
}

/** Parses `--skip-preflight` (`kernel,cgroup` or `all`): unknown names are bad input. */
export function parseSkipList(value: string | undefined): Set<CheckName> {
  const names = (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (names.includes("all")) return new Set(CHECK_NAMES);
  const skip = new Set<CheckName>();
  for (const name of names) {
    if (!(CHECK_NAMES as readonly string[]).includes(name)) {
      throw badInput(
        `--skip-preflight has unknown check "${name}"; allowed: ${[...CHECK_NAMES, "all"].join(", ")}.`,
      );
    }
    skip.add(name as CheckName);
  }
  return skip;
}

// ---------------------------------------------------------------------------------------------
// Checks (pure)

const pass = (name: CheckName, detail: string): CheckResult => ({
  name,
  status: "pass",
  ok: true,
  detail,
});
const fail = (name: CheckName, detail: string): CheckResult => ({
  name,
  status: "fail",
  ok: false,
  detail,
});

export function checkKernel(release: string): CheckResult {
  const v = parseVersion(release);
  const min = parseVersion(MIN_KERNEL) as Version;
  if (v === null) return fail("kernel", `cannot read a version from kernel release "${release}"`);
  const shown = formatVersion(v);
  return compareVersions(v, min) >= 0
    ? pass("kernel", `${shown} >= ${MIN_KERNEL}`)
    : fail("kernel", `${shown} < ${MIN_KERNEL}: vNode needs Linux ${MIN_KERNEL} or newer`);
}

/** One line of /proc/<pid>/mountinfo, the parts the cgroup check needs. */
export interface Mount {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

/** Parses mountinfo text (proc(5)); malformed lines are skipped. */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const right = line.slice(sep + 3).split(" ");
    if (left.length < 5 || right.length < 3) continue;
    mounts.push({ mountPoint: unescapeMount(left[4]), fsType: right[0], superOptions: right[2] });
  }
  return mounts;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** What the cgroup check found on the host. */
export interface CgroupFacts {
  /** Contents of /sys/fs/cgroup/cgroup.controllers, null when absent (not a cgroup2 root). */
  rootControllers: string | null;
  /** The host's mounts, null when the host's mountinfo was not readable. */
  mounts: Mount[] | null;
}

export function checkCgroup(facts: CgroupFacts): CheckResult {
  const v1 = (facts.mounts ?? []).filter((m) => m.fsType === "cgroup").map((m) => m.mountPoint);
  const v2 = (facts.mounts ?? []).filter((m) => m.fsType === "cgroup2").map((m) => m.mountPoint);
  const advice = "vNode needs cgroup v2 only (boot with systemd.unified_cgroup_hierarchy=1)";
  if (facts.rootControllers === null) {
    if (v1.length > 0 && v2.length > 0) {
      return fail(
        "cgroup",
        `hybrid cgroup v1/v2 (v1 at ${v1.join(", ")}; v2 at ${v2.join(", ")}): ${advice}`,
      );
    }
    if (v1.length > 0) return fail("cgroup", `cgroup v1 (at ${v1.join(", ")}): ${advice}`);
    return fail(
      "cgroup",
      `/sys/fs/cgroup/cgroup.controllers not found (no cgroup v2 root): ${advice}`,
    );
  }
  if (v1.length > 0) {
    return fail(
      "cgroup",
      `cgroup v2 at /sys/fs/cgroup but v1 hierarchies are mounted too (${v1.join(", ")}): ${advice}`,
    );
  }
  const controllers = facts.rootControllers.trim().split(/\s+/).filter(Boolean).join(" ");
  const checked =
    facts.mounts === null ? " (host mountinfo not readable; v1 mounts not checked)" : "";
  return pass("cgroup", `v2 unified, controllers: ${controllers || "none"}${checked}`);
}

/** What the CRI Version RPC reports. */
export interface RuntimeVersion {
  runtimeName: string;
  runtimeVersion: string;
}

export function checkContainerd(reported: RuntimeVersion | Error, min: Version): CheckResult {
  if (reported instanceof Error)
    return fail("containerd", `cannot get the runtime version: ${reported.message}`);
  const shownMin = formatVersion(min, min[2] === 0 ? 2 : 3);
  if (reported.runtimeName !== "containerd") {
    return fail(
      "containerd",
      `the CRI runtime is ${reported.runtimeName} ${reported.runtimeVersion}; vNode needs containerd >= ${shownMin}`,
    );
  }
  const v = parseVersion(reported.runtimeVersion);
  if (v === null)
    return fail(
      "containerd",
      `cannot read a version from containerd's "${reported.runtimeVersion}"`,
    );
  return compareVersions(v, min) >= 0
    ? pass("containerd", `${formatVersion(v)} >= ${shownMin}`)
    : fail(
        "containerd",
        `${formatVersion(v)} < ${shownMin}: vNode needs containerd ${shownMin} or newer (--min-containerd)`,
      );
}

/** The containerd config's path and its `version` (null: none, i.e. the v1 format). */
export interface ConfigVersionFact {
  path: string;
  version: number | null;
}

/**
 * The config version must be one the agent can edit, and one this containerd reads:
 * versions 3 and 4 are containerd 2.x formats (containerd 1.x cannot load them).
 */
export function checkConfig(
  fact: ConfigVersionFact | Error,
  containerd: RuntimeVersion | Error | null,
): CheckResult {
  if (fact instanceof Error)
    return fail("config", `cannot read the containerd config: ${fact.message}`);
  if (fact.version === null) {
    return fail(
      "config",
      `${fact.path} has no version (the v1 format); supported: version 2, 3 or 4`,
    );
  }
  if (!(SUPPORTED_CONFIG_VERSIONS as readonly number[]).includes(fact.version)) {
    return fail("config", `${fact.path} has version ${fact.version}; supported: version 2, 3 or 4`);
  }
  const v =
    containerd && !(containerd instanceof Error) ? parseVersion(containerd.runtimeVersion) : null;
  if (fact.version >= 3 && v !== null && v[0] < 2) {
    return fail(
      "config",
      `${fact.path} has version ${fact.version}, which containerd ${formatVersion(v)} cannot read (needs 2.x)`,
    );
  }
  return pass("config", `${fact.path} version ${fact.version}`);
}

/** What the payload check found: the shim's path in the payload dir and what is there. */
export interface PayloadFact {
  /** Undefined: no payload dir at all (config only). */
  dir: string | undefined;
  shim: string;
  state: "executable" | "missing" | "dangling" | "not-a-file" | "not-executable";
}

/**
 * The agent installs the shim from its payload dir; a payload without it would register a
 * handler whose every sandbox fails. Without a payload dir the shim must already be on the node.
 */
export function checkPayload(fact: PayloadFact): CheckResult {
  if (fact.dir === undefined) {
    return {
      name: "payload",
      status: "skip",
      ok: true,
      detail: `(no payload dir: containerd must already find ${fact.shim} on the node)`,
    };
  }
  const file = `${fact.dir.replace(/\/$/, "")}/${fact.shim}`;
  const advice =
    "the agent image carries no vNode runtime; build it with VNODE_IMAGE set to the vNode runtime image of your release";
  switch (fact.state) {
    case "executable":
      return pass("payload", `${file} present`);
    case "missing":
      return fail("payload", `${file} is missing: ${advice}`);
    case "dangling":
      return fail("payload", `${file} is a symlink to nothing: ${advice}`);
    case "not-a-file":
      return fail("payload", `${file} is not a file: ${advice}`);
    case "not-executable":
      return fail("payload", `${file} is not executable`);
  }
}

/** Looks at the shim in the payload dir (the agent's own filesystem, not the host's). */
export async function readPayloadFact(dir: string | undefined, shim: string): Promise<PayloadFact> {
  if (dir === undefined) return { dir, shim, state: "missing" };
  const file = `${dir.replace(/\/$/, "")}/${shim}`;
  let st;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    if (errno(err) !== "ENOENT" && errno(err) !== "ENOTDIR") throw err;
    const link = await fsp.lstat(file).catch(() => null);
    return { dir, shim, state: link?.isSymbolicLink() ? "dangling" : "missing" };
  }
  if (!st.isFile()) return { dir, shim, state: "not-a-file" };
  return { dir, shim, state: (st.mode & 0o111) === 0 ? "not-executable" : "executable" };
}

// ---------------------------------------------------------------------------------------------
// Running and printing

export interface PreflightOptions {
  hostRoot: string;
  skip?: ReadonlySet<CheckName>;
  minContainerd?: Version;
  /** Defaults to os.release(). */
  kernelRelease?: () => string;
  /** The CRI Version RPC. */
  containerdVersion: () => Promise<RuntimeVersion>;
  /** The containerd config's version, from the config module. */
  configVersion: () => Promise<ConfigVersionFact>;
  /** The shim in the payload dir. Defaults to "no payload dir" (the check skips). */
  payload?: () => Promise<PayloadFact>;
}

/** Runs every check not skipped, in {@link CHECK_NAMES} order. Never throws for a failed check. */
export async function runPreflight(opts: PreflightOptions): Promise<CheckResult[]> {
  const skip = opts.skip ?? new Set<CheckName>();
  const min = opts.minContainerd ?? (parseVersion(DEFAULT_MIN_CONTAINERD) as Version);
  const skipped = (name: CheckName): CheckResult => ({
    name,
    status: "skip",
    ok: true,
    detail: "(--skip-preflight)",
  });
  const needVersion = !skip.has("containerd") || !skip.has("config");
  const version = needVersion ? await opts.containerdVersion().catch(toError) : null;
  const results: CheckResult[] = [];
  for (const name of CHECK_NAMES) {
    if (skip.has(name)) {
      results.push(skipped(name));
      continue;
    }
    switch (name) {
      case "kernel":
        results.push(checkKernel((opts.kernelRelease ?? os.release)()));
        break;
      case "cgroup":
        results.push(checkCgroup(await readCgroupFacts(opts.hostRoot)));
        break;
      case "containerd":
        results.push(checkContainerd(version as RuntimeVersion | Error, min));
        break;
      case "config":
        results.push(checkConfig(await opts.configVersion().catch(toError), version));
        break;
      case "payload":
        results.push(
          checkPayload(
            opts.payload
              ? await opts.payload()
              : { dir: undefined, shim: "the shim", state: "missing" },
          ),
        );
        break;
    }
  }
  return results;
}

/**
 * Reads the cgroup facts under the host root. The host's mounts come from PID 1's
 * mountinfo (the host's mount namespace), falling back to our own, which in a container
 * shows the container's view rather than the host's.
 */
export async function readCgroupFacts(hostRoot: string): Promise<CgroupFacts> {
  const rootControllers = await readText(hostPath(hostRoot, "/sys/fs/cgroup/cgroup.controllers"));
  const mountinfo =
    (await readText(hostPath(hostRoot, "/proc/1/mountinfo"))) ??
    (await readText(hostPath(hostRoot, "/proc/self/mountinfo")));
  return { rootControllers, mounts: mountinfo === null ? null : parseMountinfo(mountinfo) };
}

async function readText(file: string): Promise<string | null> {
  try {
    return await fsp.readFile(file, "utf8");
  } catch (err) {
    const code = errno(err);
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EACCES") return null;
    throw err;
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** One line per check: `PASS kernel 6.18.44 >= 6.1`. */
export function formatPreflight(results: readonly CheckResult[]): string {
  return results.map((r) => `${r.status.toUpperCase()} ${r.name} ${r.detail}`).join("\n");
}

export function preflightPassed(results: readonly CheckResult[]): boolean {
  return results.every((r) => r.ok);
}
