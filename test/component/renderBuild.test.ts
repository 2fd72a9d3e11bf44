/**
 * Offline render of a stack that builds the agent image: nothing is built or pushed, so the
 * DaemonSet gets the render's placeholder digest, and the registry password reaches no manifest.
 */
import * as path from "path";
import { Manifest, OFFLINE_IMAGE_DIGEST, runProgram } from "../../scripts/render";

const ROOT = path.join(__dirname, "..", "..");
const PASSWORD = "render-token-3b8d";
let manifests: Manifest[];

beforeAll(async () => {
  const agentImage = {
    build: {
      registry: { address: "ghcr.io", username: "bot", password: PASSWORD },
      repository: "acme/vnode-agent",
      tag: "0.1.0",
    },
  };
  const key = "vnode-runtime:agentImage";
  manifests = await runProgram(
    ROOT,
    "vnode-runtime",
    "build",
    {
      [key]: JSON.stringify(agentImage),
      "vnode-runtime:vnodeImage": "registry.example.com/mirror/vnode-runtime:0.0.4",
    },
    [key],
  );
});

test("the DaemonSet runs the tag pinned to the placeholder digest", () => {
  const daemonSets = manifests.filter((manifest) => manifest.kind === "DaemonSet") as unknown as {
    spec: { template: { spec: { containers: { image: string }[] } } };
  }[];
  expect(daemonSets.map((daemonSet) => daemonSet.spec.template.spec.containers[0].image)).toEqual([
    `ghcr.io/acme/vnode-agent:0.1.0@${OFFLINE_IMAGE_DIGEST}`,
  ]);
  expect(OFFLINE_IMAGE_DIGEST).toBe(`sha256:${"0".repeat(64)}`);
});

test("only Kubernetes objects are rendered, and none holds the password", () => {
  expect(manifests.map((manifest) => manifest.kind).sort()).toEqual([
    "ClusterRole",
    "ClusterRoleBinding",
    "DaemonSet",
    "Namespace",
    "Role",
    "RoleBinding",
    "RuntimeClass",
    "ServiceAccount",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
  ]);
  expect(JSON.stringify(manifests)).not.toContain(PASSWORD);
});
