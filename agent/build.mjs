// Bundles the agent into CommonJS files with esbuild, so the image needs no TypeScript
// compiler and no dev dependencies at run time. Native-free dependencies are inlined.
//
// Every CLI run parses the whole main bundle, so its size is start-up time and memory. The
// heavy dependencies that only some commands load (the Kubernetes client and Prometheus
// registry for the `run` daemon, the D-Bus client for `--restart systemd`) are bundled into
// their own files under dist/vendor/ and required from there on first use: `--version`,
// `install` and friends never read them. Library copies are independent of our modules, so
// splitting them off cannot duplicate the agent's own classes (an `instanceof` across files).
import { build } from "esbuild";
import { chmodSync, readFileSync, rmSync, statSync } from "node:fs";

const agentDir = new URL(".", import.meta.url).pathname;
const distDir = new URL("./dist/", import.meta.url).pathname;
const outfile = `${distDir}vnode-agent.js`;
const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));

/** Packages bundled on their own under dist/vendor/, loaded only by the code that uses them. */
const VENDORED = ["@kubernetes/client-node", "prom-client", "@homebridge/dbus-native"];
const vendorFile = (pkg) => `vendor/${pkg.replace(/^@/, "").replace(/\//g, "-")}.js`;

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  // Smaller is faster to parse; the linked source map keeps stack traces mappable
  // (node --enable-source-maps).
  minify: true,
  logLevel: "warning",
};

// No stale vendor file from an older build may linger.
rmSync(`${distDir}vendor`, { recursive: true, force: true });

await build({
  ...common,
  entryPoints: [`${agentDir}src/main.ts`],
  outfile,
  sourcemap: "linked",
  banner: { js: "#!/usr/bin/env node" },
  define: { AGENT_VERSION: JSON.stringify(version) },
  plugins: [
    {
      name: "vendored",
      setup(b) {
        const filter = new RegExp(
          `^(${VENDORED.map((p) => p.replace(/[/.]/g, "\\$&")).join("|")})$`,
        );
        // Resolved at run time next to vnode-agent.js (node follows the bin symlink first).
        b.onResolve({ filter }, (args) => ({ path: `./${vendorFile(args.path)}`, external: true }));
      },
    },
  ],
});

await Promise.all(
  VENDORED.map((pkg) =>
    build({
      ...common,
      stdin: {
        contents: `module.exports = require(${JSON.stringify(pkg)});`,
        resolveDir: agentDir,
      },
      outfile: `${distDir}${vendorFile(pkg)}`,
    }),
  ),
);

// npm links the bin before the first build, so it cannot have set the executable bit.
chmodSync(outfile, 0o755);
if (process.env.VNODE_BUILD_SIZES) {
  for (const f of ["vnode-agent.js", ...VENDORED.map(vendorFile)]) {
    console.log(`${String(statSync(`${distDir}${f}`).size).padStart(9)}  dist/${f}`);
  }
}
