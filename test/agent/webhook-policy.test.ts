import {
  enforcementRules,
  EnforcementRulesError,
  modeForNamespace,
  mutatingRoutes,
  namespaceIsolation,
  NAMESPACE_ISOLATION_LABEL,
  NAMESPACE_NAME_LABEL,
  selectorMatches,
  validatingRoutes,
  type WebhookFlagOptions,
} from "vnode-contract";
import { AgentError } from "../../agent/src/lib/errors";
import { webhookOptions } from "../../agent/src/webhook/flags";
import { agentArgvError, parseAgentArgv } from "../support/agentCli";
import {
  type AdmissionReview,
  compilePolicy,
  mutate,
  parseAdmissionReview,
  ReviewError,
  validate,
} from "../../agent/src/webhook/policy";
import {
  admissionReview,
  type AdmissionCase,
  CASES,
  namespaceObject,
  RULES,
} from "../support/admissionCases";

const UID = "705ab4f5-6393-11e8-b7cc-42010a800002";
const rulesOf = (c: AdmissionCase) => enforcementRules(c.rules ?? RULES);
const reviewOf = (c: AdmissionCase, uid = UID) =>
  parseAdmissionReview(JSON.parse(JSON.stringify(admissionReview(c, uid))));

function expectedMutation(c: AdmissionCase, uid = UID) {
  const response =
    c.mutatedTo === null
      ? { uid, allowed: true }
      : {
          uid,
          allowed: true,
          patchType: "JSONPatch",
          patch: Buffer.from(
            `[{"op":"add","path":"/spec/runtimeClassName","value":"${c.mutatedTo}"}]`,
          ).toString("base64"),
        };
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response };
}

function expectedValidation(c: AdmissionCase, uid = UID) {
  const response =
    c.denied === null
      ? { uid, allowed: true }
      : { uid, allowed: false, status: { code: 403, reason: "Forbidden", message: c.denied } };
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response };
}

/** Applies a JSONPatch of `add` operations (all a mutation ever sends) to a copy of `doc`. */
function applyPatch<T>(doc: T, patchBase64: string): T {
  const out = JSON.parse(JSON.stringify(doc));
  for (const op of JSON.parse(Buffer.from(patchBase64, "base64").toString("utf8"))) {
    if (op.op !== "add") throw new Error(`unexpected op ${op.op}`);
    const keys = (op.path as string).split("/").slice(1);
    const parent = keys.slice(0, -1).reduce((o, k) => o[k], out);
    parent[keys[keys.length - 1]] = op.value;
  }
  return out;
}

describe("webhook policy: every shared case, called directly with the namespace's mode", () => {
  test.each(CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const rules = rulesOf(c);
    const policy = compilePolicy(rules);
    const labels = namespaceObject(c).metadata.labels;
    const cls = rules.classes[modeForNamespace(rules, labels)] as string;
    expect(mutate(reviewOf(c), cls, policy)).toEqual(expectedMutation(c));
    expect(validate(reviewOf(c), policy, namespaceIsolation(rules, labels))).toEqual(
      expectedValidation(c),
    );
  });

  test("the uid is echoed exactly", () => {
    const c = CASES[0];
    const policy = compilePolicy(rulesOf(c));
    const uid = "c0ffee00-0000-4000-8000-000000000001";
    expect(mutate(reviewOf(c, uid), "vnode", policy)).toEqual(expectedMutation(c, uid));
    expect(validate(reviewOf(c, uid), policy, { kind: "mode", mode: "per-namespace" })).toEqual(
      expectedValidation(c, uid),
    );
  });

  test("a mutated pod passes the validation, unless its namespace's label is refused", () => {
    const mutated = CASES.filter((c) => c.mutatedTo !== null);
    expect(mutated.length).toBe(9);
    const honoured = mutated.filter(
      (c) => namespaceIsolation(rulesOf(c), namespaceObject(c).metadata.labels).kind === "mode",
    );
    expect(honoured.length).toBe(7);
    for (const c of honoured) {
      const rules = rulesOf(c);
      const isolation = namespaceIsolation(rules, namespaceObject(c).metadata.labels);
      const policy = compilePolicy(rules);
      const body = admissionReview(c);
      const out = mutate(parseAdmissionReview(body), c.mutatedTo as string, policy);
      const patched = { ...body, request: { ...body.request } };
      patched.request.object = applyPatch(body.request.object, out.response.patch as string);
      expect(patched.request.object.spec).toHaveProperty("runtimeClassName", c.mutatedTo);
      expect(validate(parseAdmissionReview(patched), policy, isolation).response).toEqual({
        uid: UID,
        allowed: true,
      });
    }
  });
});

describe("webhook routes: the component's namespaceSelectors pick the handler's path", () => {
  test.each(CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const rules = rulesOf(c);
    const policy = compilePolicy(rules);
    const labels = namespaceObject(c).metadata.labels;
    const routes = mutatingRoutes(rules).filter((r) =>
      selectorMatches(r.namespaceSelector, labels),
    );
    // The entries never overlap: a pod is mutated by one entry at most.
    expect(routes.length).toBeLessThanOrEqual(1);
    const excluded = rules.excludedNamespaces.includes(c.namespace);
    expect(routes.length).toBe(excluded ? 0 : 1);
    const mutation =
      routes.length === 0
        ? expectedMutation({ ...c, mutatedTo: null })
        : mutate(reviewOf(c), rules.classes[routes[0].mode] as string, policy);
    expect(mutation).toEqual(expectedMutation(c));
    // Exactly one validating entry judges a tenant namespace, none an excluded one.
    const judges = validatingRoutes(rules).filter((r) =>
      selectorMatches(r.namespaceSelector, labels),
    );
    expect(judges.length).toBe(excluded ? 0 : 1);
    const validation =
      judges.length === 0
        ? expectedValidation({ ...c, denied: null })
        : validate(reviewOf(c), policy, judges[0].isolation);
    expect(validation).toEqual(expectedValidation(c));
  });

  test("exact selectors for both modes, per-namespace by default, under a tenant selector", () => {
    const rules = enforcementRules(RULES);
    const tenant = { matchLabels: { "example.com/tenant": "true" } };
    const notExcluded = {
      key: NAMESPACE_NAME_LABEL,
      operator: "NotIn",
      values: ["kube-node-lease", "kube-system", "vnode-runtime"],
    };
    expect(mutatingRoutes(rules, tenant)).toEqual([
      {
        mode: "per-namespace",
        path: "/mutate/per-namespace",
        namespaceSelector: {
          matchLabels: { "example.com/tenant": "true" },
          matchExpressions: [
            notExcluded,
            { key: NAMESPACE_ISOLATION_LABEL, operator: "NotIn", values: ["per-pod"] },
          ],
        },
      },
      {
        mode: "per-pod",
        path: "/mutate/per-pod",
        namespaceSelector: {
          matchLabels: { "example.com/tenant": "true" },
          matchExpressions: [
            notExcluded,
            { key: NAMESPACE_ISOLATION_LABEL, operator: "In", values: ["per-pod"] },
          ],
        },
      },
    ]);
    const validating = (
      name: string,
      path: string,
      isolation: object,
      ...isolationLabel: object[]
    ) => ({
      name,
      path,
      isolation,
      namespaceSelector: {
        matchLabels: { "example.com/tenant": "true" },
        matchExpressions: [notExcluded, ...isolationLabel],
      },
    });
    const key = NAMESPACE_ISOLATION_LABEL;
    expect(validatingRoutes(rules, tenant)).toEqual([
      validating(
        "unlabelled",
        "/validate/per-namespace",
        { kind: "mode", mode: "per-namespace" },
        { key, operator: "DoesNotExist" },
      ),
      validating(
        "per-namespace",
        "/validate/per-namespace",
        { kind: "mode", mode: "per-namespace" },
        { key, operator: "In", values: ["per-namespace"] },
      ),
      validating(
        "per-pod",
        "/validate/per-pod",
        { kind: "mode", mode: "per-pod" },
        { key, operator: "In", values: ["per-pod"] },
      ),
      validating(
        "unknown-isolation",
        "/validate/unknown-isolation",
        { kind: "unknown" },
        { key, operator: "Exists" },
        { key, operator: "NotIn", values: ["per-namespace", "per-pod"] },
      ),
    ]);
  });

  test("a mode without a class still has its validating entry, which refuses the namespace", () => {
    const rules = enforcementRules({ classes: { "per-pod": "vnode" } });
    expect(
      validatingRoutes(rules).map((r) => [r.name, r.path, r.isolation, r.namespaceSelector]),
    ).toEqual([
      ["unlabelled", "/validate/per-pod", { kind: "mode", mode: "per-pod" }, expect.anything()],
      [
        "per-namespace",
        "/validate/per-namespace",
        { kind: "unoffered", mode: "per-namespace" },
        expect.anything(),
      ],
      ["per-pod", "/validate/per-pod", { kind: "mode", mode: "per-pod" }, expect.anything()],
      ["unknown-isolation", "/validate/unknown-isolation", { kind: "unknown" }, expect.anything()],
    ]);
  });

  test("a single mode needs no isolation requirement", () => {
    const rules = enforcementRules({ classes: { "per-pod": "vnode" } });
    expect(mutatingRoutes(rules)).toEqual([
      {
        mode: "per-pod",
        path: "/mutate/per-pod",
        namespaceSelector: {
          matchExpressions: [
            {
              key: NAMESPACE_NAME_LABEL,
              operator: "NotIn",
              values: ["kube-node-lease", "kube-system"],
            },
          ],
        },
      },
    ]);
  });
});

describe("malformed reviews are ReviewErrors with a message (the server answers 400)", () => {
  const good = () => JSON.parse(JSON.stringify(admissionReview(CASES[0])));
  const policy = compilePolicy(enforcementRules(RULES));
  const judge = (body: unknown) =>
    validate(parseAdmissionReview(body), policy, { kind: "mode", mode: "per-namespace" });
  const cases: [string, () => unknown, string][] = [
    ["an array", () => [], "body must be a JSON object; got an array."],
    ["a string", () => "review", 'body must be a JSON object; got "review".'],
    ["null", () => null, "body must be a JSON object; got null."],
    [
      "admission v1beta1",
      () => ({ ...good(), apiVersion: "admission.k8s.io/v1beta1" }),
      'apiVersion must be admission.k8s.io/v1 (the only version served); got "admission.k8s.io/v1beta1".',
    ],
    [
      "another kind",
      () => ({ ...good(), kind: "TokenReview" }),
      'kind must be AdmissionReview; got "TokenReview".',
    ],
    [
      "no request",
      () => ({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }),
      "request must be an object; got nothing.",
    ],
    [
      "an empty uid",
      () => {
        const b = good();
        b.request.uid = "";
        return b;
      },
      'request.uid must be a non-empty string; got "".',
    ],
    [
      "no resource",
      () => {
        const b = good();
        delete b.request.resource;
        return b;
      },
      "request.resource must be an object with string group, version and resource; got nothing.",
    ],
    [
      "a pod without spec",
      () => {
        const b = good();
        delete b.request.object.spec;
        return b;
      },
      "request.object.spec must be an object; got nothing.",
    ],
    [
      "containers that are not a list",
      () => {
        const b = good();
        b.request.object.spec.containers = { name: "web" };
        return b;
      },
      "request.object.spec.containers must be an array; got object.",
    ],
    [
      "a container without a name",
      () => {
        const b = good();
        delete b.request.object.spec.containers[0].name;
        return b;
      },
      "request.object.spec.containers[0].name must be a string; got nothing.",
    ],
    [
      "a hostPort that is a string",
      () => {
        const b = good();
        b.request.object.spec.containers[0].ports[0].hostPort = "8080";
        return b;
      },
      'request.object.spec.containers[0].ports[0].hostPort must be an integer; got "8080".',
    ],
    [
      "a pod CREATE without namespace",
      () => {
        const b = good();
        delete b.request.namespace;
        return b;
      },
      "request.namespace must name the pod's namespace; got nothing.",
    ],
  ];
  test.each(cases)("%s", (_name, body, message) => {
    let err: unknown;
    try {
      judge(body());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReviewError);
    expect((err as Error).message).toBe(message);
  });

  test("the untouched body of the same review is judged normally", () => {
    expect(judge(good()).response.allowed).toBe(false);
    const review: AdmissionReview = parseAdmissionReview(good());
    expect(review.request.uid).toBe(UID);
  });
});

describe("rules and flags", () => {
  const ruleError = (input: Parameters<typeof enforcementRules>[0]) => {
    try {
      enforcementRules(input);
    } catch (err) {
      expect(err).toBeInstanceOf(EnforcementRulesError);
      return [(err as EnforcementRulesError).field, (err as Error).message];
    }
    throw new Error("no error");
  };

  test("defaults and normalisation", () => {
    expect(enforcementRules({ classes: { "per-pod": "vnode" } })).toEqual({
      classes: { "per-pod": "vnode" },
      defaultMode: "per-pod",
      excludedNamespaces: ["kube-node-lease", "kube-system"],
    });
    expect(
      enforcementRules({
        classes: { "per-namespace": "vnode", "per-pod": "vnode-pp" },
        excludedNamespaces: ["b", "kube-system", "a", "b"],
      }),
    ).toEqual({
      classes: { "per-namespace": "vnode", "per-pod": "vnode-pp" },
      defaultMode: "per-namespace",
      excludedNamespaces: ["a", "b", "kube-node-lease", "kube-system"],
    });
  });

  test("bad rules name the field and what is allowed", () => {
    expect(ruleError({ classes: {} })).toEqual([
      "classes",
      "a RuntimeClass is needed for at least one of per-namespace, per-pod.",
    ]);
    expect(ruleError({ classes: { "per-pod": "VNode" } })).toEqual([
      "classes",
      'RuntimeClass name for per-pod must be a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", at most 253 characters); got "VNode".',
    ]);
    expect(ruleError({ classes: { "per-pod": "vnode" }, defaultMode: "per-namespace" })).toEqual([
      "defaultMode",
      "default mode per-namespace has no RuntimeClass; classes are set for: per-pod.",
    ]);
    expect(ruleError({ classes: { "per-pod": "vnode" }, defaultMode: "pod" })).toEqual([
      "defaultMode",
      'default mode must be one of per-namespace, per-pod; got "pod".',
    ]);
    expect(ruleError({ classes: { "per-pod": "vnode" }, excludedNamespaces: ["Team_A"] })).toEqual([
      "excludedNamespaces",
      'excluded namespace must be a namespace name (DNS-1123 label: lowercase letters, digits and "-", at most 63 characters); got "Team_A".',
    ]);
  });

  const BASE = [
    ...["--listen", ":8443", "--tls-cert-file", "/tls/tls.crt", "--tls-key-file", "/tls/tls.key"],
    ...["--exclude-namespace", "vnode-runtime"],
  ];
  const CLASSES = ["--class", "per-namespace=vnode", "--class", "per-pod=vnode-per-pod"];
  const parsed = async (argv: string[]) =>
    (await parseAgentArgv(["webhook", ...argv])).options as unknown as WebhookFlagOptions;
  const flagError = async (argv: string[], env: Record<string, string> = {}) => {
    const f = await parsed(argv);
    try {
      webhookOptions(f, env);
    } catch (err) {
      expect(err).toBeInstanceOf(AgentError);
      return (err as Error).message;
    }
    throw new Error("no error");
  };
  const parseError = async (argv: string[]) => (await agentArgvError(["webhook", ...argv]))[1];

  test("flags become server options; the pod's own namespace is always excluded", async () => {
    expect(
      webhookOptions(await parsed([...BASE, ...CLASSES]), { POD_NAMESPACE: "vnode-system" }),
    ).toEqual({
      listen: { host: undefined, port: 8443 },
      tlsCertFile: "/tls/tls.crt",
      tlsKeyFile: "/tls/tls.key",
      rules: {
        classes: { "per-namespace": "vnode", "per-pod": "vnode-per-pod" },
        defaultMode: "per-namespace",
        excludedNamespaces: ["kube-node-lease", "kube-system", "vnode-runtime", "vnode-system"],
      },
      reloadIntervalMs: 5000,
      maxBodyBytes: 3145728,
      shutdownDelayMs: 5000,
    });
  });

  test("bad flags name the flag", async () => {
    expect(await flagError(BASE)).toBe(
      "--class is required: give MODE=RUNTIMECLASS for at least one mode of per-namespace, per-pod, e.g. --class per-namespace=vnode.",
    );
    expect(await parseError([...BASE, "--class", "vnode"])).toBe(
      '--class must be MODE=NAME; got "vnode".',
    );
    expect(await parseError([...BASE, "--class", "perpod=vnode"])).toBe(
      '--class must start with one of per-namespace, per-pod; got "perpod" in "perpod=vnode".',
    );
    expect(await parseError([...BASE, "--class", "per-pod=a", "--class", "per-pod=b"])).toBe(
      "--class per-pod is given twice (a and b); give it once.",
    );
    expect(await flagError([...BASE, "--class", "per-pod=Bad_Name"])).toBe(
      '--class: RuntimeClass name for per-pod must be a DNS-1123 subdomain (lowercase letters, digits, "-" and ".", at most 253 characters); got "Bad_Name".',
    );
    expect(
      await flagError([...BASE, "--class", "per-pod=vnode", "--default-mode", "per-namespace"]),
    ).toBe(
      "--default-mode: default mode per-namespace has no RuntimeClass; classes are set for: per-pod.",
    );
    expect(await flagError([...BASE, ...CLASSES], { POD_NAMESPACE: "Bad" })).toBe(
      '--exclude-namespace (or POD_NAMESPACE): excluded namespace must be a namespace name (DNS-1123 label: lowercase letters, digits and "-", at most 63 characters); got "Bad".',
    );
    expect(await parseError([...BASE, ...CLASSES, "--max-request-bytes", "1k"])).toBe(
      '--max-request-bytes must be an integer >= 1024; got "1k".',
    );
    expect(await parseError([...BASE, ...CLASSES, "--cert-reload-interval", "0s"])).toBe(
      '--cert-reload-interval must be a duration such as 500ms, 30s, 10m, 1h or 1m30s; got "0s" (at least 100ms).',
    );
    expect(await parseError(CLASSES)).toBe(
      "error: required option '--tls-cert-file <file>' not specified",
    );
  });
});
