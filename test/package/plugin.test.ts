/**
 * components/PulumiPlugin.yaml for other languages, now that the package's `main` is its build.
 * No Pulumi CLI here, so this does what Pulumi's nodejs plugin host does with the directory
 * (@pulumi/pulumi cmd/run-plugin/run.js, 3.270): `require(<plugin dir>)`, which Node resolves
 * through package.json `main`; `getPulumiComponents` on the exports; the provider name from the
 * package name; then a `ComponentProvider` on the directory, whose analyzer reads the TypeScript
 * sources through the directory's tsconfig.json while the constructors come from the build.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ComponentProvider, getPulumiComponents } from "@pulumi/pulumi/provider/experimental";
import { Recorder, settle } from "../component/harness";

const DIR = path.join(__dirname, "..", "..", "components");
const recorder = new Recorder();
beforeAll(() => recorder.install());

test("the plugin directory loads the build and hosts VNodeRuntime as vnode:index:VNodeRuntime", async () => {
  expect(require.resolve(DIR)).toBe(path.join(DIR, "dist", "index.js"));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = require(DIR);
  const components = getPulumiComponents(loaded);
  expect(components.map((component) => component.name)).toEqual(["VNodeRuntime"]);
  const { name } = JSON.parse(fs.readFileSync(path.join(DIR, "package.json"), "utf8"));
  expect(name).toBe("vnode");

  const provider = new ComponentProvider({ name, dirname: DIR, components });
  const schema = JSON.parse(await provider.getSchema());
  expect(Object.keys(schema.resources)).toEqual(["vnode:index:VNodeRuntime"]);

  const constructed = await provider.construct(
    "plugin",
    "vnode:index:VNodeRuntime",
    { agentImage: { ref: "img:1" }, isolationMode: "per-pod" },
    {},
  );
  await settle(recorder, { urn: constructed.urn as pulumi.Output<string> });
  const runtimeClass = recorder.one("plugin", "kubernetes:node.k8s.io/v1:RuntimeClass").inputs;
  expect([runtimeClass.handler, (runtimeClass.metadata as { name: string }).name]).toEqual([
    "vnode",
    "vnode",
  ]);
});
