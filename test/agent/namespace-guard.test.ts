/**
 * The namespace label guard and the Pod Security labelling (issue 11 items 3 and 6), both
 * backends against one table (test/support/namespaceGuardCases.ts): the webhook's namespace
 * routes (agent/src/webhook/namespaceGuard.ts) and the CEL of contract/src/enforcement/
 * namespaceGuard.ts evaluated with a real CEL implementation (@bufbuild/cel).
 *
 * Each case runs the way the API server runs a namespace write (k8s.io/apiserver admission chain):
 * mutating admission (the Pod Security mutation, where its binding's or webhook's namespaceSelector
 * matches the object's labels as sent: for a Namespace, the selector is matched against the
 * object itself, namespace/matcher.go GetNamespaceLabels), then the API server sets
 * `kubernetes.io/metadata.name` (namespace strategy, KEP-2161), then validating admission (the
 * guard, bound to every namespace). `oldObject` is null on CREATE.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import type { CelInput } from "@bufbuild/cel";
import { create, createFileRegistry, toJson } from "@bufbuild/protobuf";
import { isReflectMessage } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  enforcementRules,
  guardSelector,
  namespaceGuard,
  type NamespaceGuard,
  namespaceGuardCel,
  NamespaceGuardError,
  podSecurityMutationCel,
  podSecuritySelector,
  POD_SECURITY_ENFORCE_LABEL,
  type ResourceRule,
  type WebhookFlagOptions,
  scopeSelector,
  selectorMatches,
} from "vnode-contract";
import {
  guardNamespaceLabels,
  labelPodSecurity,
  parseNamespaceReview,
} from "../../agent/src/webhook/namespaceGuard";
import { AgentError } from "../../agent/src/lib/errors";
import { webhookOptions } from "../../agent/src/webhook/flags";
import { ReviewError } from "../../agent/src/webhook/policy";
import { startWebhookServer, type WebhookServer } from "../../agent/src/webhook/server";
import { agentArgvError, parseAgentArgv } from "../support/agentCli";
import { makeCa, opensslUnavailable, secretDir } from "../support/tlsCerts";
import { celInput, evalCel } from "../support/cel";
import {
  BASE_SETUP,
  GUARD_RULES,
  NAMESPACE_CASES,
  type NamespaceCase,
  namespaceObject,
  namespaceReview,
} from "../support/namespaceGuardCases";

// Kubernetes' ApplyConfiguration types for a Namespace: Object{metadata: Object.metadata{labels}}.
const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "kubernetes_namespace_apply_configuration.proto",
    syntax: "proto3",
    messageType: [
      {
        name: "Object",
        field: [
          {
            name: "metadata",
            number: 1,
            type: 11,
            label: 1,
            typeName: ".Object.metadata",
            jsonName: "metadata",
          },
        ],
        nestedType: [
          {
            name: "metadata",
            field: [
              {
                name: "labels",
                number: 1,
                type: 11,
                label: 3,
                typeName: ".Object.metadata.LabelsEntry",
                jsonName: "labels",
              },
            ],
            nestedType: [
              {
                name: "LabelsEntry",
                field: [
                  { name: "key", number: 1, type: 9, label: 1, jsonName: "key" },
                  { name: "value", number: 2, type: 9, label: 1, jsonName: "value" },
                ],
                options: { mapEntry: true },
              },
            ],
          },
        ],
      },
    ],
  }),
  () => undefined,
);

function guardOf(c: NamespaceCase): {
  guard: NamespaceGuard;
  rules: ReturnType<typeof enforcementRules>;
} {
  const setup = { ...BASE_SETUP, ...c.setup };
  const rules = enforcementRules(GUARD_RULES);
  const guard = namespaceGuard(
    {
      tenantSelector: scopeSelector(setup.scope, setup.selector),
      platformGroups: setup.platformGroups,
      podSecurityLevel: setup.podSecurityLevel,
    },
    rules,
  );
  return { guard, rules };
}

type Ns = ReturnType<typeof namespaceObject>;
const operation = (c: NamespaceCase) => c.operation ?? "CREATE";
const oldObjectOf = (c: NamespaceCase) =>
  operation(c) === "UPDATE" ? namespaceObject(c.namespace, c.before ?? {}, true) : null;
/** The object as the client sends it: an UPDATE carries the name label it read. */
const sentObject = (c: NamespaceCase) =>
  namespaceObject(c.namespace, c.after, operation(c) === "UPDATE");
/** What validating admission sees: the API server's name label added. */
const withNameLabel = (o: Ns): Ns => ({
  ...o,
  metadata: {
    ...o.metadata,
    labels: { ...(o.metadata.labels ?? {}), "kubernetes.io/metadata.name": o.metadata.name },
  },
});
const labelsOf = (o: Ns): Record<string, string> => o.metadata.labels ?? {};

function matchesRules(rules: ResourceRule[], c: NamespaceCase): boolean {
  const resource = c.subResource ? `namespaces/${c.subResource}` : "namespaces";
  return rules.some(
    (r) =>
      r.operations.includes(operation(c)) &&
      r.apiGroups.includes("") &&
      r.resources.includes(resource),
  );
}

function bindingsOf(c: NamespaceCase, object: Ns): Record<string, CelInput> {
  const { request } = namespaceReview(c, object, oldObjectOf(c));
  const { object: o, oldObject, ...rest } = request;
  return {
    object: celInput(o),
    oldObject: celInput(oldObject),
    request: celInput({ subResource: "", ...rest }),
  };
}

function celRun(c: NamespaceCase) {
  const { guard, rules } = guardOf(c);
  let object = sentObject(c);
  let added: string | null = null;
  if (guard.podSecurityLevel !== undefined) {
    const spec = podSecurityMutationCel(guard);
    if (
      matchesRules(spec.matchConstraints.resourceRules, c) &&
      selectorMatches(podSecuritySelector(guard, rules), labelsOf(object))
    ) {
      const bindings = bindingsOf(c, object);
      if (spec.matchConditions.every((m) => evalCel(m.expression, bindings, registry) === true)) {
        for (const m of spec.mutations) {
          const applied = evalCel(m.applyConfiguration.expression, bindings, registry);
          if (!isReflectMessage(applied)) throw new Error("ApplyConfiguration must give an Object");
          const patch = toJson(applied.desc, applied.message) as {
            metadata: { labels: Record<string, string> };
          };
          // Server-side apply merges a map key by key.
          object = {
            ...object,
            metadata: {
              ...object.metadata,
              labels: { ...labelsOf(object), ...patch.metadata.labels },
            },
          };
        }
        added = labelsOf(object)[POD_SECURITY_ENFORCE_LABEL] ?? null;
      }
    }
  }
  const validated = withNameLabel(object);
  const spec = namespaceGuardCel(guard);
  let denied: string | null = null;
  if (
    matchesRules(spec.matchConstraints.resourceRules, c) &&
    selectorMatches(guardSelector(guard), labelsOf(validated))
  ) {
    const bindings = bindingsOf(c, validated);
    if (spec.matchConditions.every((m) => evalCel(m.expression, bindings, registry) === true)) {
      const variables: Record<string, CelInput> = {};
      for (const v of spec.variables) {
        variables[v.name] = evalCel(v.expression, { ...bindings, variables }, registry) as CelInput;
      }
      for (const v of spec.validations) {
        if (evalCel(v.expression, { ...bindings, variables }, registry) !== true) {
          denied = evalCel(v.messageExpression, { ...bindings, variables }, registry) as string;
          break;
        }
      }
    }
  }
  return { podSecurityAdded: added, denied };
}

/** Applies the webhook's JSONPatch `add` operations (the only kind it sends). */
function applyPatch(object: Ns, patchB64: string): Ns {
  const ops = JSON.parse(Buffer.from(patchB64, "base64").toString("utf8")) as {
    op: string;
    path: string;
    value: unknown;
  }[];
  const out = JSON.parse(JSON.stringify(object)) as Ns & {
    metadata: { labels?: Record<string, string> };
  };
  for (const op of ops) {
    expect(op.op).toBe("add");
    if (op.path === "/metadata/labels") {
      expect(out.metadata.labels).toBeUndefined();
      out.metadata.labels = op.value as Record<string, string>;
    } else {
      const key = op.path
        .replace(/^\/metadata\/labels\//, "")
        .replace(/~1/g, "/")
        .replace(/~0/g, "~");
      (out.metadata.labels as Record<string, string>)[key] = op.value as string;
    }
  }
  return out;
}

function webhookRun(c: NamespaceCase) {
  const { guard, rules } = guardOf(c);
  let object = sentObject(c);
  let added: string | null = null;
  if (
    guard.podSecurityLevel !== undefined &&
    selectorMatches(podSecuritySelector(guard, rules), labelsOf(object))
  ) {
    const body = JSON.parse(JSON.stringify(namespaceReview(c, object, oldObjectOf(c))));
    const r = labelPodSecurity(parseNamespaceReview(body), guard).response;
    expect(r.allowed).toBe(true);
    if (r.patch !== undefined) {
      object = applyPatch(object, r.patch);
      added = labelsOf(object)[POD_SECURITY_ENFORCE_LABEL];
    }
  }
  // The API server calls the guard only for namespaces its namespaceSelector selects.
  const validated = withNameLabel(object);
  if (!selectorMatches(guardSelector(guard), labelsOf(validated))) {
    return { podSecurityAdded: added, denied: null };
  }
  const body = JSON.parse(JSON.stringify(namespaceReview(c, validated, oldObjectOf(c))));
  const v = guardNamespaceLabels(parseNamespaceReview(body), guard).response;
  return { podSecurityAdded: added, denied: v.allowed ? null : (v.status?.message ?? "") };
}

describe("namespace label guard: CEL and the webhook agree on every case", () => {
  test.each(NAMESPACE_CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const expected = { podSecurityAdded: c.podSecurityAdded, denied: c.denied };
    expect(celRun(c)).toEqual(expected);
    expect(webhookRun(c)).toEqual(expected);
  });
});

describe("namespace label guard: input and specs", () => {
  const rules = enforcementRules(GUARD_RULES);
  const base = { tenantSelector: { matchLabels: { tenant: "true" } } };

  test("guarded keys: the selector's, the isolation and the exempt label, never the API server's name label", () => {
    const guard = namespaceGuard(
      {
        tenantSelector: {
          matchLabels: { tenant: "true" },
          matchExpressions: [
            { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["default"] },
            { key: "tier", operator: "Exists" },
          ],
        },
        platformGroups: ["platform-admins", "platform-admins", "system:masters"],
      },
      rules,
    );
    expect(guard.guardedLabels).toEqual([
      "tenant",
      "tier",
      "vnode.loft.sh/enforcement-exempt",
      "vnode.loft.sh/isolation",
    ]);
    expect(guard.platformGroups).toEqual(["platform-admins", "system:masters"]);
    expect(guard.excludedNamespaces).toEqual(["kube-node-lease", "kube-system", "vnode-runtime"]);
  });

  test("all-except-exempt guards the exempt label", () => {
    const guard = namespaceGuard({ tenantSelector: scopeSelector("all-except-exempt") }, rules);
    expect(guard.tenantSelector).toEqual({
      matchExpressions: [
        { key: "vnode.loft.sh/enforcement-exempt", operator: "NotIn", values: ["true"] },
      ],
    });
    expect(guard.guardedLabels).toEqual([
      "vnode.loft.sh/enforcement-exempt",
      "vnode.loft.sh/isolation",
    ]);
  });

  test.each([
    [
      "system:authenticated",
      '"system:authenticated" cannot be a platform group: every user is in it',
    ],
    [
      "system:serviceaccounts",
      '"system:serviceaccounts" cannot be a platform group: every ServiceAccount is in it',
    ],
    [
      " admins",
      'a platform group must be a non-blank group name without surrounding spaces or control characters; got " admins".',
    ],
    ["", "a platform group must be a non-blank group name"],
  ])("platform group %j is refused", (group, message) => {
    const call = () => namespaceGuard({ ...base, platformGroups: [group] }, rules);
    expect(call).toThrow(NamespaceGuardError);
    expect(call).toThrow(message);
  });

  test("an unknown Pod Security level is refused", () => {
    expect(() => namespaceGuard({ ...base, podSecurityLevel: "privileged" }, rules)).toThrow(
      'Pod Security level must be one of baseline, restricted; got "privileged".',
    );
  });

  test("ValidatingAdmissionPolicy: namespaces CREATE/UPDATE, platform groups skipped", () => {
    const spec = namespaceGuardCel(
      namespaceGuard({ ...base, platformGroups: ["platform-admins"] }, rules),
    );
    expect(spec.matchConstraints).toEqual({
      resourceRules: [
        {
          apiGroups: [""],
          apiVersions: ["v1"],
          operations: ["CREATE", "UPDATE"],
          resources: ["namespaces"],
        },
      ],
    });
    expect(spec.matchConditions).toEqual([
      {
        name: "not-a-platform-group",
        expression:
          '!(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in ["platform-admins", "system:masters"]))',
      },
    ]);
    expect(spec.variables.map((v) => v.name)).toEqual(["newLabels", "oldLabels", "changed"]);
    expect(spec.validations.map((v) => [v.expression, v.message, v.reason])).toEqual([
      [
        "size(variables.changed) == 0",
        "only the groups platform-admins, system:masters may change the namespace labels tenant, vnode.loft.sh/enforcement-exempt, vnode.loft.sh/isolation",
        "Forbidden",
      ],
    ]);
  });

  test("the webhook refuses a review that is not one, naming the field", () => {
    expect(() =>
      parseNamespaceReview({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }),
    ).toThrow(ReviewError);
    const c = NAMESPACE_CASES[0];
    const body = JSON.parse(
      JSON.stringify(namespaceReview(c, { metadata: { labels: { a: 1 } } }, null)),
    );
    const guard = guardOf(c).guard;
    expect(() => guardNamespaceLabels(parseNamespaceReview(body), guard)).toThrow(
      "request.object.metadata.labels.a must be a string.",
    );
  });
});

describe("vnode-agent webhook: namespace flags", () => {
  const BASE = [
    ...["--tls-cert-file", "/tls/tls.crt", "--tls-key-file", "/tls/tls.key"],
    ...["--class", "per-namespace=vnode", "--exclude-namespace", "vnode-runtime"],
  ];
  const options = async (argv: string[]) =>
    webhookOptions(
      (await parseAgentArgv(["webhook", ...BASE, ...argv]))
        .options as unknown as WebhookFlagOptions,
      {},
    );
  const flagError = async (argv: string[]) => {
    try {
      await options(argv);
    } catch (err) {
      expect(err).toBeInstanceOf(AgentError);
      return (err as Error).message;
    }
    throw new Error("no error");
  };

  test("--tenant-selector, --platform-group and --pod-security-level make the guard", async () => {
    const o = await options([
      ...["--tenant-selector", '{"matchLabels":{"tenant":"true"}}'],
      ...["--platform-group", "platform-admins", "--pod-security-level", "restricted"],
    ]);
    expect(o.namespaceGuard).toEqual({
      tenantSelector: { matchLabels: { tenant: "true" } },
      platformGroups: ["platform-admins", "system:masters"],
      guardedLabels: ["tenant", "vnode.loft.sh/enforcement-exempt", "vnode.loft.sh/isolation"],
      podSecurityLevel: "restricted",
      excludedNamespaces: ["kube-node-lease", "kube-system", "vnode-runtime"],
    });
    expect((await options([])).namespaceGuard).toBeUndefined();
  });

  test("bad namespace flags name the flag", async () => {
    expect(await flagError(["--platform-group", "admins"])).toBe(
      "--platform-group and --pod-security-level need --tenant-selector: the namespace routes judge namespaces by it.",
    );
    expect(await flagError(["--tenant-selector", "tenant=true"])).toMatch(
      /^--tenant-selector must be a label selector as JSON; got "tenant=true" \(/,
    );
    expect(
      await flagError(["--tenant-selector", '{"matchExpressions":[{"key":"a","operator":"Has"}]}']),
    ).toMatch(
      /^--tenant-selector must be a label selector as JSON .*: matchExpressions\.0\.operator: /,
    );
    expect(
      await flagError([
        ...["--tenant-selector", '{"matchLabels":{"tenant":"true"}}'],
        ...["--platform-group", "system:authenticated"],
      ]),
    ).toBe(
      '--platform-group: "system:authenticated" cannot be a platform group: every user is in it, so the guard would let everyone relabel namespaces.',
    );
    expect(
      (await agentArgvError(["webhook", ...BASE, "--pod-security-level", "privileged"]))[1],
    ).toMatch(/privileged/);
  });
});

const noTls = opensslUnavailable();
(noTls ? describe.skip : describe)("webhook HTTPS server: namespace routes", () => {
  let work: string;
  let server: WebhookServer;
  let agent: https.Agent;

  const post = (p: string, body: unknown) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        `${server.url}${p}`,
        { agent, method: "POST", headers: { "content-type": "application/json" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
          );
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "vnode-ns-guard-"));
    const ca = makeCa(path.join(work, "ca"));
    const secret = secretDir(path.join(work, "tls"), ca.issue("vnode-webhook.vnode-runtime.svc"));
    const rules = enforcementRules(GUARD_RULES);
    server = await startWebhookServer({
      listen: "127.0.0.1:0",
      tlsCertFile: secret.certFile,
      tlsKeyFile: secret.keyFile,
      rules,
      namespaceGuard: namespaceGuard(
        {
          tenantSelector: { matchLabels: { tenant: "true" } },
          platformGroups: ["platform-admins"],
          podSecurityLevel: "restricted",
        },
        rules,
      ),
    });
    agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.certPem });
  });
  afterAll(async () => {
    agent?.destroy();
    await server?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("/namespaces/validate denies, /namespaces/mutate labels, a bad review is a 400", async () => {
    const c = NAMESPACE_CASES[0];
    const denied = await post(
      "/namespaces/validate",
      namespaceReview(c, withNameLabel(sentObject(c)), oldObjectOf(c)),
    );
    expect(denied.status).toBe(200);
    expect(JSON.parse(denied.body).response).toEqual({
      uid: "2b9f5a1e-0c3d-4e5f-8a7b-6c5d4e3f2a10",
      allowed: false,
      status: { code: 403, reason: "Forbidden", message: c.denied },
    });
    const created: NamespaceCase = { ...c, operation: "CREATE", after: { tenant: "true" } };
    const mutated = await post(
      "/namespaces/mutate",
      namespaceReview(created, sentObject(created), null),
    );
    expect(JSON.parse(mutated.body).response).toEqual({
      uid: "2b9f5a1e-0c3d-4e5f-8a7b-6c5d4e3f2a10",
      allowed: true,
      patchType: "JSONPatch",
      patch: Buffer.from(
        '[{"op":"add","path":"/metadata/labels/pod-security.kubernetes.io~1enforce","value":"restricted"}]',
      ).toString("base64"),
    });
    const bad = await post("/namespaces/validate", { apiVersion: "admission.k8s.io/v1" });
    expect(bad).toEqual({ status: 400, body: "kind must be AdmissionReview.\n" });
  });
});
