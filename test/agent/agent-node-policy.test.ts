/**
 * The agent's node-write confinement (issue 11): the ValidatingAdmissionPolicy CEL of
 * contract/src/agentPolicy.ts, evaluated with a real CEL implementation (@bufbuild/cel) the way
 * the API server applies a policy (match conditions, then variables in order, then validations in
 * order, the first failing one's messageExpression being the denial).
 *
 * Real behaviour relied on, which this machine cannot run:
 * - A PATCH of a node reaches admission as operation UPDATE with the merged `object` and the
 *   stored `oldObject` (Kubernetes docs, "Dynamic Admission Control": AdmissionReview `operation`
 *   is CREATE, UPDATE, DELETE or CONNECT; ValidatingAdmissionPolicy binds `object` and
 *   `oldObject`).
 * - `request.userInfo.extra` of a bound ServiceAccount token holds
 *   `authentication.kubernetes.io/node-name` (the node of the pod the token was issued for):
 *   k8s.io/apiserver/pkg/authentication/serviceaccount `NodeNameKey`, KEP-4193
 *   (ServiceAccountTokenPodNodeInfo, on by default from 1.30, GA in 1.32). ValidatingAdmissionPolicy
 *   exposes `request.userInfo.extra` as map(string, list(string)).
 * - The agent's pod list stays field-selected to its node (`spec.nodeName=<node>`), asserted in
 *   test/agent/kube.test.ts.
 */
import type { CelInput } from "@bufbuild/cel";
import {
  AGENT_NODE_LABELS,
  agentNodePolicyCel,
  type AgentNodePolicyCel,
  serviceAccountUsername,
} from "vnode-contract";
import { celInput, evalCel } from "../support/cel";

const AGENT = serviceAccountUsername("vnode-runtime", "vnode-agent");

/** The denial message, or null when admitted (or not matched). */
function judge(
  spec: AgentNodePolicyCel,
  req: { username: string; extra?: Record<string, string[]>; object: unknown; oldObject: unknown },
): string | null {
  const bindings: Record<string, CelInput> = {
    object: celInput(req.object),
    oldObject: celInput(req.oldObject),
    request: celInput({
      operation: "UPDATE",
      userInfo: {
        username: req.username,
        groups: ["system:serviceaccounts", "system:authenticated"],
        ...(req.extra ? { extra: req.extra } : {}),
      },
    }),
  };
  for (const m of spec.matchConditions) {
    if (evalCel(m.expression, bindings) !== true) return null;
  }
  const variables: Record<string, CelInput> = {};
  for (const v of spec.variables) {
    variables[v.name] = evalCel(v.expression, { ...bindings, variables }) as CelInput;
  }
  for (const v of spec.validations) {
    if (evalCel(v.expression, { ...bindings, variables }) !== true) {
      return evalCel(v.messageExpression, { ...bindings, variables }) as string;
    }
  }
  return null;
}

const node = (name: string, labels: Record<string, string>, extra: object = {}) => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: {
    name,
    labels: { "kubernetes.io/hostname": name, ...labels },
    annotations: { "node.alpha.kubernetes.io/ttl": "0" },
  },
  spec: { podCIDR: "10.244.1.0/24", ...extra },
});

const own = { "authentication.kubernetes.io/node-name": ["n1"] };
const before = node("n1", { "vnode.loft.sh/runtime": "installing" });

describe("agent node policy, node-and-labels", () => {
  const spec = agentNodePolicyCel(AGENT, "node-and-labels");

  test.each([
    [
      "its own node, its own labels: admitted",
      {
        extra: own,
        object: node("n1", {
          "vnode.loft.sh/runtime": "ready",
          "vnode.loft.sh/isolation-mode": "per-pod",
        }),
      },
      null,
    ],
    ["its own node, removing its labels: admitted", { extra: own, object: node("n1", {}) }, null],
    [
      "another node: denied",
      {
        extra: own,
        oldObject: node("n2", {}),
        object: node("n2", { "vnode.loft.sh/isolation-mode": "per-namespace" }),
      },
      'the vNode agent\'s token is bound to node "n1"; it may not change node "n2"',
    ],
    [
      "a token without a node name: denied, naming the fallback",
      { object: node("n1", { "vnode.loft.sh/runtime": "ready" }) },
      "the vNode agent's token names no node (user extra authentication.kubernetes.io/node-name), so it may change no node; use agentConfinement labels-only on clusters whose tokens carry no node name",
    ],
    [
      "a foreign label on its own node: denied",
      {
        extra: own,
        object: node("n1", {
          "vnode.loft.sh/runtime": "installing",
          "node-role.kubernetes.io/control-plane": "",
        }),
      },
      "the vNode agent may change only the node labels vnode.loft.sh/runtime, vnode.loft.sh/isolation-mode; it changed node-role.kubernetes.io/control-plane",
    ],
    [
      "removing a foreign label: denied",
      {
        extra: own,
        object: {
          ...before,
          metadata: { ...before.metadata, labels: { "vnode.loft.sh/runtime": "installing" } },
        },
      },
      "the vNode agent may change only the node labels vnode.loft.sh/runtime, vnode.loft.sh/isolation-mode; it changed kubernetes.io/hostname",
    ],
    [
      "a taint on its own node: denied",
      {
        extra: own,
        object: node(
          "n1",
          { "vnode.loft.sh/runtime": "installing" },
          { taints: [{ key: "x", effect: "NoSchedule" }] },
        ),
      },
      "the vNode agent may change only its node labels, not annotations, owner references or the spec (taints, unschedulable)",
    ],
    [
      "an annotation on its own node: denied",
      {
        extra: own,
        object: { ...before, metadata: { ...before.metadata, annotations: { evil: "1" } } },
      },
      "the vNode agent may change only its node labels, not annotations, owner references or the spec (taints, unschedulable)",
    ],
  ])("%s", (_name, c, expected) => {
    const r = judge(spec, { username: AGENT, oldObject: before, ...c });
    expect(r).toBe(expected);
  });

  test("other users (kubelet, admins) are not judged", () => {
    const r = judge(spec, {
      username: "system:node:n1",
      oldObject: before,
      object: node("n2", { anything: "goes" }, { unschedulable: true }),
    });
    expect(r).toBeNull();
  });

  test("the label keys are the agent's own, from the contract", () => {
    expect(AGENT_NODE_LABELS).toEqual(["vnode.loft.sh/runtime", "vnode.loft.sh/isolation-mode"]);
    expect(spec.matchConditions).toEqual([
      {
        name: "by-the-agent",
        expression:
          'request.userInfo.username == "system:serviceaccount:vnode-runtime:vnode-agent"',
      },
    ]);
    expect(spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["nodes"] },
    ]);
  });
});

describe("agent node policy, labels-only (fallback for tokens without a node name)", () => {
  const spec = agentNodePolicyCel(AGENT, "labels-only");
  test("any node, own labels: admitted; foreign labels still denied", () => {
    expect(
      judge(spec, {
        username: AGENT,
        oldObject: node("n2", {}),
        object: node("n2", { "vnode.loft.sh/runtime": "ready" }),
      }),
    ).toBeNull();
    expect(
      judge(spec, { username: AGENT, oldObject: node("n2", {}), object: node("n2", { x: "1" }) }),
    ).toBe(
      "the vNode agent may change only the node labels vnode.loft.sh/runtime, vnode.loft.sh/isolation-mode; it changed x",
    );
  });
});
