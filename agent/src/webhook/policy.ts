/**
 * The admission decisions of `vnode-agent webhook`, pure: AdmissionReview v1 in, AdmissionReview
 * v1 out. No Kubernetes API calls: the request path (chosen by the component's namespaceSelectors,
 * which the API server evaluates against the namespace's live labels) says which RuntimeClass
 * applies, or that the namespace's isolation label cannot be honoured; the rules come from the
 * command line.
 *
 * The CEL backend (components/enforcement/cel.ts) enforces the same rules with the same messages;
 * test/agent/webhook-cel.test.ts holds both to one list of cases.
 */
import {
  CONTAINER_LISTS,
  classRequirementParts,
  configuredModes,
  type EnforcementRules,
  HOST_NETWORK_UNSUPPORTED,
  HOST_PORT_UNSUPPORTED,
  type IsolationMode,
  isolationLabelDenial,
  modeClassRequirement,
  type NamespaceIsolation,
  RUNTIME_CLASS_USED,
} from "vnode-contract";
import * as z from "zod/mini";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

/** The fields of an AdmissionRequest the policy reads; the rest is passed over. */
export interface AdmissionRequest {
  uid: string;
  resource: GroupVersionResource;
  subResource?: string;
  namespace?: string;
  operation: string;
  object?: unknown;
}

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: "AdmissionReview";
  request: AdmissionRequest;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: "JSONPatch";
  /** base64 of the JSONPatch document. */
  patch?: string;
  status?: { code: number; reason: string; message: string };
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: "AdmissionReview";
  response: AdmissionResponse;
}

/** A body that is not a well-formed AdmissionReview v1; the server answers 400 with the message. */
export class ReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReviewError";
  }
}

const describe = (v: unknown) =>
  v === undefined ? "nothing" : Array.isArray(v) ? "an array" : v === null ? "null" : typeof v;

// zod/mini, like the ledger: the checks of classic zod, tree-shaken to what is used here.
const must = (what: string) => ({ error: `must be ${what}` });
const obj = must("an object");
const str = must("a string");

const ReviewSchema = z.object(
  {
    apiVersion: z.literal(
      ADMISSION_API_VERSION,
      must(`${ADMISSION_API_VERSION} (the only version served)`),
    ),
    kind: z.literal("AdmissionReview", must("AdmissionReview")),
    request: z.object(
      {
        uid: z.string(must("a non-empty string")).check(z.minLength(1, must("a non-empty string"))),
        resource: z.object(
          { group: z.string(str), version: z.string(str), resource: z.string(str) },
          must("an object with string group, version and resource"),
        ),
        subResource: z.optional(z.string(str)),
        namespace: z.optional(z.string(str)),
        operation: z.string(str),
        object: z.optional(z.unknown()),
      },
      obj,
    ),
  },
  must("a JSON object"),
);

/** Absent and `null` are the same to the API server's decoder (Go zero values). */
const orUnset = <T extends z.core.SomeType>(t: T) => z.optional(z.nullable(t));

const PortSchema = z.object(
  {
    hostPort: orUnset(z.int(must("an integer"))),
    hostIP: orUnset(z.string(str)),
  },
  obj,
);
const ContainerSchema = z.object(
  { name: z.string(str), ports: orUnset(z.array(PortSchema, must("an array"))) },
  obj,
);
const containerList = () => orUnset(z.array(ContainerSchema, must("an array")));
type ContainerListField = (typeof CONTAINER_LISTS)[number]["field"];
const PodSchema = z.object(
  {
    spec: z.object(
      {
        runtimeClassName: orUnset(z.string(str)),
        hostNetwork: orUnset(z.boolean(must("a boolean"))),
        ...(Object.fromEntries(
          CONTAINER_LISTS.map(({ field }) => [field, containerList()]),
        ) as Record<ContainerListField, ReturnType<typeof containerList>>),
      },
      obj,
    ),
  },
  must("a Pod object"),
);

/**
 * Parses `value` with `schema`; a mismatch is a ReviewError naming the first bad field by its
 * path under `root` (the body itself when both are empty), what it must be, and what it is.
 */
function parseWith<T>(schema: z.ZodMiniType<T>, value: unknown, root: string): T {
  const r = z.safeParse(schema, value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  let at: unknown = value;
  let where = root;
  for (const key of issue.path) {
    at = (at as Record<PropertyKey, unknown> | undefined)?.[key as PropertyKey];
    where += typeof key === "number" ? `[${key}]` : `${where === "" ? "" : "."}${String(key)}`;
  }
  where ||= "body";
  const got = ["string", "number", "boolean"].includes(typeof at)
    ? JSON.stringify(at)
    : describe(at);
  throw new ReviewError(`${where} ${issue.message}; got ${got}.`);
}

/**
 * Checks the envelope of a parsed body: apiVersion admission.k8s.io/v1, kind AdmissionReview, a
 * request with uid, resource and operation. The pod inside is checked only when the policy reads it.
 */
export function parseAdmissionReview(body: unknown): AdmissionReview {
  return parseWith(ReviewSchema, body, "") as AdmissionReview;
}

/** What the rules read of a pod; parsed strictly, so a malformed pod is a 400, not a guess. */
interface PodView {
  runtimeClassName: string;
  hostNetwork: boolean;
  lists: { noun: string; containers: { name: string; ports: PortView[] }[] }[];
}
interface PortView {
  hostPort: number;
  hostIP: string;
}

function podView(object: unknown): PodView {
  const { spec } = parseWith(PodSchema, object, "request.object");
  return {
    runtimeClassName: spec.runtimeClassName ?? "",
    hostNetwork: spec.hostNetwork ?? false,
    lists: CONTAINER_LISTS.map(({ field, noun }) => ({
      noun,
      containers: (spec[field] ?? []).map((c) => ({
        name: c.name,
        ports: (c.ports ?? []).map((p) => ({ hostPort: p.hostPort ?? 0, hostIP: p.hostIP ?? "" })),
      })),
    })),
  };
}

/** The rules compiled once for the hot path. */
export interface Policy {
  rules: EnforcementRules;
  excluded: ReadonlySet<string>;
  /** Each vNode class with its mode (the first mode of a class two modes share). */
  modeOfClass: ReadonlyMap<string, IsolationMode>;
  requirement: readonly [string, string];
}

export function compilePolicy(rules: EnforcementRules): Policy {
  const modeOfClass = new Map<string, IsolationMode>();
  for (const m of configuredModes(rules)) {
    const cls = rules.classes[m] as string;
    if (!modeOfClass.has(cls)) modeOfClass.set(cls, m);
  }
  return {
    rules,
    excluded: new Set(rules.excludedNamespaces),
    modeOfClass,
    requirement: classRequirementParts(rules),
  };
}

/**
 * What a validating path judges by: the namespace's isolation as its entry's namespaceSelector
 * found it, or `any` (the bare `/validate` of configurations written before the mode was
 * enforced: any vNode class, whatever the mode).
 */
export type ValidationScope = NamespaceIsolation | { kind: "any" };

/**
 * The pod this policy judges, or undefined for anything else: only CREATE of `pods` (core/v1,
 * no subresource) outside the excluded namespaces. Runtime class and ports are immutable once a
 * pod exists, and judging UPDATEs would block label or finalizer changes on pods that predate
 * the enforcement, so UPDATE is let through like the rest.
 */
function judgedPod(req: AdmissionRequest, policy: Policy): PodView | undefined {
  const r = req.resource;
  if (r.group !== "" || r.version !== "v1" || r.resource !== "pods") return undefined;
  if ((req.subResource ?? "") !== "" || req.operation !== "CREATE") return undefined;
  if (typeof req.namespace !== "string" || req.namespace === "") {
    throw new ReviewError(
      `request.namespace must name the pod's namespace; got ${describe(req.namespace)}.`,
    );
  }
  if (policy.excluded.has(req.namespace)) return undefined;
  return podView(req.object);
}

const reply = (response: AdmissionResponse): AdmissionReviewResponse => ({
  apiVersion: ADMISSION_API_VERSION,
  kind: "AdmissionReview",
  response,
});

/**
 * Sets `spec.runtimeClassName` to `cls` on a judged pod that has none (or an empty one), by a
 * JSONPatch `add`; any other request is allowed unchanged. A pod with another class is left to
 * {@link validate}.
 */
export function mutate(
  review: AdmissionReview,
  cls: string,
  policy: Policy,
): AdmissionReviewResponse {
  const { uid } = review.request;
  const pod = judgedPod(review.request, policy);
  if (pod === undefined || pod.runtimeClassName !== "") return reply({ uid, allowed: true });
  const patch = [{ op: "add", path: "/spec/runtimeClassName", value: cls }];
  return reply({
    uid,
    allowed: true,
    patchType: "JSONPatch",
    patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
  });
}

/** Why `pod` breaks the rules, or undefined. One message, the same the CEL policy gives. */
export function violation(
  pod: PodView,
  namespace: string,
  policy: Policy,
  scope: ValidationScope,
): string | undefined {
  if (scope.kind === "unoffered" || scope.kind === "unknown") {
    return isolationLabelDenial(
      policy.rules,
      namespace,
      scope.kind === "unoffered" ? scope.mode : undefined,
    );
  }
  const cls = pod.runtimeClassName;
  if (scope.kind === "any") {
    if (!policy.modeOfClass.has(cls)) {
      const [before, after] = policy.requirement;
      const what = cls === "" ? RUNTIME_CLASS_USED.none() : RUNTIME_CLASS_USED.notVNode(cls);
      return `${what}; ${before}${namespace}${after}`;
    }
  } else {
    const expected = policy.rules.classes[scope.mode] as string;
    if (cls !== expected) {
      const other = policy.modeOfClass.get(cls);
      const what =
        cls === ""
          ? RUNTIME_CLASS_USED.none()
          : other !== undefined
            ? RUNTIME_CLASS_USED.otherMode(cls, other)
            : RUNTIME_CLASS_USED.notVNode(cls);
      return `${what}${modeClassRequirement(namespace, scope.mode, expected)}`;
    }
  }
  // The API server sets every port's hostPort to its containerPort on a hostNetwork pod, so
  // hostNetwork is reported alone, not as the host ports it implies.
  if (pod.hostNetwork) return HOST_NETWORK_UNSUPPORTED;
  const uses: string[] = [];
  for (const { noun, containers } of pod.lists) {
    for (const c of containers) {
      for (const p of c.ports) {
        if (p.hostPort !== 0) {
          uses.push(
            `hostPort ${p.hostPort}${p.hostIP !== "" ? ` on hostIP ${p.hostIP}` : ""} in ${noun} "${c.name}"`,
          );
        } else if (p.hostIP !== "") {
          uses.push(`hostIP ${p.hostIP} in ${noun} "${c.name}"`);
        }
      }
    }
  }
  return uses.length === 0 ? undefined : `pod uses ${uses.join(" and ")}${HOST_PORT_UNSUPPORTED}`;
}

/**
 * Denies a judged pod of a namespace whose isolation label cannot be honoured; one whose
 * runtimeClassName is not the class of its namespace's mode (under scope `any`: not a vNode
 * class); and one of that class with hostNetwork, or hostPort or hostIP on any container, init
 * container or ephemeral container port (vNode does not support the host's network namespace).
 * Everything else is allowed.
 */
export function validate(
  review: AdmissionReview,
  policy: Policy,
  scope: ValidationScope,
): AdmissionReviewResponse {
  const { uid, namespace } = review.request;
  const pod = judgedPod(review.request, policy);
  const message = pod && violation(pod, namespace as string, policy, scope);
  if (message === undefined) return reply({ uid, allowed: true });
  return reply({ uid, allowed: false, status: { code: 403, reason: "Forbidden", message } });
}
