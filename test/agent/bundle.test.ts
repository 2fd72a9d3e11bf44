/**
 * The agent's esbuild output (agent/build.mjs; `npm test` builds first): what the daemon loads
 * with the Kubernetes client, a number the steady RSS of `bench:agent` depends on.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const KUBE_VENDOR = path.resolve(__dirname, "../../agent/dist/vendor/kubernetes-client-node.js");

describe("the bundled Kubernetes client", () => {
  it("leaves whatwg-url (tr46's Unicode tables, punycode) out: node-fetch uses Node's own URL", () => {
    expect(fs.existsSync(KUBE_VENDOR)).toBe(true);
    const out = execFileSync(
      process.execPath,
      [
        "-e",
        `require(${JSON.stringify(KUBE_VENDOR)});` +
          `process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => /punycode/.test(m))))`,
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    expect(JSON.parse(out)).toEqual([]);
  });
});
