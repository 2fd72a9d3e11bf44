/** Pulumi.yaml's typed config, the example stacks and the plugin manifest agree with the code. */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { DEFAULTS } from "../../components/index";
import { TYPED_KEYS, UNTYPED_KEYS } from "../../components/stackConfig";

const ROOT = path.join(__dirname, "..", "..");
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), "utf8");
const project = YAML.parse(read("Pulumi.yaml")) as {
  name: string;
  runtime: { name: string };
  config: Record<string, { type: string; description: string; default?: unknown }>;
};

test("the project is a nodejs project named vnode-runtime", () => {
  expect([project.name, project.runtime.name]).toEqual(["vnode-runtime", "nodejs"]);
});

test("every typed key is declared with its type and a description, and nothing else is", () => {
  expect(
    Object.fromEntries(Object.entries(project.config).map(([key, value]) => [key, value.type])),
  ).toEqual(TYPED_KEYS);
  for (const [key, value] of Object.entries(project.config)) {
    expect([key, typeof value.description, value.description.length > 10]).toEqual([
      key,
      "string",
      true,
    ]);
  }
});

test("the declared defaults are the component's defaults", () => {
  const defaults = Object.fromEntries(
    Object.entries(project.config).map(([key, value]) => [key, value.default]),
  );
  expect(defaults).toEqual({
    isolationMode: DEFAULTS.isolationMode,
    namespace: DEFAULTS.namespace,
    createNamespace: DEFAULTS.createNamespace,
    runtimeClassName: DEFAULTS.runtimeClassName,
    handler: DEFAULTS.handler,
    containerdDistribution: DEFAULTS.containerdDistribution,
    restartStrategy: DEFAULTS.restartStrategy,
    priorityClassName: DEFAULTS.priorityClassName,
    maxUnavailable: DEFAULTS.maxUnavailable,
    terminationGracePeriodSeconds: DEFAULTS.terminationGracePeriodSeconds,
    forceUninstall: DEFAULTS.forceUninstall,
    retainNamespace: DEFAULTS.retainNamespace,
  });
});

test("every untyped key is documented in Pulumi.yaml", () => {
  const text = read("Pulumi.yaml");
  for (const key of UNTYPED_KEYS) {
    expect([key, new RegExp(`^#\\s+(\\S+, )?${key}\\b`, "m").test(text)]).toEqual([key, true]);
  }
});

test.each(["dev", "ci"])("stack %s uses only known keys of this project", (stack) => {
  const config = (YAML.parse(read(`Pulumi.${stack}.yaml`)) as { config: Record<string, unknown> })
    .config;
  const known = [...Object.keys(TYPED_KEYS), ...UNTYPED_KEYS].map((key) => `vnode-runtime:${key}`);
  expect(Object.keys(config).filter((key) => !known.includes(key))).toEqual([]);
});

test("the component directory is a nodejs plugin package named vnode", () => {
  expect(YAML.parse(read("components/PulumiPlugin.yaml"))).toEqual({ runtime: "nodejs" });
  const manifest = JSON.parse(read("components/package.json")) as { name: string; main: string };
  // The plugin host requires `main`: the build (test/package/plugin.test.ts loads it).
  expect([manifest.name, manifest.main]).toEqual(["vnode", "dist/index.js"]);
});
