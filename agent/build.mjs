// Bundles the agent into one CommonJS file with esbuild, so the image needs no TypeScript
// compiler and no dev dependencies at run time. Native-free dependencies are inlined.
import { build } from "esbuild";
import { chmodSync, readFileSync } from "node:fs";

const outfile = new URL("./dist/vnode-agent.js", import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));

await build({
  entryPoints: [new URL("./src/main.ts", import.meta.url).pathname],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: "linked",
  minifyWhitespace: true,
  banner: { js: "#!/usr/bin/env node" },
  define: { AGENT_VERSION: JSON.stringify(version) },
  logLevel: "warning",
});
// npm links the bin before the first build, so it cannot have set the executable bit.
chmodSync(outfile, 0o755);
