/**
 * The AdmissionPolicy backend's CEL, evaluated with a real CEL implementation (@bufbuild/cel)
 * against the same cases as the webhook handler: both backends must give every case exactly the
 * expected mutation and denial message.
 *
 * The harness applies a policy the way the API server does: matchConstraints' resource rules,
 * then every matchCondition must be true, then the variables in order (each sees the ones
 * before it as `variables.<name>`), then the validations in order, the first failing one's
 * messageExpression being the denial; a mutation's ApplyConfiguration is merged into the object.
 * `Object` and `Object.spec` are declared as messages, as Kubernetes types them for
 * ApplyConfiguration expressions.
 */
import type { CelInput } from "@bufbuild/cel";
import { create, createFileRegistry, toJson } from "@bufbuild/protobuf";
import { isReflectMessage } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  celString,
  enforcementRules,
  modeForNamespace,
  mutatingPolicyCel,
  namespaceIsolation,
  type MutatingPolicyCel,
  type ResourceRule,
  validatingPolicyCel,
  type ValidatingPolicyCel,
} from "vnode-contract";
import {
  compilePolicy,
  mutate,
  parseAdmissionReview,
  validate,
} from "../../agent/src/webhook/policy";
import {
  admissionReview,
  type AdmissionCase,
  CASES,
  namespaceObject,
  RULES,
} from "../support/admissionCases";
import { celInput, evalCel } from "../support/cel";

// Kubernetes' ApplyConfiguration types: Object{spec: Object.spec{runtimeClassName: ...}}.
const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "kubernetes_apply_configuration.proto",
    syntax: "proto3",
    messageType: [
      {
        name: "Object",
        field: [
          {
            name: "spec",
            number: 1,
            type: 11,
            label: 1,
            typeName: ".Object.spec",
            jsonName: "spec",
          },
        ],
        nestedType: [
          {
            name: "spec",
            field: [
              {
                name: "runtimeClassName",
                number: 1,
                type: 9,
                label: 1,
                jsonName: "runtimeClassName",
                proto3Optional: true,
                oneofIndex: 0,
              },
            ],
            oneofDecl: [{ name: "_runtimeClassName" }],
          },
        ],
      },
    ],
  }),
  () => undefined,
);

type Request = ReturnType<typeof admissionReview>["request"];

function matchesRules(rules: ResourceRule[], req: Request): boolean {
  // `pods` matches the resource only; a subresource would need `pods/<name>`.
  const resource = req.subResource
    ? `${req.resource.resource}/${req.subResource}`
    : req.resource.resource;
  return rules.some(
    (r) =>
      r.operations.includes(req.operation) &&
      r.apiGroups.includes(req.resource.group) &&
      r.apiVersions.includes(req.resource.version) &&
      r.resources.includes(resource),
  );
}

/** Binds object, oldObject, request, namespaceObject; null when the policy does not apply. */
function admit(spec: ValidatingPolicyCel | MutatingPolicyCel, c: AdmissionCase) {
  const { request } = admissionReview(c);
  if (!matchesRules(spec.matchConstraints.resourceRules, request)) return null;
  const { object, oldObject, ...rest } = request;
  const bindings: Record<string, CelInput> = {
    object: celInput(object),
    oldObject: celInput(oldObject),
    request: celInput({ subResource: "", ...rest }),
    namespaceObject: celInput(namespaceObject(c)),
  };
  for (const m of spec.matchConditions) {
    if (evalCel(m.expression, bindings, registry) !== true) return null;
  }
  const variables: Record<string, CelInput> = {};
  for (const v of spec.variables) {
    variables[v.name] = evalCel(v.expression, { ...bindings, variables }, registry) as CelInput;
  }
  return { bindings: { ...bindings, variables }, raw: object };
}

/** The denial message of the ValidatingAdmissionPolicy, or null when it allows the pod. */
function celValidate(spec: ValidatingPolicyCel, c: AdmissionCase): string | null {
  const bound = admit(spec, c);
  if (bound === null) return null;
  const { bindings } = bound;
  for (const v of spec.validations) {
    if (evalCel(v.expression, bindings, registry) !== true) {
      const message = evalCel(v.messageExpression, bindings, registry);
      if (typeof message !== "string") throw new Error(`messageExpression gave ${String(message)}`);
      return message;
    }
  }
  return null;
}

function merge(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (Array.isArray(v)) throw new Error(`list merge is not modelled (${k})`);
    const t = target[k];
    if (v !== null && typeof v === "object" && t !== null && typeof t === "object") {
      merge(t as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      target[k] = v;
    }
  }
}

/** The pod after the MutatingAdmissionPolicy, or null when it does not apply. */
function celMutate(spec: MutatingPolicyCel, c: AdmissionCase) {
  const bound = admit(spec, c);
  if (bound === null) return null;
  const { bindings, raw } = bound;
  const pod = JSON.parse(JSON.stringify(raw));
  for (const m of spec.mutations) {
    const applied = evalCel(m.applyConfiguration.expression, bindings, registry);
    if (!isReflectMessage(applied)) throw new Error("ApplyConfiguration must give an Object");
    merge(pod, toJson(applied.desc, applied.message) as Record<string, unknown>);
  }
  return pod;
}

/** The webhook's answers for the case: the mutation's class and the denial message. */
function webhookResult(c: AdmissionCase) {
  const rules = enforcementRules(c.rules ?? RULES);
  const policy = compilePolicy(rules);
  const labels = namespaceObject(c).metadata.labels;
  const cls = rules.classes[modeForNamespace(rules, labels)] as string;
  const m = mutate(parseAdmissionReview(admissionReview(c)), cls, policy).response;
  const v = validate(
    parseAdmissionReview(admissionReview(c)),
    policy,
    namespaceIsolation(rules, labels),
  ).response;
  return {
    mutatedTo: m.patch
      ? (JSON.parse(Buffer.from(m.patch, "base64").toString("utf8"))[0].value as string)
      : null,
    denied: v.allowed ? null : (v.status?.message ?? ""),
  };
}

function celResult(c: AdmissionCase) {
  const rules = enforcementRules(c.rules ?? RULES);
  const mutated = celMutate(mutatingPolicyCel(rules), c);
  return {
    mutatedTo: mutated === null ? null : (mutated.spec.runtimeClassName as string),
    denied: celValidate(validatingPolicyCel(rules), c),
  };
}

describe("CEL policies and the webhook agree on every case", () => {
  test.each(CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const expected = { mutatedTo: c.mutatedTo, denied: c.denied };
    const cel = celResult(c);
    expect(cel).toEqual(expected);
    expect(webhookResult(c)).toEqual(cel);
  });

  test("the mutation changes nothing but runtimeClassName", () => {
    const c = CASES[1];
    const mutated = celMutate(mutatingPolicyCel(enforcementRules(RULES)), c);
    const original = admissionReview(c).request.object;
    expect(mutated).toEqual({
      ...original,
      spec: { ...original.spec, runtimeClassName: "vnode-per-pod" },
    });
  });

  test("a pod the mutation completed passes the validation, unless its namespace's label is refused", () => {
    const rules = enforcementRules(RULES);
    const honoured = (x: AdmissionCase) =>
      namespaceIsolation(rules, namespaceObject(x).metadata.labels).kind === "mode";
    const completedCases = CASES.filter(
      (x) => x.mutatedTo !== null && x.rules === undefined && honoured(x),
    );
    expect(completedCases.length).toBe(4);
    for (const c of completedCases) {
      const completed: AdmissionCase = {
        ...c,
        pod: { ...c.pod, runtimeClassName: c.mutatedTo as string },
      };
      expect([c.name, celValidate(validatingPolicyCel(rules), completed)]).toEqual([c.name, null]);
    }
  });
});

describe("policy specs", () => {
  const rules = enforcementRules(RULES);
  const notExcluded = {
    name: "not-excluded-namespace",
    expression: '!(request.namespace in ["kube-node-lease", "kube-system", "vnode-runtime"])',
  };
  const podCreate = {
    resourceRules: [
      { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] },
    ],
  };

  test("MutatingAdmissionPolicy: exact spec", () => {
    expect(mutatingPolicyCel(rules)).toEqual({
      matchConstraints: podCreate,
      matchConditions: [
        notExcluded,
        {
          name: "runtime-class-unset",
          expression: '!has(object.spec.runtimeClassName) || object.spec.runtimeClassName == ""',
        },
      ],
      variables: [
        {
          name: "isolation",
          expression:
            'has(namespaceObject.metadata.labels) && "vnode.loft.sh/isolation" in namespaceObject.metadata.labels ? namespaceObject.metadata.labels["vnode.loft.sh/isolation"] : ""',
        },
        {
          name: "runtimeClass",
          expression: 'variables.isolation == "per-pod" ? "vnode-per-pod" : "vnode"',
        },
      ],
      mutations: [
        {
          patchType: "ApplyConfiguration",
          applyConfiguration: {
            expression: "Object{spec: Object.spec{runtimeClassName: variables.runtimeClass}}",
          },
        },
      ],
      reinvocationPolicy: "Never",
    });
  });

  test("ValidatingAdmissionPolicy: match, variables and messages", () => {
    const spec = validatingPolicyCel(rules);
    expect(spec.matchConstraints).toEqual(podCreate);
    expect(spec.matchConditions).toEqual([notExcluded]);
    expect(spec.variables).toEqual([
      {
        name: "runtimeClass",
        expression: 'has(object.spec.runtimeClassName) ? object.spec.runtimeClassName : ""',
      },
      {
        name: "isolation",
        expression:
          'has(namespaceObject.metadata.labels) && "vnode.loft.sh/isolation" in namespaceObject.metadata.labels ? namespaceObject.metadata.labels["vnode.loft.sh/isolation"] : "per-namespace"',
      },
      {
        name: "expectedClass",
        expression:
          'variables.isolation == "per-namespace" ? "vnode" : variables.isolation == "per-pod" ? "vnode-per-pod" : ""',
      },
      {
        name: "classOk",
        expression:
          'variables.expectedClass != "" && variables.runtimeClass == variables.expectedClass',
      },
      {
        name: "hostNetwork",
        expression: "has(object.spec.hostNetwork) && object.spec.hostNetwork",
      },
      { name: "hostPortUses", expression: spec.variables[5].expression },
    ]);
    expect(spec.validations.map((v) => [v.expression, v.message, v.reason])).toEqual([
      [
        'variables.expectedClass != ""',
        "no pod is admitted in a namespace whose vnode.loft.sh/isolation label names an isolation mode this cluster does not offer",
        "Forbidden",
      ],
      [
        'variables.expectedClass == "" || variables.classOk',
        "pods must use the RuntimeClass of their namespace's isolation mode",
        "Forbidden",
      ],
      [
        "!variables.classOk || !variables.hostNetwork",
        "hostNetwork is not supported by vNode: the pod sets spec.hostNetwork: true (for such pods the API server also sets every port's hostPort to its containerPort)",
        "Forbidden",
      ],
      [
        "!variables.classOk || variables.hostNetwork || size(variables.hostPortUses) == 0",
        "pods under a vNode RuntimeClass must not use hostPort or hostIP",
        "Forbidden",
      ],
    ]);
    // The class check's message names the other mode's class by a map of the classes.
    expect(spec.validations[1].messageExpression).toContain(
      '{"vnode": "per-namespace", "vnode-per-pod": "per-pod"}[variables.runtimeClass]',
    );
  });

  test("celString escapes what would end or break a CEL string", () => {
    expect(celString('a"b\\c\nd')).toBe('"a\\"b\\\\c\\nd"');
    expect(evalCel(celString('a"b\\c\nd'), {}, registry)).toBe('a"b\\c\nd');
  });
});
