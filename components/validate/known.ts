/**
 * Arguments that may come from another resource (`Input<T>`): checked now when their value is
 * known, and when it resolves otherwise. Plain values keep today's contract (a bad one throws
 * before anything is registered); an Output cannot be read before `super()`, so its check runs in
 * `apply` and the checked Output is what the plan carries into the Kubernetes objects: a bad
 * resolved value rejects that Output, which fails the registration of every object built from it
 * with the same message. During a preview Pulumi runs no `apply` on an unknown value
 * (output.ts `applyHelperAsync`), so an unknown passes and is checked on `pulumi up`.
 */
import * as pulumi from "@pulumi/pulumi";

/** Whether `value` holds no Output or Promise at any depth, so it can be read now. */
export function isKnownValue(value: unknown): boolean {
  if (pulumi.Output.isInstance(value) || value instanceof Promise) {
    return false;
  }
  if (Array.isArray(value)) {
    return value.every(isKnownValue);
  }
  if (typeof value === "object" && value !== null) {
    return Object.values(value).every(isKnownValue);
  }
  return true;
}

/**
 * `value` after `check`: a known value is checked now and returned as it is; any other (an
 * Output, a Promise, or a map or list with one inside) is returned as an Output that runs `check`
 * on the resolved value first, also added to `pending`. The Output stands in for `value` (an
 * `Input` of the same shape).
 */
export function whenKnown<T>(
  value: T,
  check: (resolved: unknown) => void,
  pending: pulumi.Output<unknown>[],
): T {
  if (isKnownValue(value)) {
    check(value);
    return value;
  }
  const checked = pulumi.output(value).apply((resolved) => {
    check(resolved);
    return resolved;
  });
  pending.push(checked);
  return checked as unknown as T;
}

/**
 * What every child of the component waits for (`dependsOn`) when some args are only checked on
 * resolution: nothing (no Resource) once every check passed, a rejection with the first failure
 * otherwise, so a bad resolved value registers no child at all, like a bad plain one. During a
 * preview an unknown value leaves it unknown, which `dependsOn` reads as no dependency
 * (runtime/dependsOn.ts `gatherExplicitDependencies`).
 */
export function checksPassed(
  pending: pulumi.Output<unknown>[],
): pulumi.Output<pulumi.Resource[]> | undefined {
  return pending.length === 0 ? undefined : pulumi.all(pending).apply(() => []);
}

/**
 * `derive(value)`, now when `value` is known, or as an Output once it resolves: how the plan
 * merges and derives from inputs that may come from other resources, so a plain program still
 * gets plain objects (and the builders' unit tests exact plain values).
 */
export function deriveInput<T, U>(
  value: pulumi.Input<T>,
  derive: (resolved: T) => U,
): U | pulumi.Output<pulumi.Unwrap<U>> {
  if (isKnownValue(value)) {
    return derive(value as T);
  }
  return pulumi.output(value).apply((resolved) => pulumi.output(derive(resolved as T)));
}

/** A map of Kubernetes labels or annotations whose map or values may come from other resources. */
export type InputMap = pulumi.Input<{ [key: string]: pulumi.Input<string> }>;

/**
 * `maps` merged left to right (later keys win, so the component's own labels go last), or
 * `undefined` when the result is empty: plain when every map is known, an Output otherwise.
 */
export function mergeMaps(
  ...maps: (InputMap | undefined)[]
): { [key: string]: string } | pulumi.Output<{ [key: string]: string } | undefined> | undefined {
  const merge = (resolved: readonly ({ [key: string]: string } | undefined)[]) => {
    const merged: { [key: string]: string } = Object.assign({}, ...resolved);
    return Object.keys(merged).length > 0 ? merged : undefined;
  };
  if (maps.every(isKnownValue)) {
    return merge(maps as ({ [key: string]: string } | undefined)[]);
  }
  return pulumi.all(maps).apply((resolved) => merge(resolved as { [key: string]: string }[]));
}
