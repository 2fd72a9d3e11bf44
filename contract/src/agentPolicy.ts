/**
 * What confines the node agent's token beyond RBAC (which cannot name "the node I run on" nor
 * "these label keys"): the CEL of a ValidatingAdmissionPolicy that judges every node UPDATE (a
 * PATCH is judged as UPDATE) made by the agent's ServiceAccount. Pure data; the component adds
 * names and the binding, and test/agent/agent-node-policy.test.ts evaluates the CEL.
 */
import { ISOLATION_MODE_LABEL, RUNTIME_LABEL } from "./labels";
import type {
  CelMatchCondition,
  CelValidation,
  CelVariable,
  ResourceRule,
} from "./enforcement/cel";
import { celString } from "./enforcement/cel";

/** The node labels the agent sets and removes; it may change no other field of a node. */
export const AGENT_NODE_LABELS = [RUNTIME_LABEL, ISOLATION_MODE_LABEL] as const;

/**
 * The user-info extra key that names the node of the pod a bound ServiceAccount token belongs to
 * (k8s.io/apiserver/pkg/authentication/serviceaccount NodeNameKey; KEP-4193, on by default from
 * Kubernetes 1.30, GA in 1.32).
 */
export const NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name";

/** How far the agent's node writes are confined; see the component's `agentConfinement`. */
export const AgentConfinement = {
  /** Only the node named in its token, and only the agent's label keys. */
  NodeAndLabels: "node-and-labels",
  /** Only the agent's label keys, on any node (clusters whose tokens carry no node name). */
  LabelsOnly: "labels-only",
  /** No policy: RBAC alone (patch on every node and field). */
  None: "none",
} as const;
export type AgentConfinement = (typeof AgentConfinement)[keyof typeof AgentConfinement];

export interface AgentNodePolicyCel {
  matchConstraints: { resourceRules: ResourceRule[] };
  matchConditions: CelMatchCondition[];
  variables: CelVariable[];
  validations: CelValidation[];
}

/** `system:serviceaccount:<namespace>:<name>`, the username of a ServiceAccount's tokens. */
export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/**
 * The policy spec (without failurePolicy) for the agent's ServiceAccount `username`. Denies, in
 * order: a node write whose token names another node or none (with `node-and-labels`); a change
 * of any label outside {@link AGENT_NODE_LABELS}; a change of annotations, spec (taints,
 * unschedulable, podCIDR...) or owner references.
 */
export function agentNodePolicyCel(
  username: string,
  confinement: Exclude<AgentConfinement, "none">,
): AgentNodePolicyCel {
  const extra = celString(NODE_NAME_EXTRA);
  const keys = `[${AGENT_NODE_LABELS.map(celString).join(", ")}]`;
  const mapOf = (o: string, field: string) =>
    `has(${o}.metadata.${field}) ? ${o}.metadata.${field} : {}`;
  const validations: CelValidation[] = [];
  if (confinement === AgentConfinement.NodeAndLabels) {
    validations.push({
      expression: "variables.tokenNode == object.metadata.name",
      message: "the vNode agent may change only the node its token is bound to",
      messageExpression:
        `variables.tokenNode == "" ? "the vNode agent's token names no node (user extra ${NODE_NAME_EXTRA}), so it may change no node; ` +
        `use agentConfinement labels-only on clusters whose tokens carry no node name" : ` +
        `"the vNode agent's token is bound to node \\"" + variables.tokenNode + "\\"; it may not change node \\"" + object.metadata.name + "\\""`,
      reason: "Forbidden",
    });
  }
  validations.push(
    {
      expression: `variables.changedLabels.all(k, k in ${keys})`,
      message: `the vNode agent may change only the node labels ${AGENT_NODE_LABELS.join(", ")}`,
      messageExpression:
        `"the vNode agent may change only the node labels ${AGENT_NODE_LABELS.join(", ")}; it changed " + ` +
        `variables.changedLabels.filter(k, !(k in ${keys})).join(", ")`,
      reason: "Forbidden",
    },
    {
      expression:
        `(${mapOf("object", "annotations")}) == (${mapOf("oldObject", "annotations")}) && ` +
        `object.spec == oldObject.spec && ` +
        `(has(object.metadata.ownerReferences) ? object.metadata.ownerReferences : []) == ` +
        `(has(oldObject.metadata.ownerReferences) ? oldObject.metadata.ownerReferences : [])`,
      message:
        "the vNode agent may change only its node labels, not annotations, owner references or the spec (taints, unschedulable)",
      messageExpression: celString(
        "the vNode agent may change only its node labels, not annotations, owner references or the spec (taints, unschedulable)",
      ),
      reason: "Forbidden",
    },
  );
  return {
    matchConstraints: {
      resourceRules: [
        { apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["nodes"] },
      ],
    },
    matchConditions: [
      { name: "by-the-agent", expression: `request.userInfo.username == ${celString(username)}` },
    ],
    variables: [
      {
        name: "tokenNode",
        expression:
          `has(request.userInfo.extra) && ${extra} in request.userInfo.extra && ` +
          `size(request.userInfo.extra[${extra}]) > 0 ? request.userInfo.extra[${extra}][0] : ""`,
      },
      { name: "oldLabels", expression: mapOf("oldObject", "labels") },
      { name: "newLabels", expression: mapOf("object", "labels") },
      {
        name: "changedLabels",
        expression:
          "variables.newLabels.filter(k, !(k in variables.oldLabels) || variables.oldLabels[k] != variables.newLabels[k]) + " +
          "variables.oldLabels.filter(k, !(k in variables.newLabels))",
      },
    ],
    validations,
  };
}
