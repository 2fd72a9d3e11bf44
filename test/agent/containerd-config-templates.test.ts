/**
 * k3s/rke2 templates rendered by Go's own text/template (test/support/goTemplate.ts), the way
 * k3s renders `config.toml.tmpl` / `config-v3.toml.tmpl` at every start: for every template case
 * the agent's block must come out on its own lines whatever trim markers the template ends with
 * (`{{- end -}}` trims every newline after it up to the next action), the planner's model of the
 * next rendering must match the real one, a rerun must change nothing, and unregistering must give
 * back the original template byte for byte. A node rendered by an older agent (the BEGIN line
 * glued to `SystemdCgroup = true`) must be repaired, not stuck.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { HandlerSpec } from "../../agent/src/containerd/config/config";
import { effectiveConfig, registeredHandler } from "../../agent/src/containerd/config/effective";
import {
  type ContainerdLayout,
  detectLayout,
  isGoTemplate,
} from "../../agent/src/containerd/config/layout";
import {
  findBlock,
  renderBlock,
  RUNTIME_BLOCK,
  TEMPLATE_GUARD,
} from "../../agent/src/containerd/config/managed-block";
import {
  type FileChange,
  planRegister,
  planUnregister,
} from "../../agent/src/containerd/config/plan";
import { collectConfigFiles, hostFiles } from "../../agent/src/containerd/config/snapshot";
import { describeIf } from "../support/describeIf";
import { goTemplateUnavailable, renderGoTemplate } from "../support/goTemplate";

const FIXTURES = path.join(__dirname, "..", "fixtures", "containerd");
const SPEC: HandlerSpec = { name: "vnode", runtimeType: "io.containerd.vnode.v2" };
type Files = Record<string, string | null>;

async function load(scenario: string): Promise<{ layout: ContainerdLayout; files: Files }> {
  const root = path.join(FIXTURES, scenario);
  const layout = detectLayout((p) => fs.existsSync(path.join(root, p)));
  return { layout, files: await collectConfigFiles(layout, hostFiles(root)) };
}

function apply(files: Files, changes: FileChange[]): Files {
  const out = { ...files };
  for (const c of changes) out[c.path] = c.after;
  return out;
}

/** The stock config k3s defines as "base": the fixture of the same node without a template. */
function baseOf(scenario: string, layout: ContainerdLayout): string {
  return fs.readFileSync(path.join(FIXTURES, scenario, layout.config), "utf8");
}

interface TemplateCase {
  scenario: string;
  /** The scenario whose rendered config is this node's stock config. */
  base: string;
  /** The values the template reads (k3s passes its agent config). */
  data: Record<string, unknown>;
}

const CASES: TemplateCase[] = [
  { scenario: "k3s-v2", base: "k3s-v2", data: {} },
  { scenario: "k3s-v3", base: "k3s-v3", data: {} },
  { scenario: "rke2-v3", base: "rke2-v3", data: {} },
  { scenario: "k3s-v2-user-template", base: "k3s-v2", data: {} },
  { scenario: "k3s-v2-trim", base: "k3s-v2", data: { SystemdCgroup: true } },
  { scenario: "rke2-v3-trim", base: "rke2-v3", data: { SystemdCgroup: true } },
];

describeIf(goTemplateUnavailable(), "k3s/rke2 templates re-rendered by Go text/template", () => {
  it.each(CASES)("$scenario", async ({ scenario, base, data }) => {
    const { layout, files } = await load(scenario);
    const stock = baseOf(base, layout);
    const changes = planRegister(layout, files, SPEC);
    const templates = changes.filter((c) => isGoTemplate(layout, c.path));
    expect(templates).toHaveLength(1);
    const tmpl = templates[0].path;
    const after = apply(files, changes);

    // What k3s writes at its next start.
    const rendered = renderGoTemplate(after[tmpl]!, stock, data);
    const range = findBlock(rendered, RUNTIME_BLOCK, layout.config);
    expect(range).not.toBeNull();
    expect(rendered.slice(range!.start - 1, range!.start)).toBe("\n");
    const next = { ...after, [layout.config]: rendered };
    expect(effectiveConfig(layout, next).doc).toEqual(effectiveConfig(layout, after).doc);
    expect(registeredHandler(effectiveConfig(layout, next), "vnode")).toEqual({
      runtime_type: "io.containerd.vnode.v2",
    });

    // The next agent run (install, then uninstall) on the re-rendered node.
    expect(planRegister(layout, next, SPEC)).toEqual([]);
    const removed = apply(next, planUnregister(layout, next));
    expect(removed[tmpl]).toBe(files[tmpl]);
  });

  it("repairs a node an older agent left with the BEGIN line glued to the line before", async () => {
    const { layout, files } = await load("k3s-v2-trim");
    const tmpl = layout.template!;
    const body =
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode]\n  runtime_type = "io.containerd.vnode.v2"\n';
    const old = files[tmpl]! + "\n" + renderBlock(RUNTIME_BLOCK, body);
    const glued = renderGoTemplate(old, baseOf("k3s-v2", layout), { SystemdCgroup: true });
    expect(glued).toContain("SystemdCgroup = true# BEGIN vnode-agent (managed, do not edit)\n");
    const stuck = { ...files, [tmpl]: old, [layout.config]: glued };

    const changes = planRegister(layout, stuck, SPEC);
    expect(changes.map((c) => [c.path, c.purpose])).toEqual([
      [tmpl, 'update runtime handler "vnode" in the vnode-agent block'],
    ]);
    expect(changes[0].after).toBe(
      `${files[tmpl]}\n${TEMPLATE_GUARD}\n${renderBlock(RUNTIME_BLOCK, body)}`,
    );
    const removed = apply(stuck, planUnregister(layout, stuck));
    expect(removed[tmpl]).toBe(files[tmpl]);
  });
});
