/**
 * What `vnode-agent webhook` answers, pure: its route table, and the answer to one request body on
 * a review route, as plain data (status, body, what to log). The server calls it on the event loop
 * for small bodies; the review thread (reviewThread.ts) calls it for large ones. Both build the
 * same table from the same rules, so a path means the same thing on either side.
 */
import {
  type EnforcementRules,
  ISOLATION_MODES,
  mutatePath,
  NAMESPACE_WEBHOOK_PATHS,
  type NamespaceGuard,
  validatingRoutes,
  WEBHOOK_HTTPS,
} from "vnode-contract";
import { messageOf } from "../lib/errors";
import { guardNamespaceLabels, labelPodSecurity, parseNamespaceReview } from "./namespaceGuard";
import {
  type AdmissionReviewResponse,
  mutate,
  parseAdmissionReview,
  type Policy,
  ReviewError,
  validate,
  type ValidationScope,
} from "./policy";

export type Route =
  | { kind: "mutate"; cls: string }
  | { kind: "validate"; scope: ValidationScope }
  | { kind: "namespace-guard"; guard: NamespaceGuard }
  | { kind: "namespace-pod-security"; guard: NamespaceGuard }
  | { kind: "health" };
export type ReviewRoute = Exclude<Route, { kind: "health" }>;

export function routesOf(
  rules: EnforcementRules,
  guard: NamespaceGuard | undefined,
): Map<string, Route> {
  const routes = new Map<string, Route>([
    [WEBHOOK_HTTPS.mutate, { kind: "mutate", cls: rules.classes[rules.defaultMode] as string }],
  ]);
  for (const mode of ISOLATION_MODES) {
    const cls = rules.classes[mode];
    if (cls !== undefined) routes.set(mutatePath(mode), { kind: "mutate", cls });
  }
  // The paths of the component's validating entries, whatever its tenant selector.
  for (const route of validatingRoutes(rules)) {
    routes.set(route.path, { kind: "validate", scope: route.isolation });
  }
  routes.set(WEBHOOK_HTTPS.validate, { kind: "validate", scope: { kind: "any" } });
  if (guard !== undefined) {
    routes.set(NAMESPACE_WEBHOOK_PATHS.guard, { kind: "namespace-guard", guard });
    if (guard.podSecurityLevel !== undefined) {
      routes.set(NAMESPACE_WEBHOOK_PATHS.podSecurity, { kind: "namespace-pod-security", guard });
    }
  }
  routes.set(WEBHOOK_HTTPS.healthz, { kind: "health" });
  routes.set(WEBHOOK_HTTPS.readyz, { kind: "health" });
  return routes;
}

/** One answer, ready to send: structured-cloneable, so the review thread can post it back. */
export interface ReviewAnswer {
  status: number;
  /** An AdmissionReview (JSON) when the status is 200, else a one-line reason (plain text). */
  body: string;
  /** What the server logs about it, if anything. */
  log?: { level: "info" | "debug" | "warn"; fields: Record<string, unknown>; msg: string };
}

const admissionAnswer = (out: AdmissionReviewResponse): ReviewAnswer => ({
  status: 200,
  body: JSON.stringify(out),
});

/**
 * Parses `body` and judges it on `route`. A body that is not an AdmissionReview this route takes
 * gets a 400 naming what is wrong; anything else thrown is a bug and gets a 500 (logged with its
 * stack), so no body can throw past this function.
 */
export function answerReview(
  route: ReviewRoute,
  body: Uint8Array,
  policy: Policy,
  path: string,
): ReviewAnswer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.length).toString("utf8"));
  } catch (err) {
    return { status: 400, body: `malformed JSON body: ${messageOf(err)}` };
  }
  try {
    if (route.kind === "namespace-guard" || route.kind === "namespace-pod-security") {
      const review = parseNamespaceReview(parsed);
      const out =
        route.kind === "namespace-guard"
          ? guardNamespaceLabels(review, route.guard)
          : labelPodSecurity(review, route.guard);
      if (out.response.allowed) return admissionAnswer(out);
      return {
        ...admissionAnswer(out),
        log: {
          level: "info",
          fields: { uid: review.request.uid, path, reason: out.response.status?.message },
          msg: "namespace change denied",
        },
      };
    }
    const review = parseAdmissionReview(parsed);
    const out =
      route.kind === "mutate"
        ? mutate(review, route.cls, policy)
        : validate(review, policy, route.scope);
    const r = review.request;
    if (!out.response.allowed) {
      return {
        ...admissionAnswer(out),
        log: {
          level: "info",
          fields: {
            uid: r.uid,
            namespace: r.namespace,
            path,
            reason: out.response.status?.message,
          },
          msg: "pod denied",
        },
      };
    }
    if (route.kind === "mutate" && out.response.patch) {
      return {
        ...admissionAnswer(out),
        log: {
          level: "debug",
          fields: { uid: r.uid, namespace: r.namespace, runtimeClass: route.cls },
          msg: "pod mutated",
        },
      };
    }
    return admissionAnswer(out);
  } catch (err) {
    if (err instanceof ReviewError) return { status: 400, body: err.message };
    return internalError(err, path);
  }
}

/** The answer to a bug (or a review thread that died on this body): a 500, its cause logged. */
export function internalError(err: unknown, path: string): ReviewAnswer {
  return {
    status: 500,
    body: `internal error: ${messageOf(err)}`,
    log: {
      level: "warn",
      fields: { path, reason: (err as Error)?.stack ?? String(err) },
      msg: "review failed",
    },
  };
}
