/**
 * The component package as another project gets it: `npm pack` of the contract and component
 * workspaces, installed from the tarballs into a throwaway project outside the repository with
 * @pulumi/pulumi and @pulumi/kubernetes from the npm registry, then small programs there
 * (JavaScript and TypeScript, CommonJS and ESM; test/package/consumer/) that import `VNodeRuntime`
 * from the package name, pass their own Kubernetes provider and run under Pulumi mocks.
 *
 * Real behaviour relied on (no Pulumi CLI here): Pulumi's nodejs host runs a TypeScript program
 * through ts-node, which does not compile files under node_modules, and Node itself refuses to strip
 * types there (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), so a package must ship JavaScript.
 * The programs run with plain `node --no-experimental-strip-types`, which loads JavaScript only.
 */
import { execFile, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { describeIf } from "../support/describeIf";

const run = promisify(execFile);
const ROOT = path.join(__dirname, "..", "..");
const FIXTURES = path.join(__dirname, "consumer");
const PROGRAMS = ["js-cjs.cjs", "js-esm.mjs", "ts-cjs.js", "ts-esm.mjs"];
/** The provider reference the mock engine sees for the consumer's own `cluster` provider. */
const PROVIDER = "urn:pulumi:test::consumer::pulumi:providers:kubernetes::cluster::cluster-id";

/** The consumer's own registry dependencies: the versions this repository is tested with. */
const REGISTRY_DEPENDENCIES = ["@pulumi/pulumi", "@pulumi/kubernetes", "typescript", "@types/node"]
  .map((name) => {
    const manifest = path.join(ROOT, "node_modules", name, "package.json");
    return `${name}@${(JSON.parse(fs.readFileSync(manifest, "utf8")) as { version: string }).version}`;
  })
  .sort();

interface Packed {
  name: string;
  filename: string;
  files: { path: string }[];
}
interface Registered {
  type: string;
  name: string;
  provider: string | null;
  inputs: Record<string, unknown>;
}
interface Report {
  outputs: { runtimeClassNames: Record<string, string>; namespace: string };
  registered: Registered[];
}

function registryUnavailable(): string | undefined {
  const ping = spawnSync("npm", ["ping"], { encoding: "utf8", timeout: 30000 });
  return ping.status === 0
    ? undefined
    : `the npm registry is unreachable (npm ping: ${(ping.stderr || ping.error?.message || "").trim()})`;
}

const npm = (cwd: string, ...args: string[]): Promise<{ stdout: string }> =>
  run("npm", args, { cwd, maxBuffer: 64 * 1024 * 1024 });

/** Files below `dir` (without node_modules and dist) and their newest modification time. */
function newestMtime(dir: string, keep: (file: string) => boolean): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && keep(file) && !/[/\\](node_modules|dist)[/\\]/.test(file)) {
      newest = Math.max(newest, fs.statSync(file).mtimeMs);
    }
  }
  return newest;
}

/**
 * The packages are packed as built by `npm test` (`npm run build`), without their `prepack`
 * rebuild; a build older than its sources would test stale code, so that is an error instead.
 */
function assertBuilt(workspace: string): void {
  const dir = path.join(ROOT, workspace);
  const built = path.join(dir, "dist", "index.js");
  const sources = newestMtime(dir, (file) => /\.ts$/.test(file) || file.endsWith("package.json"));
  if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < sources) {
    throw new Error(`${workspace}/dist is missing or older than its sources: run npm run build.`);
  }
}

/**
 * A project with only the registry dependencies installed, cached under the OS temp dir by their
 * versions (and Node's/npm's), so later runs copy it instead of installing ~150 MB again. Built
 * in a private dir and renamed into place, so concurrent runs never see half an install.
 */
async function registryBase(): Promise<string> {
  const { stdout: npmVersion } = await npm(ROOT, "--version");
  const key = createHash("sha256")
    .update(JSON.stringify([REGISTRY_DEPENDENCIES, process.versions.node, npmVersion.trim()]))
    .digest("hex")
    .slice(0, 16);
  const cache = path.join(os.tmpdir(), "vnode-consumer-cache");
  const base = path.join(cache, key);
  if (fs.existsSync(path.join(base, "package-lock.json"))) {
    return base;
  }
  fs.mkdirSync(cache, { recursive: true });
  const building = fs.mkdtempSync(path.join(cache, `${key}-building-`));
  try {
    fs.writeFileSync(
      path.join(building, "package.json"),
      JSON.stringify({ name: "consumer", version: "1.0.0", private: true }),
    );
    await npm(
      building,
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      ...REGISTRY_DEPENDENCIES,
    );
    fs.renameSync(building, base);
  } catch (error) {
    fs.rmSync(building, { recursive: true, force: true });
    if (!fs.existsSync(path.join(base, "package-lock.json"))) {
      throw error;
    }
  }
  return base;
}

describeIf(registryUnavailable(), "the component package in another project", () => {
  let packDir: string;
  let consumer: string;
  let packed: Packed[];
  const reports = new Map<string, Report>();

  beforeAll(async () => {
    assertBuilt("contract");
    assertBuilt("components");
    packDir = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-pack-"));
    consumer = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-consumer-"));
    const [{ stdout }, base] = await Promise.all([
      npm(
        ROOT,
        "pack",
        "--json",
        "--ignore-scripts",
        "--workspace",
        "contract",
        "--workspace",
        "components",
        "--pack-destination",
        packDir,
      ),
      registryBase(),
    ]);
    packed = JSON.parse(stdout) as Packed[];
    fs.cpSync(base, consumer, { recursive: true, verbatimSymlinks: true });
    await npm(
      consumer,
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      ...packed.map((p) => path.join(packDir, p.filename)),
    );
    fs.cpSync(FIXTURES, consumer, { recursive: true });
    await run(
      process.execPath,
      [path.join(consumer, "node_modules/typescript/bin/tsc"), "-p", "."],
      {
        cwd: consumer,
      },
    );
    await Promise.all(
      PROGRAMS.map(async (program) => {
        const { stdout: out } = await run(
          process.execPath,
          ["--no-experimental-strip-types", program],
          { cwd: consumer, maxBuffer: 64 * 1024 * 1024 },
        );
        reports.set(program, JSON.parse(out) as Report);
      }),
    );
  }, 600000);

  afterAll(() => {
    for (const dir of [packDir, consumer]) {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the tarballs carry JavaScript and declarations only, no TypeScript sources", () => {
    expect(packed.map((p) => p.name)).toEqual(["vnode-contract", "vnode"]);
    for (const { name, files } of packed) {
      const paths = files.map((file) => file.path);
      expect([name, paths.filter((file) => !/^dist\/.*(\.js|\.d\.ts)$/.test(file))]).toEqual([
        name,
        ["package.json"],
      ]);
      expect([name, paths.includes("dist/index.js"), paths.includes("dist/index.d.ts")]).toEqual([
        name,
        true,
        true,
      ]);
    }
  });

  test("the installed package: built entry points, the Pulumi SDK and Kubernetes as peers", () => {
    const manifest = JSON.parse(
      fs.readFileSync(path.join(consumer, "node_modules", "vnode", "package.json"), "utf8"),
    );
    expect([manifest.main, manifest.types, manifest.exports["."]]).toEqual([
      "dist/index.js",
      "dist/index.d.ts",
      { types: "./dist/index.d.ts", default: "./dist/index.js" },
    ]);
    expect(Object.keys(manifest.peerDependencies).sort()).toEqual([
      "@pulumi/kubernetes",
      "@pulumi/pulumi",
    ]);
    expect(Object.keys(manifest.dependencies).sort()).toEqual([
      "@pulumi/docker-build",
      "@pulumi/kubernetes-cert-manager",
      "vnode-contract",
    ]);
    // One SDK in the process: the consumer's. A second copy under vnode would register resources
    // through its own runtime state and disagree with the consumer's on `instanceof Resource`.
    expect(fs.existsSync(path.join(consumer, "node_modules", "vnode", "node_modules"))).toBe(false);
  });

  test.each(PROGRAMS)("%s registers the runtime through the consumer's provider", (program) => {
    const { outputs, registered } = reports.get(program)!;
    expect(outputs).toEqual({
      runtimeClassNames: { "per-pod": "vnode" },
      namespace: "vnode-runtime",
    });
    expect(
      registered.filter((r) => r.type === "vnode:index:VNodeRuntime").map((r) => r.name),
    ).toEqual(["vnode"]);
    const kubernetes = registered.filter((r) => r.type.startsWith("kubernetes:"));
    expect(kubernetes.filter((r) => r.provider !== PROVIDER).map((r) => r.type)).toEqual([]);
    const daemonSets = registered.filter((r) => r.type === "kubernetes:apps/v1:DaemonSet");
    expect(daemonSets.map((r) => r.provider)).toEqual([PROVIDER]);
    const container = (
      daemonSets[0].inputs as {
        spec: { template: { spec: { containers: { image: string; env: object[] }[] } } };
      }
    ).spec.template.spec.containers[0];
    expect(container.image).toBe("ghcr.io/acme/vnode-agent:0.1.0");
    expect(container.env).toContainEqual({ name: "VNODE_PER_POD", value: "true" });
    const classes = registered.filter((r) => r.type === "kubernetes:node.k8s.io/v1:RuntimeClass");
    expect(
      classes.map((r) => [
        (r.inputs.metadata as { name: string }).name,
        r.inputs.handler,
        r.provider,
      ]),
    ).toEqual([["vnode", "vnode", PROVIDER]]);
  });
});
