/**
 * The render's stand-in for the Pulumi CLI's config handling (Pulumi.yaml defaults and types,
 * encrypted values) and its secret redaction, on temporary project directories.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  RenderError,
  UsageError,
  sortManifests,
  stackConfig,
  toManifest,
} from "../../scripts/render";

let root: string;
const PROJECT = [
  "name: demo",
  "runtime: nodejs",
  "config:",
  "  image:",
  "    type: string",
  "  replicas:",
  "    type: integer",
  "    default: 1",
  "  enabled:",
  "    type: boolean",
  "    default: true",
  "  zones:",
  "    type: array",
  "    items:",
  "      type: string",
  "    default: [a]",
  "",
].join("\n");

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-config-"));
  fs.writeFileSync(path.join(root, "Pulumi.yaml"), PROJECT);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const stack = (name: string, body: string): void =>
  fs.writeFileSync(path.join(root, `Pulumi.${name}.yaml`), body);

test("stack values win, declared defaults fill the rest, objects become JSON, secure values are redacted", () => {
  stack(
    "s",
    [
      "config:",
      "  demo:image: img:1",
      "  demo:replicas: 3",
      "  demo:pools:",
      "    - name: a",
      "  demo:token:",
      "    secure: v1:AAAA",
      "  demo:nested:",
      "    key:",
      "      secure: v1:BBBB",
      "  kubernetes:context: kind",
      "",
    ].join("\n"),
  );
  expect(stackConfig(root, "s")).toEqual({
    project: "demo",
    config: {
      "demo:image": "img:1",
      "demo:replicas": "3",
      "demo:pools": '[{"name":"a"}]',
      "demo:token": "[secret]",
      "demo:nested": '{"key":"[secret]"}',
      "kubernetes:context": "kind",
      "demo:enabled": "true",
      "demo:zones": '["a"]',
    },
    secretKeys: ["demo:token", "demo:nested"],
  });
});

test("a required key that is missing is an error naming it", () => {
  stack("s", "config:\n  demo:replicas: 2\n");
  expect(() => stackConfig(root, "s")).toThrow(
    new RenderError(
      "Stack 's' is missing configuration value 'image' (Pulumi.s.yaml, key demo:image).",
    ),
  );
});

test.each([
  [
    "demo:replicas: two",
    "Stack 's' with configuration key 'replicas' must be of type 'integer'; got two.",
  ],
  [
    "demo:enabled: maybe",
    "Stack 's' with configuration key 'enabled' must be of type 'boolean'; got maybe.",
  ],
  [
    "demo:zones: [[1]]",
    "Stack 's' with configuration key 'zones' must be of type 'array<string>'; got [[1]].",
  ],
])("a value of the wrong declared type (%s) is an error", (line, message) => {
  stack("s", `config:\n  demo:image: img\n  ${line}\n`);
  expect(() => stackConfig(root, "s")).toThrow(new RenderError(message));
});

test("an unknown stack is a usage error listing the known stacks", () => {
  stack("b", "config: {}\n");
  stack("a", "config: {}\n");
  expect(() => stackConfig(root, "c")).toThrow(
    new UsageError(
      'unknown stack "c": there is no Pulumi.c.yaml next to Pulumi.yaml; known stacks: a, b.',
    ),
  );
  expect(() => stackConfig(root, "../a")).toThrow(UsageError);
});

test("manifests never carry a secret's plaintext", () => {
  const manifest = toManifest({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s", namespace: "n" },
    stringData: {
      "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
      value: { A: "plain" },
    },
    type: "Opaque",
    dropped: undefined,
  });
  expect(manifest).toEqual({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s", namespace: "n" },
    stringData: "[secret]",
    type: "Opaque",
  });
  expect(Object.keys(manifest)).toEqual(["apiVersion", "kind", "metadata", "stringData", "type"]);
});

test("apply order: namespace first, then identity and RBAC, classes, workloads, unknown kinds last", () => {
  const m = (kind: string, name: string) => ({ apiVersion: "v1", kind, metadata: { name } });
  expect(
    sortManifests([
      m("Widget", "w"),
      m("DaemonSet", "b"),
      m("DaemonSet", "a"),
      m("RuntimeClass", "r"),
      m("Namespace", "n"),
    ]).map((x) => `${x.kind}/${x.metadata.name}`),
  ).toEqual(["Namespace/n", "RuntimeClass/r", "DaemonSet/a", "DaemonSet/b", "Widget/w"]);
});
