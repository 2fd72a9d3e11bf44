/**
 * The namespace routes of `vnode-agent webhook`, pure: AdmissionReview v1 of a Namespace in,
 * AdmissionReview v1 out. `/namespaces/validate` is the namespace label guard (only the platform
 * groups may add, change or remove the labels that decide enforcement); `/namespaces/mutate` gives
 * enforced namespaces the configured Pod Security level. The rules are the contract's
 * (enforcement/namespaceGuard.ts), which the AdmissionPolicy backend evaluates as CEL;
 * test/agent/namespace-guard.test.ts holds both to one table of cases.
 */
import {
  guardDenial,
  guardedLabelChanges,
  isPlatformUser,
  type NamespaceGuard,
  podSecurityPatch,
} from "vnode-contract";
import * as z from "zod/mini";
import { ADMISSION_API_VERSION, type AdmissionReviewResponse, ReviewError } from "./policy";

const must = (what: string) => ({ error: `must be ${what}` });
const str = must("a string");
const Labels = z.optional(
  z.nullable(z.record(z.string(), z.string(str), must("a map of strings"))),
);
const NamespaceObject = z.object(
  { metadata: z.object({ name: z.optional(z.string(str)), labels: Labels }, must("an object")) },
  must("a Namespace object"),
);

const NamespaceReviewSchema = z.object(
  {
    apiVersion: z.literal(ADMISSION_API_VERSION, must(`${ADMISSION_API_VERSION}`)),
    kind: z.literal("AdmissionReview", must("AdmissionReview")),
    request: z.object(
      {
        uid: z.string(str).check(z.minLength(1, must("a non-empty string"))),
        resource: z.object(
          { group: z.string(str), version: z.string(str), resource: z.string(str) },
          must("an object with string group, version and resource"),
        ),
        subResource: z.optional(z.string(str)),
        operation: z.string(str),
        userInfo: z.object(
          {
            username: z.optional(z.string(str)),
            groups: z.optional(z.nullable(z.array(z.string(str), must("a list of strings")))),
          },
          must("an object"),
        ),
        object: z.optional(z.unknown()),
        oldObject: z.optional(z.unknown()),
      },
      must("an object"),
    ),
  },
  must("a JSON object"),
);

type NamespaceReview = z.infer<typeof NamespaceReviewSchema>;

/** Checks the envelope; the Namespace objects are parsed only for the requests that are judged. */
export function parseNamespaceReview(body: unknown): NamespaceReview {
  const r = z.safeParse(NamespaceReviewSchema, body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.map(String).join(".") || "body";
  throw new ReviewError(`${where} ${issue.message}.`);
}

function namespaceOf(
  value: unknown,
  where: string,
): { name: string; labels?: Record<string, string> } {
  const r = z.safeParse(NamespaceObject, value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ReviewError(`${[where, ...issue.path.map(String)].join(".")} ${issue.message}.`);
  }
  const { name, labels } = r.data.metadata;
  return { name: name ?? "", ...(labels ? { labels } : {}) };
}

/** Only CREATE and UPDATE of `namespaces` (core/v1, no subresource) are judged. */
function judged(review: NamespaceReview): boolean {
  const { resource: r, subResource, operation } = review.request;
  return (
    r.group === "" &&
    r.version === "v1" &&
    r.resource === "namespaces" &&
    (subResource ?? "") === "" &&
    (operation === "CREATE" || operation === "UPDATE")
  );
}

const reply = (response: AdmissionReviewResponse["response"]): AdmissionReviewResponse => ({
  apiVersion: ADMISSION_API_VERSION,
  kind: "AdmissionReview",
  response,
});

/** The label guard: denies a user outside the platform groups who changes a guarded label. */
export function guardNamespaceLabels(
  review: NamespaceReview,
  guard: NamespaceGuard,
): AdmissionReviewResponse {
  const { uid, userInfo, operation } = review.request;
  if (!judged(review) || isPlatformUser(guard, userInfo.groups ?? [])) {
    return reply({ uid, allowed: true });
  }
  const after = namespaceOf(review.request.object, "request.object");
  const before =
    operation === "UPDATE" && review.request.oldObject != null
      ? namespaceOf(review.request.oldObject, "request.oldObject").labels
      : undefined;
  const changed = guardedLabelChanges(guard, after.name, before ?? {}, after.labels ?? {});
  if (changed.length === 0) return reply({ uid, allowed: true });
  const message = guardDenial(guard, after.name, userInfo.username ?? "", changed);
  return reply({ uid, allowed: false, status: { code: 403, reason: "Forbidden", message } });
}

/** The Pod Security mutation: adds the enforce label to an enforced namespace that has none. */
export function labelPodSecurity(
  review: NamespaceReview,
  guard: NamespaceGuard,
): AdmissionReviewResponse {
  const { uid } = review.request;
  if (!judged(review)) return reply({ uid, allowed: true });
  const ns = namespaceOf(review.request.object, "request.object");
  const patch = podSecurityPatch(guard, ns.name, ns.labels);
  if (patch === undefined) return reply({ uid, allowed: true });
  return reply({
    uid,
    allowed: true,
    patchType: "JSONPatch",
    patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
  });
}
