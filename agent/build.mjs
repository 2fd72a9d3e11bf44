// Bundles the agent into CommonJS files with esbuild, so the image needs no TypeScript
// compiler and no dev dependencies at run time. Native-free dependencies are inlined.
//
// Every CLI run parses the whole main bundle, so its size is start-up time and memory. The
// heavy dependencies that only some commands load (the Kubernetes client and Prometheus
// registry for the `run` daemon, the D-Bus client for `--restart systemd`) are bundled into
// their own files under dist/vendor/ and required from there on first use: `--version`,
// `install` and friends never read them. Library copies are independent of our modules, so
// splitting them off cannot duplicate the agent's own classes (an `instanceof` across files).
//
// The Kubernetes client is an ES module package, so esbuild can drop what the agent does not
// use: its vendor file is agent/src/kube/api.ts, which re-exports exactly the names kube/client.ts uses,
// and no other module may import the package (the build fails if one does). Its `whatwg-url`
// dependency is replaced by Node's own URL (agent/src/kube/whatwgUrl.ts says why).
import { build } from "esbuild";
import { chmodSync, readFileSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";

const agentDir = new URL(".", import.meta.url).pathname;
const distDir = new URL("./dist/", import.meta.url).pathname;
const outfile = `${distDir}vnode-agent.js`;
// Loaded by path at run time: agent/src/webhook/reviewWorker.ts (REVIEW_THREAD_FILE) names it too.
const reviewThreadFile = "webhook-review-thread.js";
const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));

/**
 * Code bundled on its own under dist/vendor/, loaded only by the code that uses it: a package
 * (`pkg`, imported by that name) or one of our modules that re-exports part of a package
 * (`module`, imported by relative path; the package itself then may not be imported elsewhere).
 */
const VENDORED = [
  {
    pkg: "@kubernetes/client-node",
    module: "src/kube/api.ts",
    // Dead weight for the client's node-fetch on any Node the agent supports: see the module.
    alias: { "whatwg-url": `${agentDir}src/kube/whatwgUrl.ts` },
  },
  { pkg: "prom-client" },
  { pkg: "@homebridge/dbus-native" },
].map((v) => ({ ...v, file: `vendor/${v.pkg.replace(/^@/, "").replace(/\//g, "-")}.js` }));

const common = {
  bundle: true,
  platform: "node",
  target: "node22",
  format: "cjs",
  // Smaller is faster to parse; the linked source map keeps stack traces mappable
  // (node --enable-source-maps).
  minify: true,
  logLevel: "warning",
};

// No stale vendor or tool file from an older build may linger.
rmSync(`${distDir}vendor`, { recursive: true, force: true });
rmSync(`${distDir}tools`, { recursive: true, force: true });

await build({
  ...common,
  entryPoints: [`${agentDir}src/cli/main.ts`],
  outfile,
  sourcemap: "linked",
  banner: { js: "#!/usr/bin/env node" },
  define: { AGENT_VERSION: JSON.stringify(version) },
  plugins: [
    {
      name: "vendored",
      setup(b) {
        const byPkg = new Map(VENDORED.map((v) => [v.pkg, v]));
        const byModule = new Map(
          VENDORED.filter((v) => v.module).map((v) => [
            resolve(agentDir, v.module).replace(/\.ts$/, ""),
            v,
          ]),
        );
        // Resolved at run time next to vnode-agent.js (node follows the bin symlink first).
        const external = (v) => ({ path: `./${v.file}`, external: true });
        b.onResolve({ filter: /.*/ }, (args) => {
          const v = byPkg.get(args.path);
          if (v?.module) {
            const mod = `agent/${v.module}`;
            return { errors: [{ text: `import ${v.pkg} through ${mod} (only it may), not here` }] };
          }
          if (v) return external(v);
          if (args.path.startsWith(".")) {
            const m = byModule.get(resolve(args.resolveDir, args.path).replace(/\.ts$/, ""));
            if (m) return external(m);
          }
          return undefined;
        });
      },
    },
  ],
});

await Promise.all(
  VENDORED.map((v) =>
    build({
      ...common,
      ...(v.module
        ? { entryPoints: [`${agentDir}${v.module}`] }
        : {
            stdin: {
              contents: `module.exports = require(${JSON.stringify(v.pkg)});`,
              resolveDir: agentDir,
            },
          }),
      ...(v.alias ? { alias: v.alias } : {}),
      outfile: `${distDir}${v.file}`,
    }),
  ),
);

// The webhook's review thread (agent/src/webhook/reviewWorker.ts finds it next to the bundle).
await build({
  ...common,
  entryPoints: [`${agentDir}src/webhook/reviewThread.ts`],
  outfile: `${distDir}${reviewThreadFile}`,
});

// The Dockerfile's payload stage runs this tool; it never ships in the runtime image.
await build({
  ...common,
  entryPoints: [`${agentDir}src/image/main.ts`],
  outfile: `${distDir}tools/select-payload.js`,
});

// npm links the bin before the first build, so it cannot have set the executable bit.
chmodSync(outfile, 0o755);
if (process.env.VNODE_BUILD_SIZES) {
  for (const f of ["vnode-agent.js", reviewThreadFile, ...VENDORED.map((v) => v.file)]) {
    console.log(`${String(statSync(`${distDir}${f}`).size).padStart(9)}  dist/${f}`);
  }
}
