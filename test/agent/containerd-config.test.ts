/**
 * containerd config transforms on the fixture corpus (test/fixtures/containerd/<scenario>/ is a
 * host root): each accepted config gets the handler under the right plugin with everything else
 * kept, reruns change nothing, unregister restores the bytes; refused configs throw before any
 * change. Version 2 results are cross-checked with the real containerd 1.6 (`config dump`).
 */
import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import type { TomlTable } from "smol-toml";
import {
  ConfigError,
  criRuntimePlugin,
  type HandlerSpec,
  parseContainerdConfig,
  readConfigVersion,
  validateHandlerSpec,
} from "../../agent/src/containerd/config/config";
import {
  effectiveConfig,
  type EffectiveConfig,
  mainConfigText,
  mergeInto,
  registeredHandler,
} from "../../agent/src/containerd/config/effective";
import {
  addImportEntry,
  globComponentRegExp,
  removeImportEntry,
  resolveImportEntries,
} from "../../agent/src/containerd/config/imports";
import {
  type ContainerdLayout,
  detectLayout,
  layoutFor,
} from "../../agent/src/containerd/config/layout";
import {
  findBlock,
  removeBlock,
  RUNTIME_BLOCK,
  upsertBlock,
} from "../../agent/src/containerd/config/managed-block";
import {
  type FileChange,
  planRegister,
  planUnregister,
} from "../../agent/src/containerd/config/plan";
import {
  collectConfigFiles,
  type HostFiles,
  hostFiles,
} from "../../agent/src/containerd/config/snapshot";

const run = promisify(execFile);
const FIXTURES = path.join(__dirname, "..", "fixtures", "containerd");

const SPEC: HandlerSpec = {
  name: "vnode",
  runtimeType: "io.containerd.vnode.v2",
  podAnnotations: ["vnode.loft.sh/*"],
};
const HANDLER = { runtime_type: "io.containerd.vnode.v2", pod_annotations: ["vnode.loft.sh/*"] };

const BEGIN = "# BEGIN vnode-agent (managed, do not edit)";
const END = "# END vnode-agent";
const V2_BLOCK = [
  BEGIN,
  '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode]',
  '  runtime_type = "io.containerd.vnode.v2"',
  '  pod_annotations = ["vnode.loft.sh/*"]',
  END,
  "",
].join("\n");
const V3_DROP_IN = [
  BEGIN,
  "version = 3",
  "",
  '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.vnode]',
  '  runtime_type = "io.containerd.vnode.v2"',
  '  pod_annotations = ["vnode.loft.sh/*"]',
  END,
  "",
].join("\n");
const BASE = '{{ template "base" . }}\n';
/** The line before the block in a Go template (see TEMPLATE_GUARD). */
const GUARD = "{{/* vnode-agent: keeps the block below on its own lines */}}\n";

type Files = Record<string, string | null>;

/** Host files in memory: path -> text; directories are implied by the paths. */
function memHost(tree: Record<string, string>): HostFiles {
  return {
    readFile: async (p) => tree[p] ?? null,
    listDir: async (d) => {
      const names = Object.keys(tree)
        .filter((p) => path.posix.dirname(p) === d)
        .map((p) => path.posix.basename(p));
      return names.length > 0 ? names : null;
    },
  };
}

async function load(scenario: string): Promise<{ layout: ContainerdLayout; files: Files }> {
  const root = path.join(FIXTURES, scenario);
  const layout = detectLayout((p) => fs.existsSync(path.join(root, p)));
  return { layout, files: await collectConfigFiles(layout, hostFiles(root)) };
}

function apply(files: Files, changes: FileChange[]): Files {
  const out = { ...files };
  for (const c of changes) {
    expect(c.before).toBe(files[c.path]);
    out[c.path] = c.after;
  }
  return out;
}

function at(doc: TomlTable, ...keys: string[]): unknown {
  let v: unknown = doc;
  for (const k of keys) v = (v as Record<string, unknown> | undefined)?.[k];
  return v;
}

/** Effective values the tests compare, by the config version's layout of the CRI plugins. */
function criFacts(e: EffectiveConfig) {
  const runtime = criRuntimePlugin(e.version).id;
  const runtimes = at(e.doc, "plugins", runtime, "containerd", "runtimes") as TomlTable;
  return {
    runtimes: Object.keys(runtimes).sort(),
    defaultRuntime: at(e.doc, "plugins", runtime, "containerd", "default_runtime_name"),
    sandbox:
      e.version === 2
        ? at(e.doc, "plugins", runtime, "sandbox_image")
        : at(e.doc, "plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"),
    cniConfDir: at(e.doc, "plugins", runtime, "cni", "conf_dir"),
    imports: e.doc.imports as unknown,
  };
}

/** The effective document without the named runtimes: "everything else". */
function withoutRuntimes(e: EffectiveConfig, names: string[]): TomlTable {
  const doc = structuredClone(e.doc);
  const runtimes = at(doc, "plugins", criRuntimePlugin(e.version).id, "containerd", "runtimes") as
    TomlTable | undefined;
  for (const n of names) delete runtimes?.[n];
  // Tables the agent created only to hold its runtimes go too.
  const keys = ["plugins", criRuntimePlugin(e.version).id, "containerd", "runtimes"];
  for (let i = keys.length; i > 0; i--) {
    const parent = at(doc, ...keys.slice(0, i - 1)) as TomlTable;
    const t = parent?.[keys[i - 1]] as TomlTable | undefined;
    if (t !== undefined && Object.keys(t).length === 0) delete parent[keys[i - 1]];
  }
  return doc;
}

interface Case {
  scenario: string;
  distribution: ContainerdLayout["distribution"];
  version: 2 | 3 | 4;
  /** Changed paths, target first, with how each changes. */
  changes: [string, "create" | "append" | "edit"][];
  purposes: string[];
  /** Exact new content of created files / appended text / edited file. */
  content: Record<string, string>;
  loadOrder: string[];
  facts: ReturnType<typeof criFacts>;
  /** Other effective values, by key path. */
  extra?: [string[], unknown][];
  /** Runtimes the agent declares besides the handler (runc kept for containerd 1.x). */
  alsoDeclared?: Record<string, TomlTable>;
}

const K3S = "/var/lib/rancher/k3s/agent/etc/containerd";
const RKE2 = "/var/lib/rancher/rke2/agent/etc/containerd";
const MK8S = "/var/snap/microk8s/current/args";
const CD = "/etc/containerd";
const ADD = 'add runtime handler "vnode" in a vnode-agent block';
const DROP = 'create a drop-in with runtime handler "vnode"';

const CASES: Case[] = [
  {
    scenario: "containerd-1.6-default",
    distribution: "containerd",
    version: 2,
    changes: [[`${CD}/config.toml`, "append"]],
    purposes: [ADD],
    content: { [`${CD}/config.toml`]: "\n" + V2_BLOCK },
    loadOrder: [`${CD}/config.toml`],
    facts: {
      runtimes: ["runc", "vnode"],
      defaultRuntime: "runc",
      sandbox: "registry.k8s.io/pause:3.6",
      cniConfDir: "/etc/cni/net.d",
      imports: [],
    },
  },
  {
    scenario: "containerd-1.7-kubeadm",
    distribution: "containerd",
    version: 2,
    changes: [[`${CD}/config.toml`, "append"]],
    purposes: [ADD],
    content: { [`${CD}/config.toml`]: "\n" + V2_BLOCK },
    loadOrder: [`${CD}/config.toml`],
    facts: {
      runtimes: ["runc", "vnode"],
      defaultRuntime: "runc",
      sandbox: "registry.k8s.io/pause:3.9",
      cniConfDir: "/etc/cni/net.d",
      imports: undefined,
    },
  },
  {
    scenario: "containerd-2.0-default",
    distribution: "containerd",
    version: 3,
    changes: [
      [`${CD}/conf.d/vnode-agent.toml`, "create"],
      [`${CD}/config.toml`, "edit"],
    ],
    purposes: [DROP, `import ${CD}/conf.d/vnode-agent.toml`],
    content: {
      [`${CD}/conf.d/vnode-agent.toml`]: V3_DROP_IN,
      [`${CD}/config.toml`]:
        'imports = []\n=>imports = ["/etc/containerd/conf.d/vnode-agent.toml"]\n',
    },
    loadOrder: [`${CD}/config.toml`, `${CD}/conf.d/vnode-agent.toml`],
    facts: {
      runtimes: ["runc", "vnode"],
      defaultRuntime: "runc",
      sandbox: "registry.k8s.io/pause:3.10",
      cniConfDir: "/etc/cni/net.d",
      imports: [`${CD}/conf.d/vnode-agent.toml`],
    },
  },
  {
    scenario: "containerd-2.2-default",
    distribution: "containerd",
    version: 3,
    changes: [[`${CD}/conf.d/vnode-agent.toml`, "create"]],
    purposes: [DROP],
    content: { [`${CD}/conf.d/vnode-agent.toml`]: V3_DROP_IN },
    loadOrder: [
      `${CD}/config.toml`,
      `${CD}/conf.d/10-registry.toml`,
      `${CD}/conf.d/vnode-agent.toml`,
    ],
    facts: {
      runtimes: ["runc", "vnode"],
      defaultRuntime: "runc",
      sandbox: "registry.k8s.io/pause:3.10",
      cniConfDir: "/etc/cni/net.d",
      imports: ["/etc/containerd/conf.d/*.toml"],
    },
    extra: [
      [
        ["plugins", "io.containerd.cri.v1.images", "registry", "config_path"],
        "/etc/containerd/certs.d",
      ],
      [["plugins", "io.containerd.cri.v1.images", "snapshotter"], "overlayfs"],
    ],
  },
  {
    scenario: "containerd-2.3-v4",
    distribution: "containerd",
    version: 4,
    changes: [[`${CD}/conf.d/vnode-agent.toml`, "create"]],
    purposes: [DROP],
    content: { [`${CD}/conf.d/vnode-agent.toml`]: V3_DROP_IN },
    loadOrder: [`${CD}/config.toml`, `${CD}/conf.d/vnode-agent.toml`],
    facts: {
      runtimes: ["runc", "vnode"],
      defaultRuntime: "runc",
      sandbox: "registry.k8s.io/pause:3.10.1",
      cniConfDir: "/etc/cni/net.d",
      imports: ["/etc/containerd/conf.d/*.toml"],
    },
  },
  {
    scenario: "v2-imports",
    distribution: "containerd",
    version: 2,
    changes: [[`${CD}/cri.toml`, "append"]],
    purposes: [ADD],
    content: { [`${CD}/cri.toml`]: "\n" + V2_BLOCK },
    loadOrder: [`${CD}/config.toml`, `${CD}/cri.toml`, `${CD}/conf.d/50-metrics.toml`],
    facts: {
      runtimes: ["runc", "vnode"],
      defaultRuntime: "runc",
      // cri.toml replaces the main file's whole CRI section (containerd 1.x imports).
      sandbox: "registry.example.com/pause:3.9",
      cniConfDir: "/etc/cni/net.d",
      imports: ["/etc/containerd/cri.toml", "/etc/containerd/conf.d/*.toml"],
    },
    extra: [
      [["plugins", "io.containerd.grpc.v1.cri", "max_container_log_line_size"], undefined],
      [["metrics", "address"], "0.0.0.0:1338"],
      [["plugins", "io.containerd.gc.v1.scheduler", "pause_threshold"], 0.05],
      [["root"], "/var/lib/containerd"],
    ],
  },
  {
    scenario: "v3-imports",
    distribution: "containerd",
    version: 3,
    changes: [
      [`${CD}/conf.d/vnode-agent.toml`, "create"],
      [`${CD}/config.toml`, "edit"],
    ],
    purposes: [DROP, `import ${CD}/conf.d/vnode-agent.toml`],
    content: {
      [`${CD}/conf.d/vnode-agent.toml`]: V3_DROP_IN,
      [`${CD}/config.toml`]:
        '\t"gpu.toml",\n=>\t"gpu.toml", "/etc/containerd/conf.d/vnode-agent.toml",\n',
    },
    loadOrder: [
      `${CD}/config.toml`,
      `${CD}/registry.toml`,
      `${CD}/gpu.toml`,
      `${CD}/conf.d/vnode-agent.toml`,
    ],
    facts: {
      runtimes: ["nvidia", "runc", "vnode"],
      defaultRuntime: "runc",
      sandbox: "registry.k8s.io/pause:3.10",
      cniConfDir: "/etc/cni/net.d",
      imports: ["/etc/containerd/registry.toml", "gpu.toml", `${CD}/conf.d/vnode-agent.toml`],
    },
  },
  {
    scenario: "nvidia-default-v2",
    distribution: "containerd",
    version: 2,
    changes: [[`${CD}/config.toml`, "append"]],
    purposes: [ADD],
    content: { [`${CD}/config.toml`]: "\n" + V2_BLOCK },
    loadOrder: [`${CD}/config.toml`],
    facts: {
      runtimes: ["nvidia", "runc", "vnode"],
      defaultRuntime: "nvidia",
      sandbox: "registry.k8s.io/pause:3.9",
      cniConfDir: "/etc/cni/net.d",
      imports: [],
    },
  },
  {
    scenario: "nvidia-default-v3",
    distribution: "containerd",
    version: 3,
    changes: [
      [`${CD}/conf.d/vnode-agent.toml`, "create"],
      [`${CD}/config.toml`, "edit"],
    ],
    purposes: [DROP, `import ${CD}/conf.d/vnode-agent.toml`],
    content: {
      [`${CD}/conf.d/vnode-agent.toml`]: V3_DROP_IN,
      [`${CD}/config.toml`]:
        "version = 3\n=>version = 3\n# BEGIN vnode-agent imports (managed, do not edit)\n" +
        'imports = ["/etc/containerd/conf.d/vnode-agent.toml"]\n# END vnode-agent imports\n',
    },
    loadOrder: [`${CD}/config.toml`, `${CD}/conf.d/vnode-agent.toml`],
    facts: {
      runtimes: ["nvidia", "runc", "vnode"],
      defaultRuntime: "nvidia",
      sandbox: "registry.k8s.io/pause:3.10",
      cniConfDir: "/etc/cni/net.d",
      imports: [`${CD}/conf.d/vnode-agent.toml`],
    },
  },
  {
    scenario: "v2-minimal",
    distribution: "containerd",
    version: 2,
    changes: [[`${CD}/config.toml`, "append"]],
    purposes: [ADD],
    content: {
      [`${CD}/config.toml`]: [
        "",
        BEGIN,
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '  runtime_type = "io.containerd.runc.v2"',
        ...V2_BLOCK.split("\n").slice(1),
      ].join("\n"),
    },
    loadOrder: [`${CD}/config.toml`],
    facts: {
      runtimes: ["runc", "vnode"],
      defaultRuntime: undefined,
      sandbox: "registry.k8s.io/pause:3.9",
      cniConfDir: "/etc/cni/net.d",
      imports: undefined,
    },
    alsoDeclared: { runc: { runtime_type: "io.containerd.runc.v2" } },
  },
  {
    scenario: "k3s-v2",
    distribution: "k3s",
    version: 2,
    changes: [[`${K3S}/config.toml.tmpl`, "create"]],
    purposes: ['create a template: the k3s base config plus runtime handler "vnode"'],
    content: { [`${K3S}/config.toml.tmpl`]: BASE + "\n" + GUARD + V2_BLOCK },
    loadOrder: [`${K3S}/config.toml`],
    facts: {
      runtimes: ["runc", "vnode"],
      defaultRuntime: undefined,
      sandbox: "rancher/mirrored-pause:3.6",
      cniConfDir: "/var/lib/rancher/k3s/agent/etc/cni/net.d",
      imports: undefined,
    },
  },
  {
    scenario: "k3s-v2-user-template",
    distribution: "k3s",
    version: 2,
    changes: [[`${K3S}/config.toml.tmpl`, "append"]],
    purposes: [ADD],
    content: { [`${K3S}/config.toml.tmpl`]: "\n" + GUARD + V2_BLOCK },
    loadOrder: [`${K3S}/config.toml`],
    facts: {
      runtimes: ["nvidia-experimental", "runc", "vnode"],
      defaultRuntime: undefined,
      sandbox: "rancher/mirrored-pause:3.6",
      cniConfDir: "/var/lib/rancher/k3s/agent/etc/cni/net.d",
      imports: undefined,
    },
  },
  {
    scenario: "k3s-v3",
    distribution: "k3s",
    version: 3,
    changes: [[`${K3S}/config-v3.toml.tmpl`, "create"]],
    purposes: ['create a template: the k3s base config plus runtime handler "vnode"'],
    content: {
      [`${K3S}/config-v3.toml.tmpl`]:
        BASE + "\n" + GUARD + V3_DROP_IN.replace("version = 3\n\n", ""),
    },
    loadOrder: [`${K3S}/config.toml`],
    facts: {
      runtimes: ["crun", "runc", "vnode"],
      defaultRuntime: undefined,
      sandbox: "rancher/mirrored-pause:3.6",
      cniConfDir: "/var/lib/rancher/k3s/agent/etc/cni/net.d",
      imports: undefined,
    },
  },
  {
    scenario: "k3s-v3-dropin",
    distribution: "k3s",
    version: 3,
    changes: [[`${K3S}/config-v3.toml.d/vnode-agent.toml`, "create"]],
    purposes: [DROP],
    content: { [`${K3S}/config-v3.toml.d/vnode-agent.toml`]: V3_DROP_IN },
    loadOrder: [
      `${K3S}/config.toml`,
      `${K3S}/config-v3.toml.d/10-debug.toml`,
      `${K3S}/config-v3.toml.d/vnode-agent.toml`,
    ],
    facts: {
      runtimes: ["crun", "runc", "vnode"],
      defaultRuntime: undefined,
      sandbox: "rancher/mirrored-pause:3.6",
      cniConfDir: "/var/lib/rancher/k3s/agent/etc/cni/net.d",
      imports: [`${K3S}/config-v3.toml.d/*.toml`],
    },
    extra: [[["debug", "level"], "info"]],
  },
  {
    scenario: "rke2-v3",
    distribution: "rke2",
    version: 3,
    changes: [[`${RKE2}/config-v3.toml.tmpl`, "create"]],
    purposes: ['create a template: the rke2 base config plus runtime handler "vnode"'],
    content: {
      [`${RKE2}/config-v3.toml.tmpl`]:
        BASE + "\n" + GUARD + V3_DROP_IN.replace("version = 3\n\n", ""),
    },
    loadOrder: [`${RKE2}/config.toml`],
    facts: {
      runtimes: ["nvidia", "runc", "vnode"],
      defaultRuntime: undefined,
      sandbox: "index.docker.io/rancher/mirrored-pause:3.6",
      cniConfDir: "/var/lib/rancher/rke2/agent/etc/cni/net.d",
      imports: undefined,
    },
  },
  {
    scenario: "microk8s",
    distribution: "microk8s",
    version: 2,
    changes: [[`${MK8S}/containerd-template.toml`, "append"]],
    purposes: [ADD],
    content: { [`${MK8S}/containerd-template.toml`]: "\n" + V2_BLOCK },
    loadOrder: [`${MK8S}/containerd.toml`],
    facts: {
      runtimes: ["kata", "nvidia-container-runtime", "runc", "vnode"],
      defaultRuntime: "runc",
      sandbox: "registry.k8s.io/pause:3.7",
      cniConfDir: "/var/snap/microk8s/7229/args/cni-network",
      imports: undefined,
    },
  },
  {
    scenario: "k0s",
    distribution: "k0s",
    version: 2,
    changes: [["/etc/k0s/containerd.d/vnode-agent.toml", "create"]],
    purposes: [DROP],
    content: {
      "/etc/k0s/containerd.d/vnode-agent.toml": [
        BEGIN,
        "version = 2",
        "",
        ...V2_BLOCK.split("\n").slice(1),
      ].join("\n"),
    },
    loadOrder: [
      "/etc/k0s/containerd.toml",
      "/etc/k0s/containerd.d/gvisor.toml",
      "/etc/k0s/containerd.d/vnode-agent.toml",
    ],
    facts: {
      runtimes: ["runsc", "vnode"],
      defaultRuntime: undefined,
      sandbox: undefined,
      cniConfDir: undefined,
      imports: ["/run/k0s/containerd-cri.toml"],
    },
  },
];

describe.each(CASES)("$scenario", (c) => {
  let layout: ContainerdLayout;
  let files: Files;
  let changes: FileChange[];
  let after: Files;

  beforeAll(async () => {
    ({ layout, files } = await load(c.scenario));
    changes = planRegister(layout, files, SPEC);
    after = apply(files, changes);
  });

  it(`is detected as ${c.distribution}, config version ${c.version}`, () => {
    expect(layout.distribution).toBe(c.distribution);
    expect(effectiveConfig(layout, files).version).toBe(c.version);
  });

  it("plans exactly the expected file changes", () => {
    expect(changes.map((ch) => ch.path)).toEqual(c.changes.map(([p]) => p));
    expect(changes.map((ch) => ch.purpose)).toEqual(c.purposes);
    for (const [p, kind] of c.changes) {
      const ch = changes.find((x) => x.path === p)!;
      const want = c.content[p];
      if (kind === "create") {
        expect(ch.before).toBeNull();
        expect(ch.after).toBe(want);
      } else if (kind === "append") {
        expect(ch.after).toBe(ch.before + want);
      } else {
        const [from, to] = want.split("=>");
        expect(ch.before).toContain(from);
        expect(ch.after).toBe(ch.before!.replace(from, to));
      }
    }
  });

  it("registers the handler under the right plugin and keeps everything else", () => {
    const before = effectiveConfig(layout, files);
    const eff = effectiveConfig(layout, after);
    expect(eff.files).toEqual(c.loadOrder);
    expect(registeredHandler(eff, "vnode")).toEqual(HANDLER);
    expect(registeredHandler(before, "vnode")).toBeUndefined();
    expect(criFacts(eff)).toEqual(c.facts);
    for (const [keys, value] of c.extra ?? [])
      expect([keys, at(eff.doc, ...keys)]).toEqual([keys, value]);
    const added = ["vnode", ...Object.keys(c.alsoDeclared ?? {})];
    for (const [name, table] of Object.entries(c.alsoDeclared ?? {})) {
      expect(registeredHandler(eff, name)).toEqual(table);
    }
    const beforeImports = before.doc.imports;
    const rest = withoutRuntimes(eff, added);
    rest.imports = beforeImports;
    if (beforeImports === undefined) delete rest.imports;
    expect(rest).toEqual(withoutRuntimes(before, added));
  });

  it("changes nothing when run again", () => {
    expect(planRegister(layout, after, SPEC)).toEqual([]);
  });

  it("rewrites only the agent's block or drop-in for a changed spec", () => {
    const spec2 = { ...SPEC, runtimePath: "/opt/vnode/bin/containerd-shim-vnode-v2" };
    const again = planRegister(layout, after, spec2);
    const target = c.changes[0][0];
    expect(again.map((ch) => ch.path)).toEqual([target]);
    expect(again[0].purpose).toBe('update runtime handler "vnode" in the vnode-agent block');
    const edited = again[0].after!;
    const old = after[target]!;
    const r1 = findBlock(old, RUNTIME_BLOCK, target)!;
    const r2 = findBlock(edited, RUNTIME_BLOCK, target)!;
    expect(edited.slice(0, r2.start)).toBe(old.slice(0, r1.start));
    expect(edited.slice(r2.end)).toBe(old.slice(r1.end));
    expect(edited.slice(r2.start, r2.end)).toContain(
      '  runtime_type = "io.containerd.vnode.v2"\n  runtime_path = "/opt/vnode/bin/containerd-shim-vnode-v2"\n',
    );
    const eff = effectiveConfig(layout, apply(after, again));
    expect(registeredHandler(eff, "vnode")).toEqual({
      ...HANDLER,
      runtime_path: "/opt/vnode/bin/containerd-shim-vnode-v2",
    });
  });

  it("unregisters back to the original bytes, and a second unregister does nothing", () => {
    const undo = planUnregister(layout, after);
    expect(undo.map((ch) => ch.path).sort()).toEqual(c.changes.map(([p]) => p).sort());
    const restored = apply(after, undo);
    expect(restored).toEqual(files);
    expect(planUnregister(layout, restored)).toEqual([]);
    expect(registeredHandler(effectiveConfig(layout, restored), "vnode")).toBeUndefined();
  });
});

describe("refused configs", () => {
  const refused: [string, string][] = [
    [
      "v1-no-version",
      "/etc/containerd/config.toml has no version key, so containerd reads it as the deprecated version 1 format; supported: version 2 (containerd 1.6/1.7) or version 3 or 4 (containerd 2.x); convert it (containerd 2.x's `containerd config migrate` does), then rerun.",
    ],
    [
      "malformed",
      "/etc/containerd/config.toml is not valid TOML (line 3, column 37: illegal character in key); fix it so containerd can load it, then rerun.",
    ],
    [
      "v2-inline-runtimes",
      'cannot add the runtime handler "vnode" to /etc/containerd/config.toml: the result would not be valid TOML (line 8, column 2: trying to redefine an already defined table or value), most likely because the file defines those tables inline or with dotted keys; rewrite them as [table] sections, then rerun.',
    ],
    [
      "v2-foreign-vnode",
      '/etc/containerd/config.toml already defines runtime "vnode" under plugins."io.containerd.grpc.v1.cri".containerd.runtimes, not in a vnode-agent block; remove it or choose another --handler, then rerun.',
    ],
  ];

  it.each(refused)(
    "%s: planRegister throws a ConfigError naming the file, and plans nothing",
    async (scenario, message) => {
      const { layout, files } = await load(scenario);
      const snapshot = structuredClone(files);
      let error: unknown;
      try {
        planRegister(layout, files, SPEC);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toBe(message);
      expect((error as ConfigError).file).toBe("/etc/containerd/config.toml");
      expect((error as ConfigError).exitCode).toBe(2);
      expect(files).toEqual(snapshot);
    },
  );

  it("unregister refuses an unreadable config too", async () => {
    for (const scenario of ["v1-no-version", "malformed"]) {
      const { layout, files } = await load(scenario);
      expect(() => planUnregister(layout, files)).toThrow(ConfigError);
    }
  });

  it("a missing imported file is reported with the file that imports it", async () => {
    const { layout, files } = await load("v3-imports");
    const broken = { ...files, "/etc/containerd/gpu.toml": null };
    expect(() => planRegister(layout, broken, SPEC)).toThrow(
      "/etc/containerd/config.toml imports /etc/containerd/gpu.toml, which does not exist; containerd would fail to start (remove the entry or create the file).",
    );
  });

  it("a missing main config is refused with the command that writes one", () => {
    const layout = layoutFor("containerd");
    expect(() =>
      planRegister(
        layout,
        { [layout.config]: null, "/etc/containerd/conf.d/vnode-agent.toml": null },
        SPEC,
      ),
    ).toThrow(
      "/etc/containerd/config.toml does not exist, so containerd runs on built-in defaults; write them with `containerd config default > /etc/containerd/config.toml` (or pass --containerd-config), then rerun.",
    );
  });

  it("k3s before its first start is refused", () => {
    const layout = layoutFor("k3s");
    const files = {
      [layout.config]: null,
      [layout.template!]: null,
      [layout.templateV3!]: null,
      [`${K3S}/conf.d/vnode-agent.toml`]: null,
    };
    expect(() => planRegister(layout, files, SPEC)).toThrow(
      `${K3S}/config.toml does not exist yet; k3s writes it when it starts, so start k3s once, then rerun.`,
    );
  });

  it("a half-removed agent block is refused rather than guessed", async () => {
    const { layout, files } = await load("containerd-1.7-kubeadm");
    const cfg = `${CD}/config.toml`;
    const after = apply(files, planRegister(layout, files, SPEC));
    const broken = { ...after, [cfg]: after[cfg]!.replace(`${END}\n`, "") };
    expect(() => planRegister(layout, broken, SPEC)).toThrow(
      `${cfg} has a "${BEGIN}" line without its "${END}" line; restore or remove the vnode-agent block by hand, then rerun.`,
    );
  });
});

describe("handler spec", () => {
  it.each([
    [
      { ...SPEC, name: "VNode" },
      '--handler must be a DNS label (lowercase letters, digits and "-", at most 63 characters, as a RuntimeClass handler); got "VNode".',
    ],
    [
      { ...SPEC, runtimeType: "vnode" },
      '--runtime-type must be a containerd shim name like io.containerd.vnode.v2; got "vnode".',
    ],
    [
      { ...SPEC, runtimePath: "bin/shim" },
      '--runtime-path must be an absolute path on the host; got "bin/shim".',
    ],
    [
      { ...SPEC, podAnnotations: ["a b"] },
      '--pod-annotations entries must be annotation keys or key patterns without spaces; got "a b".',
    ],
  ])("rejects %j", (spec, message) => {
    expect(() => validateHandlerSpec(spec)).toThrow(message);
  });

  it("renders options as a sub-table and other handler names as the runtime key", async () => {
    const { layout, files } = await load("containerd-1.7-kubeadm");
    const spec = {
      name: "vnode-launcher",
      runtimeType: "io.containerd.vnode.v2",
      options: { ConfigPath: "/etc/vnode/launcher.toml" },
    };
    const [change] = planRegister(layout, files, spec);
    expect(change.after).toBe(
      change.before +
        [
          "",
          BEGIN,
          '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode-launcher]',
          '  runtime_type = "io.containerd.vnode.v2"',
          '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vnode-launcher.options]',
          '  ConfigPath = "/etc/vnode/launcher.toml"',
          END,
          "",
        ].join("\n"),
    );
    expect(
      registeredHandler(effectiveConfig(layout, apply(files, [change])), "vnode-launcher"),
    ).toEqual({
      runtime_type: "io.containerd.vnode.v2",
      options: { ConfigPath: "/etc/vnode/launcher.toml" },
    });
  });

  it("renaming the handler replaces the old one in the same block", async () => {
    const { layout, files } = await load("containerd-2.2-default");
    const after = apply(files, planRegister(layout, files, SPEC));
    const renamed = apply(after, planRegister(layout, after, { ...SPEC, name: "vnode2" }));
    const eff = effectiveConfig(layout, renamed);
    expect(registeredHandler(eff, "vnode")).toBeUndefined();
    expect(registeredHandler(eff, "vnode2")).toEqual(HANDLER);
  });
});

describe("strategy follows the config", () => {
  it("v2: the block moves to an import that later takes over the CRI section", async () => {
    const { layout, files } = await load("containerd-1.7-kubeadm");
    const cfg = `${CD}/config.toml`;
    const after = apply(files, planRegister(layout, files, SPEC));
    const cri = `${CD}/cri-override.toml`;
    const criText =
      'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "mirror.example/pause:3.9"\n';
    const withImport = {
      ...after,
      [cfg]: after[cfg]!.replace("oom_score = -999\n", `oom_score = -999\nimports = ["${cri}"]\n`),
      [cri]: criText,
    };
    const moved = planRegister(layout, withImport, SPEC);
    expect(moved.map((ch) => [ch.path, ch.purpose])).toEqual([
      [cri, ADD],
      [cfg, "remove the vnode-agent block"],
    ]);
    const eff = effectiveConfig(layout, apply(withImport, moved));
    expect(registeredHandler(eff, "vnode")).toEqual(HANDLER);
    expect(at(eff.doc, "plugins", "io.containerd.grpc.v1.cri", "sandbox_image")).toBe(
      "mirror.example/pause:3.9",
    );
    // The override declared no runtimes: containerd 1.x would lose runc, so the block keeps it.
    expect(registeredHandler(eff, "runc")).toEqual({ runtime_type: "io.containerd.runc.v2" });
  });

  it("k3s: an existing config-v3.toml.tmpl wins over config.toml.tmpl, as in k3s", async () => {
    const { layout, files } = await load("k3s-v3");
    const userV3 =
      BASE + "\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  conf_dir = \"/etc/cni/custom\"\n";
    const withTemplates = {
      ...files,
      [layout.templateV3!]: userV3,
      [layout.template!]: "stale v2 template\n",
    };
    const changes = planRegister(layout, withTemplates, SPEC);
    expect(changes.map((ch) => ch.path)).toEqual([layout.templateV3]);
    expect(changes[0].after).toBe(
      userV3 + "\n" + GUARD + V3_DROP_IN.replace("version = 3\n\n", ""),
    );
  });

  it("k0s with a containerd.toml k0s does not manage: its drop-ins do not apply, the main file gets the block", async () => {
    const cfg = "/etc/k0s/containerd.toml";
    const own = fs.readFileSync(
      path.join(FIXTURES, "containerd-1.7-kubeadm/etc/containerd/config.toml"),
      "utf8",
    );
    const host = memHost({ [cfg]: own, "/etc/k0s/containerd.d/gvisor.toml": "version = 2\n" });
    const layout = layoutFor("k0s");
    const files = await collectConfigFiles(layout, host);
    const changes = planRegister(layout, files, SPEC);
    expect(changes.map((ch) => [ch.path, ch.purpose])).toEqual([[cfg, ADD]]);
    expect(changes[0].after).toBe(own + "\n" + V2_BLOCK);
  });

  it("the main config with the agent's files can be computed for a template layout", async () => {
    const { layout, files } = await load("k3s-v2-user-template");
    const after = apply(files, planRegister(layout, files, SPEC));
    expect(mainConfigText(layout, after)).toBe(files[layout.config] + "\n" + V2_BLOCK);
  });
});

describe("text edits", () => {
  const F = "/etc/containerd/config.toml";
  const E = "/etc/containerd/conf.d/vnode-agent.toml";

  it.each([
    [
      "version = 3\nimports = []\n",
      'version = 3\nimports = ["/etc/containerd/conf.d/vnode-agent.toml"]\n',
    ],
    [
      'version = 3\nimports = ["/a.toml"]\n',
      'version = 3\nimports = ["/a.toml", "/etc/containerd/conf.d/vnode-agent.toml"]\n',
    ],
    [
      'imports = [\n  "/a.toml",\n] # end\nversion = 3\n',
      'imports = [\n  "/a.toml", "/etc/containerd/conf.d/vnode-agent.toml",\n] # end\nversion = 3\n',
    ],
    [
      "version = 3 # v\n[grpc]\n  address = 'x'\n",
      "version = 3 # v\n# BEGIN vnode-agent imports (managed, do not edit)\nimports = [\"/etc/containerd/conf.d/vnode-agent.toml\"]\n# END vnode-agent imports\n[grpc]\n  address = 'x'\n",
    ],
    [
      "# head\nversion = 3\nimports = ['/a.toml', # first\n  '/b.toml' # second\n]\n",
      "# head\nversion = 3\nimports = ['/a.toml', # first\n  '/b.toml', \"/etc/containerd/conf.d/vnode-agent.toml\" # second\n]\n",
    ],
  ])("adds and removes an import entry in %j", (before, after) => {
    expect(addImportEntry(before, F, E)).toBe(after);
    const back = removeImportEntry(after, F, E);
    expect(
      removeBlock(
        back,
        {
          begin: "# BEGIN vnode-agent imports (managed, do not edit)",
          end: "# END vnode-agent imports",
        },
        F,
        false,
      ),
    ).toBe(before);
  });

  it("keeps an import entry that is not the agent's", () => {
    const text = 'version = 3\nimports = ["/a.toml", "/b.toml"]\n';
    expect(removeImportEntry(text, F, E)).toBe(text);
    expect(removeImportEntry(text, F, "/a.toml")).toBe('version = 3\nimports = ["/b.toml"]\n');
    const multi = 'imports = [\n  "/a.toml", # a\n  "/b.toml",\n  "/c.toml",\n]\n';
    expect(removeImportEntry(multi, F, "/b.toml")).toBe(
      'imports = [\n  "/a.toml", # a\n  "/c.toml",\n]\n',
    );
  });

  it.each([
    [
      "a = 1\n",
      "a = 1\n\n" + "# BEGIN vnode-agent (managed, do not edit)\nx = 1\n# END vnode-agent\n",
    ],
    ["a = 1", "a = 1\n" + "# BEGIN vnode-agent (managed, do not edit)\nx = 1\n# END vnode-agent\n"],
    ["", "\n# BEGIN vnode-agent (managed, do not edit)\nx = 1\n# END vnode-agent\n"],
  ])("appends a block to %j and removes it exactly", (before, after) => {
    expect(upsertBlock(before, RUNTIME_BLOCK, "x = 1", F)).toBe(after);
    expect(removeBlock(after, RUNTIME_BLOCK, F)).toBe(before);
  });

  it("removes a block someone wrote after, keeping their lines", () => {
    const text =
      "a = 1\n\n# BEGIN vnode-agent (managed, do not edit)\nx = 1\n# END vnode-agent\nb = 2\n";
    expect(removeBlock(text, RUNTIME_BLOCK, F)).toBe("a = 1\nb = 2\n");
    expect(upsertBlock(text, RUNTIME_BLOCK, "x = 2", F)).toBe(text.replace("x = 1", "x = 2"));
  });
});

describe("imports resolution and merge semantics", () => {
  it.each([
    ["*.toml", "vnode-agent.toml", true],
    ["*.toml", ".hidden.toml", true],
    ["*.toml", "a/b.toml", false],
    ["runtime_?.toml", "runtime_a.toml", true],
    ["[0-9]*-*.toml", "10-x.toml", true],
    ["[^0-9]*.toml", "10-x.toml", false],
    ["\\*.toml", "*.toml", true],
  ])("Go glob %s on %s: %s", (pattern, name, matches) => {
    expect(globComponentRegExp(pattern)!.test(name)).toBe(matches);
  });

  it("a bad glob pattern is null, as Go's ErrBadPattern", () => {
    expect(globComponentRegExp("[a")).toBeNull();
  });

  it("resolves relative entries like containerd 1.x and 2.x", () => {
    const entries = ["gpu.toml", "../x/y.toml", "conf.d/*.toml", "/abs/z.toml"];
    expect(
      resolveImportEntries("/etc/containerd/config.toml", entries, 2).map((r) => r.path),
    ).toEqual(["/etc/containerd/gpu.toml", "/etc/x/y.toml", "/conf.d/*.toml", "/abs/z.toml"]);
    expect(
      resolveImportEntries("/etc/containerd/config.toml", entries, 3).map((r) => r.path),
    ).toEqual([
      "/etc/containerd/gpu.toml",
      "/etc/x/y.toml",
      "/etc/containerd/conf.d/*.toml",
      "/abs/z.toml",
    ]);
  });

  const main = () => ({
    root: "/var/lib/containerd",
    oom_score: -999,
    disabled_plugins: ["a"],
    plugins: { cri: { sandbox: "pause:1", cni: { conf_dir: "/etc/cni" } } },
    timeouts: { t1: "1s", t2: "2s" },
  });
  const dropIn = {
    root: "",
    oom_score: 0,
    disabled_plugins: ["a", "b"],
    plugins: { cri: { cni: { bin_dir: "/opt/cni" } } },
    timeouts: { t2: "5s" },
  };

  it("version 2: an import replaces a plugin's whole section, appends lists, ignores zero values", () => {
    const to: TomlTable = main();
    mergeInto(to, dropIn, 2);
    expect(to).toEqual({
      root: "/var/lib/containerd",
      oom_score: -999,
      disabled_plugins: ["a", "a", "b"],
      plugins: { cri: { cni: { bin_dir: "/opt/cni" } } },
      timeouts: { t1: "1s", t2: "5s" },
    });
  });

  it("version 3: an import merges plugin config key by key and adds only new list items", () => {
    const to: TomlTable = main();
    mergeInto(to, dropIn, 3);
    expect(to).toEqual({
      root: "/var/lib/containerd",
      oom_score: -999,
      disabled_plugins: ["a", "b"],
      plugins: { cri: { sandbox: "pause:1", cni: { conf_dir: "/etc/cni", bin_dir: "/opt/cni" } } },
      timeouts: { t1: "1s", t2: "5s" },
    });
  });
});

describe("config version", () => {
  it.each([
    ["version = 2\n", 2],
    ["version = 3\n", 3],
    ["version = 4\n", 4],
    ["root = '/x'\n", null],
    ["version = 1\n", 1],
  ])("readConfigVersion(%j) is %p", (text, version) => {
    expect(readConfigVersion(text, "/c.toml")).toBe(version);
  });

  it.each([
    [
      "version = 1\n",
      "/c.toml has version 1; supported: version 2 (containerd 1.6/1.7) or version 3 or 4 (containerd 2.x).",
    ],
    [
      "version = 5\n",
      "/c.toml has version 5; supported: version 2 (containerd 1.6/1.7) or version 3 or 4 (containerd 2.x).",
    ],
    [
      'version = "2"\n',
      '/c.toml has a non-integer version "2"; supported: version 2 (containerd 1.6/1.7) or version 3 or 4 (containerd 2.x).',
    ],
  ])("parseContainerdConfig(%j) refuses", (text, message) => {
    expect(() => parseContainerdConfig(text, "/c.toml")).toThrow(message);
  });

  it("names the CRI runtime plugin per version", () => {
    expect([2, 3, 4].map((v) => criRuntimePlugin(v as 2 | 3 | 4).id)).toEqual([
      "io.containerd.grpc.v1.cri",
      "io.containerd.cri.v1.runtime",
      "io.containerd.cri.v1.runtime",
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Cross-check with the real containerd 1.6: `containerd config dump` loads a config with its
// imports the way the daemon does and prints the result, with plugin defaults filled in.

const CONTAINERD = "containerd";
const haveContainerd = spawnSync(CONTAINERD, ["--version"]).status === 0;
if (!haveContainerd) {
  if (process.env.CI === "true") {
    throw new Error(
      "containerd is not on PATH on CI; .ci/run installs the Debian containerd package.",
    );
  }
  console.warn(
    "skipping the containerd config dump cross-check: containerd is not on PATH (apt-get install containerd).",
  );
}

(haveContainerd ? describe : describe.skip)("containerd 1.6 agrees on version 2 results", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-config-dump-"));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const v2 = CASES.filter((c) => c.version === 2 && c.distribution !== "k0s");

  it.each(v2.map((c) => [c.scenario]))("%s", async (scenario) => {
    const { layout, files } = await load(scenario);
    const after = apply(files, planRegister(layout, files, SPEC));
    const root = fs.mkdtempSync(path.join(tmp, `${scenario}-`));
    // Materialize the files containerd would load under a private root, imports re-rooted.
    const reroot = (t: string) => t.replaceAll('"/etc/containerd/', `"${root}/etc/containerd/`);
    const main = mainConfigText(layout, after);
    for (const [p, t] of Object.entries({ ...after, [layout.config]: main })) {
      if (t === null) continue;
      fs.mkdirSync(path.dirname(root + p), { recursive: true });
      fs.writeFileSync(root + p, reroot(t));
    }
    const { stdout } = await run(CONTAINERD, ["--config", root + layout.config, "config", "dump"]);
    const dumped = parseContainerdConfig(stdout, "config dump").doc;
    const ours = effectiveConfig(layout, after);
    const cri = (d: TomlTable) => at(d, "plugins", "io.containerd.grpc.v1.cri") as TomlTable;
    const runtimes = (d: TomlTable) =>
      at(cri(d), "containerd", "runtimes") as Record<string, TomlTable>;
    expect(Object.keys(runtimes(dumped)).sort()).toEqual(Object.keys(runtimes(ours.doc)).sort());
    // The CRI plugin fails to load when its default runtime is gone: runc must survive.
    expect(runtimes(dumped).runc?.runtime_type).toBe("io.containerd.runc.v2");
    for (const [name, table] of Object.entries(runtimes(ours.doc))) {
      const theirs = runtimes(dumped)[name];
      expect(theirs.runtime_type).toBe(table.runtime_type);
      expect(theirs.pod_annotations).toEqual(table.pod_annotations ?? []);
      for (const [k, v] of Object.entries((table.options as TomlTable | undefined) ?? {})) {
        expect([name, k, (theirs.options as TomlTable)[k]]).toEqual([name, k, v]);
      }
    }
    expect(at(cri(dumped), "containerd", "default_runtime_name")).toBe(
      at(cri(ours.doc), "containerd", "default_runtime_name") ?? "runc",
    );
    for (const [k, v] of Object.entries(cri(ours.doc))) {
      if (typeof v !== "object") expect([k, cri(dumped)[k]]).toEqual([k, v]);
    }
    if (scenario === "v2-imports") expect(cri(dumped).max_container_log_line_size).toBe(16384); // the default: main's 8192 was replaced
    expect(at(cri(dumped), "cni", "conf_dir")).toBe(
      at(cri(ours.doc), "cni", "conf_dir") ?? "/etc/cni/net.d",
    );
  });
});
