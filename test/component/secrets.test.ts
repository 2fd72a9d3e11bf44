/**
 * A Pulumi secret given as an env value reaches the pod only through a Kubernetes Secret:
 * never a literal in the DaemonSet, and still a secret in the Secret's inputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { VNodeRuntime } from "../../components/index";
import { resolveArgs } from "../../components/defaults";
import { buildEnvSecret } from "../../components/envSecret";
import { Recorder, SECRET_SIG, SECRET_VALUE, containsSecret, settle } from "./harness";

const recorder = new Recorder();
const IMAGE = { ref: "ghcr.io/acme/vnode-agent:0.1.0" };

beforeAll(async () => {
  await recorder.install();
  const runtime = new VNodeRuntime("sec", {
    agentImage: IMAGE,
    env: [
      { name: "LOG_LEVEL", value: "debug" },
      { name: "LICENSE_TOKEN", value: pulumi.secret("s3cr3t-token") },
      { name: "ENDPOINT", value: pulumi.output("https://vnode.example.com") },
      { name: "VENDOR_KEY", secretKeyRef: { name: "vendor", key: "license" } },
    ],
  });
  await settle(recorder, runtime);
});

test("the DaemonSet references the Secret and holds no secret", () => {
  const daemonSet = recorder.one("sec", "kubernetes:apps/v1:DaemonSet").inputs as {
    spec: { template: { spec: { containers: { env: unknown[] }[] } } };
  };
  expect(daemonSet.spec.template.spec.containers[0].env.slice(4)).toEqual([
    { name: "LOG_LEVEL", value: "debug" },
    {
      name: "LICENSE_TOKEN",
      valueFrom: { secretKeyRef: { name: "sec-agent-env", key: "LICENSE_TOKEN" } },
    },
    { name: "ENDPOINT", valueFrom: { secretKeyRef: { name: "sec-agent-env", key: "ENDPOINT" } } },
    { name: "VENDOR_KEY", valueFrom: { secretKeyRef: { name: "vendor", key: "license" } } },
  ]);
  expect(containsSecret(daemonSet)).toBe(false);
  expect(JSON.stringify(daemonSet)).not.toContain("s3cr3t-token");
});

test("the Secret holds the deploy-time values, each still a Pulumi secret", () => {
  const secret = recorder.one("sec", "kubernetes:core/v1:Secret");
  expect(secret.name).toBe("sec-env");
  expect(secret.inputs).toEqual({
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: "sec-agent-env",
      namespace: "vnode-runtime",
      labels: {
        "app.kubernetes.io/name": "vnode-agent",
        "app.kubernetes.io/instance": "sec",
        "app.kubernetes.io/part-of": "vnode",
        "app.kubernetes.io/managed-by": "pulumi",
      },
    },
    type: "Opaque",
    // The Kubernetes SDK wraps the whole of stringData in one secret envelope.
    stringData: {
      [SECRET_SIG]: SECRET_VALUE,
      value: { LICENSE_TOKEN: "s3cr3t-token", ENDPOINT: "https://vnode.example.com" },
    },
  });
});

test("the builder marks every value secret, whatever its origin", async () => {
  const plan = resolveArgs("b", {
    agentImage: IMAGE,
    env: [{ name: "A", value: pulumi.output("plain") }],
  });
  const args = buildEnvSecret(plan, plan.envSecret!, "ns");
  const value = (args.stringData as Record<string, pulumi.Output<string>>).A;
  expect(await pulumi.isSecret(value)).toBe(true);
});

test("literal values only: no Secret", async () => {
  const runtime = new VNodeRuntime("lit", { agentImage: IMAGE, env: [{ name: "A", value: "1" }] });
  await settle(recorder, runtime);
  expect(recorder.byType("lit", "kubernetes:core/v1:Secret")).toEqual([]);
});
