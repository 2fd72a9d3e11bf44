/**
 * The admission decisions of `vnode-agent webhook`, pure: AdmissionReview v1 in, AdmissionReview
 * v1 out. No Kubernetes API calls: the request path (chosen by the component's namespaceSelectors)
 * says which RuntimeClass applies, and the rules come from the command line.
 *
 * The CEL backend (components/enforcement/cel.ts) enforces the same rules with the same messages;
 * test/agent/webhook-cel.test.ts holds both to one list of cases.
 */
import {
  CONTAINER_LISTS,
  classRequirementParts,
  type EnforcementRules,
  HOST_PORT_UNSUPPORTED,
  vnodeClasses,
} from "vnode-contract";

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

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const describe = (v: unknown) =>
  v === undefined ? "nothing" : Array.isArray(v) ? "an array" : v === null ? "null" : typeof v;

/**
 * Checks the envelope of a parsed body: apiVersion admission.k8s.io/v1, kind AdmissionReview, a
 * request with uid, resource and operation. The pod inside is checked only when the policy reads it.
 */
export function parseAdmissionReview(body: unknown): AdmissionReview {
  if (!isObject(body)) throw new ReviewError(`body must be a JSON object; got ${describe(body)}.`);
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== "AdmissionReview") {
    throw new ReviewError(
      `body must be an AdmissionReview of ${ADMISSION_API_VERSION} (the only version served); got kind ${JSON.stringify(body.kind)} of apiVersion ${JSON.stringify(body.apiVersion)}.`,
    );
  }
  const req = body.request;
  if (!isObject(req)) {
    throw new ReviewError(`request must be an object; got ${describe(req)}.`);
  }
  if (typeof req.uid !== "string" || req.uid === "") {
    throw new ReviewError(`request.uid must be a non-empty string; got ${describe(req.uid)}.`);
  }
  const res = req.resource;
  if (
    !isObject(res) ||
    typeof res.group !== "string" ||
    typeof res.version !== "string" ||
    typeof res.resource !== "string"
  ) {
    throw new ReviewError(
      `request.resource must be an object with string group, version and resource; got ${JSON.stringify(res) ?? "nothing"}.`,
    );
  }
  if (typeof req.operation !== "string") {
    throw new ReviewError(`request.operation must be a string; got ${describe(req.operation)}.`);
  }
  for (const key of ["subResource", "namespace"] as const) {
    if (req[key] !== undefined && typeof req[key] !== "string") {
      throw new ReviewError(`request.${key} must be a string; got ${describe(req[key])}.`);
    }
  }
  return body as unknown as AdmissionReview;
}

/** What the rules read of a pod; parsed strictly, so a malformed pod is a 400, not a guess. */
interface PodView {
  runtimeClassName: string;
  lists: { noun: string; containers: { name: string; ports: PortView[] }[] }[];
}
interface PortView {
  hostPort: number;
  hostIP: string;
}

function podView(object: unknown): PodView {
  const at = "request.object";
  if (!isObject(object))
    throw new ReviewError(`${at} must be a Pod object; got ${describe(object)}.`);
  const spec = object.spec;
  if (!isObject(spec))
    throw new ReviewError(`${at}.spec must be an object; got ${describe(spec)}.`);
  const cls = spec.runtimeClassName;
  if (cls !== undefined && cls !== null && typeof cls !== "string") {
    throw new ReviewError(`${at}.spec.runtimeClassName must be a string; got ${describe(cls)}.`);
  }
  const lists = CONTAINER_LISTS.map(({ field, noun }) => {
    const list = spec[field];
    if (list === undefined || list === null) return { noun, containers: [] };
    if (!Array.isArray(list)) {
      throw new ReviewError(`${at}.spec.${field} must be an array; got ${describe(list)}.`);
    }
    const containers = list.map((c: unknown, i) => {
      const cAt = `${at}.spec.${field}[${i}]`;
      if (!isObject(c) || typeof c.name !== "string") {
        throw new ReviewError(`${cAt} must be an object with a string name.`);
      }
      const ports = c.ports ?? [];
      if (!Array.isArray(ports)) {
        throw new ReviewError(`${cAt}.ports must be an array; got ${describe(ports)}.`);
      }
      return {
        name: c.name,
        ports: ports.map((p: unknown, j): PortView => {
          const pAt = `${cAt}.ports[${j}]`;
          if (!isObject(p)) throw new ReviewError(`${pAt} must be an object; got ${describe(p)}.`);
          const hostPort = p.hostPort ?? 0;
          if (typeof hostPort !== "number" || !Number.isInteger(hostPort)) {
            throw new ReviewError(
              `${pAt}.hostPort must be an integer; got ${JSON.stringify(hostPort)}.`,
            );
          }
          const hostIP = p.hostIP ?? "";
          if (typeof hostIP !== "string") {
            throw new ReviewError(`${pAt}.hostIP must be a string; got ${JSON.stringify(hostIP)}.`);
          }
          return { hostPort, hostIP };
        }),
      };
    });
    return { noun, containers };
  });
  return { runtimeClassName: cls ?? "", lists };
}

/** The rules compiled once for the hot path. */
export interface Policy {
  classes: EnforcementRules["classes"];
  defaultMode: EnforcementRules["defaultMode"];
  excluded: ReadonlySet<string>;
  vnodeClasses: ReadonlySet<string>;
  requirement: readonly [string, string];
}

export function compilePolicy(rules: EnforcementRules): Policy {
  return {
    classes: { ...rules.classes },
    defaultMode: rules.defaultMode,
    excluded: new Set(rules.excludedNamespaces),
    vnodeClasses: new Set(vnodeClasses(rules)),
    requirement: classRequirementParts(rules),
  };
}

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
export function violation(pod: PodView, namespace: string, policy: Policy): string | undefined {
  const cls = pod.runtimeClassName;
  if (!policy.vnodeClasses.has(cls)) {
    const [before, after] = policy.requirement;
    const what =
      cls === ""
        ? "pod has no runtimeClassName; "
        : `pod uses runtimeClassName "${cls}", which is not a vNode RuntimeClass; `;
    return `${what}${before}${namespace}${after}`;
  }
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
 * Denies a judged pod whose runtimeClassName is missing or not a vNode class, or that runs under
 * a vNode class with hostPort or hostIP on any container, init container or ephemeral container
 * port (vNode does not support the host's network namespace). Everything else is allowed.
 */
export function validate(review: AdmissionReview, policy: Policy): AdmissionReviewResponse {
  const { uid, namespace } = review.request;
  const pod = judgedPod(review.request, policy);
  const message = pod && violation(pod, namespace as string, policy);
  if (message === undefined) return reply({ uid, allowed: true });
  return reply({ uid, allowed: false, status: { code: 403, reason: "Forbidden", message } });
}
