#!/usr/bin/env node
// The `vnode-agent` command npm links (it must exist at install time, before the first build):
// it runs the esbuild bundle that `npm run build` writes to agent/dist.
"use strict";
const path = require("node:path");
const bundle = path.join(__dirname, "..", "dist", "vnode-agent.js");
let agent;
try {
  agent = require(bundle);
} catch (err) {
  if (err && err.code === "MODULE_NOT_FOUND" && String(err.message).includes(bundle)) {
    console.error(`vnode-agent: ${bundle} is missing; run \`npm run build\` first.`);
    process.exit(1);
  }
  throw err;
}
agent.cli(process.argv);
