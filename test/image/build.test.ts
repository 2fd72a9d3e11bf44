/**
 * CI proof for agent/Dockerfile: builds the real Dockerfile with buildah from the repo root
 * (base images created locally, no registry), then runs the image with podman (runc, cgroupfs,
 * explicit ulimits, no network, read-only root fs) as the DaemonSet would.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  AGENT_DEFAULTS,
  CNI_HOST_DEFAULTS,
  CONTAINERD_DISTRIBUTIONS,
  PAYLOAD_ROLES,
} from "vnode-contract";
import {
  type Exec,
  type PayloadFixture,
  IMAGE_PAYLOAD_DIR,
  REPO_ROOT,
  budArgs,
  buildAgentImage,
  buildah,
  defaultStore,
  describeWithImageTools,
  ensureNodeBaseImage,
  ensurePayloadImage,
  inspectImage,
  listTree,
  podman,
  runImage,
  withImageRootfs,
} from "../support/images";

const VERSION = (
  JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "agent", "package.json"), "utf8")) as {
    version: string;
  }
).version;
const REVISION = "0123456789abcdef0123456789abcdef01234567";
const SOURCE = "https://example.com/vnode-pulumi";
const HOST_FIXTURE = path.join(__dirname, "fixtures", "host");

/** The part of `vnode-agent plan --json` this test reads. */
interface Plan {
  changes: { path: string; action: string; diff: string }[];
  artifacts: { target: string; action: string; sha256: string }[];
  [key: string]: unknown;
}

describeWithImageTools("agent image: buildah build of agent/Dockerfile, podman run", () => {
  const store = defaultStore();
  // Per-process tags, so parallel runs never inspect each other's image; layers stay cached.
  const tag = `localhost/vnode-test/agent:test-${process.pid}`;
  const localTag = `localhost/vnode-test/agent:test-local-${process.pid}`;
  const buildStageTag = `localhost/vnode-test/agent:test-build-stage-${process.pid}`;
  let base: string;
  let payload: PayloadFixture;
  let build: Exec;

  beforeAll(async () => {
    const t0 = Date.now();
    base = await ensureNodeBaseImage(store);
    payload = await ensurePayloadImage(store);
    const t1 = Date.now();
    build = await buildAgentImage(store, {
      tag,
      buildArgs: {
        BUILD_IMAGE: base,
        BASE_IMAGE: base,
        VNODE_IMAGE: payload.ref,
        VERSION,
        REVISION,
        SOURCE,
      },
    });
    console.log(
      `agent image: base images ${((t1 - t0) / 1000).toFixed(1)} s, build ${build.seconds.toFixed(1)} s (${store.driver})`,
    );
  }, 900_000);

  afterAll(async () => {
    // Untag, never rmi: removing an image also removes its untagged parents, i.e. the cache.
    for (const t of [tag, localTag, buildStageTag]) await podman(store, ["untag", t]);
  });

  it("prints the agent's version", async () => {
    const r = await runImage(store, tag, ["--version"]);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 0,
      stdout: `${VERSION}\n`,
      stderr: "",
    });
  });

  it("carries the OCI labels from the build args, runs `vnode-agent run` as root", async () => {
    const img = await inspectImage(store, tag);
    const labels = img.Config.Labels ?? {};
    expect({
      source: labels["org.opencontainers.image.source"],
      version: labels["org.opencontainers.image.version"],
      revision: labels["org.opencontainers.image.revision"],
    }).toEqual({ source: SOURCE, version: VERSION, revision: REVISION });
    expect(img.Config.Entrypoint).toEqual(["vnode-agent"]);
    expect(img.Config.Cmd).toEqual(["run"]);
    expect(img.Config.User).toBe("0:0");
  });

  it("adds only the bundle and the payload on top of the base image: no node_modules, sources or npm", async () => {
    const baseTree = new Set(await withImageRootfs(store, base, listTree));
    const added = await withImageRootfs(store, tag, (rootfs) => {
      const link = fs.readlinkSync(path.join(rootfs, "usr/local/bin/vnode-agent"));
      expect(link).toBe("../lib/vnode-agent/vnode-agent.js");
      return listTree(rootfs).filter((p) => !baseTree.has(p));
    });
    const bundleDir = "/usr/local/lib/vnode-agent";
    const payloadFiles = Object.values(PAYLOAD_ROLES).map((f) => `${IMAGE_PAYLOAD_DIR}/${f}`);
    expect(added.filter((p) => !p.startsWith(`${bundleDir}/`))).toEqual(
      ["/opt", IMAGE_PAYLOAD_DIR, ...payloadFiles, "/usr/local/bin/vnode-agent", bundleDir].sort(),
    );
    const bundle = added.filter((p) => p.startsWith(`${bundleDir}/`));
    expect(bundle).toContain(`${bundleDir}/vnode-agent.js`);
    // The webhook's review thread, which the bundle loads by path (agent/src/webhook/reviewWorker.ts).
    expect(bundle).toContain(`${bundleDir}/webhook-review-thread.js`);
    expect(bundle.filter((p) => /node_modules|\.ts$|\/src\//.test(p))).toEqual([]);
  });

  it("finds the roles in VNODE_IMAGE by name: the multi-call binary once, its links kept as links", async () => {
    const got = await withImageRootfs(store, tag, (rootfs) =>
      Object.fromEntries(
        fs.readdirSync(path.join(rootfs, IMAGE_PAYLOAD_DIR)).map((name) => {
          const file = path.join(rootfs, IMAGE_PAYLOAD_DIR, name);
          const st = fs.lstatSync(file);
          return [
            name,
            st.isSymbolicLink()
              ? `-> ${fs.readlinkSync(file)}`
              : `${(st.mode & 0o777).toString(8)} ${fs.readFileSync(file, "utf8")}`,
          ];
        }),
      ),
    );
    expect(got).toEqual({
      [PAYLOAD_ROLES.shim]: `755 ${payload.content}`,
      [PAYLOAD_ROLES.cni]: `-> ${PAYLOAD_ROLES.shim}`,
      [PAYLOAD_ROLES.manager]: `-> ${PAYLOAD_ROLES.shim}`,
    });
  });

  it("plans against a fixture host root mounted read-only at /host, with the image's payload, offline", async () => {
    const r = await runImage(
      store,
      tag,
      ["plan", "--host-root", AGENT_DEFAULTS.hostRoot, "--json"],
      {
        readOnlyMounts: { [HOST_FIXTURE]: AGENT_DEFAULTS.hostRoot },
      },
    );
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const plan = JSON.parse(r.stdout) as Plan;
    const { containerd } = CONTAINERD_DISTRIBUTIONS;
    const shim = `${AGENT_DEFAULTS.installDir}/${PAYLOAD_ROLES.shim}`;
    expect({
      ...plan,
      changes: plan.changes.map(({ path: p, action }) => ({ path: p, action })),
    }).toEqual({
      distribution: "containerd",
      configPath: containerd.config,
      configVersion: 2,
      socket: containerd.socket,
      changes: [{ path: containerd.config, action: "modify" }],
      // The default --payload-dir is where the image put VNODE_IMAGE's payload: the multi-call
      // binary is installed once, under the shim's name, and the other roles link to it.
      artifacts: [
        {
          target: shim,
          action: "create",
          sha256: createHash("sha256").update(payload.content).digest("hex"),
        },
      ],
      links: [
        {
          action: "create",
          path: `${AGENT_DEFAULTS.installDir}/${PAYLOAD_ROLES.cni}`,
          target: shim,
        },
        {
          action: "create",
          path: `${CNI_HOST_DEFAULTS.binDir}/${PAYLOAD_ROLES.cni}`,
          target: shim,
        },
        {
          action: "create",
          path: `${AGENT_DEFAULTS.installDir}/${PAYLOAD_ROLES.manager}`,
          target: shim,
        },
      ],
      restart: true,
    });
    expect(plan.changes[0].diff).toContain(`\n+  runtime_type = "${AGENT_DEFAULTS.runtimeType}"\n`);
  });

  it("installs only the agent workspace's dependencies in the build stage, and keeps no npm cache", async () => {
    const r = await buildAgentImage(store, {
      tag: buildStageTag,
      target: "build",
      buildArgs: { BUILD_IMAGE: base, BASE_IMAGE: base },
    });
    expect(r.stdout).toMatch(/STEP \d+\/\d+: RUN npm ci [^\n]*\n--> Using cache [0-9a-f]+\n/);
    const got = await withImageRootfs(store, buildStageTag, (rootfs) => ({
      pulumi: fs.existsSync(path.join(rootfs, "src/node_modules/@pulumi")),
      esbuild: fs.existsSync(path.join(rootfs, "src/node_modules/esbuild/package.json")),
      commander: fs.existsSync(path.join(rootfs, "src/node_modules/commander/package.json")),
      npmCache: fs.existsSync(path.join(rootfs, "root/.npm")),
    }));
    expect(got).toEqual({ pulumi: false, esbuild: true, commander: true, npmCache: false });
  }, 600_000);

  it("refuses to build without VNODE_IMAGE, saying how to set it (the build stage stays cached)", async () => {
    const r = await buildah(
      store,
      budArgs({ tag: localTag, buildArgs: { BUILD_IMAGE: base, BASE_IMAGE: base } }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/STEP \d+\/\d+: RUN npm ci [^\n]*\n--> Using cache [0-9a-f]+\n/);
    // A line of its own: the RUN step's echo printed it (the step's command text also holds the
    // sentence, after `echo "`).
    expect(`${r.stderr}\n${r.stdout}`.split("\n")).toContain(
      "agent/Dockerfile: VNODE_IMAGE is not set. Set --build-arg VNODE_IMAGE=<the vNode runtime image of your release> (see README, 'The agent image'), or --build-arg VNODE_PAYLOAD=local to take agent/payload/.",
    );
    expect((await podman(store, ["image", "exists", localTag])).code).not.toBe(0);
  }, 600_000);

  it("refuses a VNODE_IMAGE without the shim, naming what is missing and what it found", async () => {
    const partial = await ensurePayloadImage(store, [PAYLOAD_ROLES.manager]);
    const r = await buildah(
      store,
      budArgs({
        tag: localTag,
        buildArgs: { BUILD_IMAGE: base, BASE_IMAGE: base, VNODE_IMAGE: partial.ref },
      }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toContain(
      `vNode payload: VNODE_IMAGE ${partial.ref} has no ${PAYLOAD_ROLES.shim}, no ${PAYLOAD_ROLES.cni} (searched its whole filesystem for a file or symlink of that name); found ${PAYLOAD_ROLES.manager} at /usr/local/bin/${PAYLOAD_ROLES.manager}. Set VNODE_IMAGE to the vNode runtime image of your release.`,
    );
    expect((await podman(store, ["image", "exists", localTag])).code).not.toBe(0);
  }, 600_000);
});
