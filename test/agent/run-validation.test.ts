/**
 * `vnode-agent run` outside a cluster with bad local inputs (issue 12, case 10): every problem
 * is named in one error, exit 2, before anything needs the API server; "cannot reach the
 * Kubernetes API" no longer hides VNODE_PER_POD=yes. Runs the built bundle (npm run build).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const CLI = path.resolve(__dirname, "../../agent/dist/vnode-agent.js");

describe("vnode-agent run validates every local input first", () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-run-"));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, [CLI, "run", "--host-root", root, "--listen", "127.0.0.1:0"], {
      env: { PATH: process.env.PATH ?? "", ...env },
      encoding: "utf8",
      timeout: 30_000,
    });

  it("VNODE_PER_POD=yes, no NODE_NAME, no API server: all three named, exit 2", () => {
    const r = run({ VNODE_PER_POD: "yes" });
    expect(r.status).toBe(2);
    const err = r.stderr;
    expect(err).toContain("vnode-agent run found 3 problems: (1) NODE_NAME must name the node");
    expect(err).toContain("(2) VNODE_PER_POD");
    expect(err).toContain('got "yes"');
    expect(err).toContain("(3) cannot reach the Kubernetes API");
  });

  it("only the API server missing: that one sentence, as before", () => {
    const r = run({ NODE_NAME: "n1" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("cannot reach the Kubernetes API");
    expect(r.stderr).not.toContain("problems:");
  });
});
