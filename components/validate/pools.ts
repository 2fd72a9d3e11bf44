/**
 * `pools`: unique names, one mode each, and node selections that provably never overlap, so that
 * no node runs two agents; and the names derived from them (DaemonSets, RuntimeClasses).
 */
import type * as pulumi from "@pulumi/pulumi";
import { DNS1123_LABEL_RULE, isDnsLabel } from "vnode-contract";
import { IsolationMode } from "../args";
import { DEFAULTS, modesInUse } from "../defaults";
import { daemonSetName, runtimeClassNames } from "../names";
import { fail, mustBe, show } from "./errors";
import { whenKnown } from "./known";
import { checkLabels } from "./labels";
import { checkTolerations } from "./podSpec";
import { checkEnum, checkObject } from "./values";

/**
 * Checks `pools` and the node selections, and returns `nodeSelector` and `pools` to resolve: when a
 * selector holds an Output, every selector is checked together once all resolve (the checks
 * compare them), and each is replaced by its part of that checked Output.
 */
export function checkPools(
  name: string,
  a: Record<string, unknown>,
  pending: pulumi.Output<unknown>[],
): { nodeSelector?: unknown; pools?: unknown } {
  const topMode = (a.isolationMode as IsolationMode | undefined) ?? DEFAULTS.isolationMode;
  const pools = a.pools;
  if (pools === undefined) {
    checkDerivedName(name, undefined, "name");
    checkClassNames(a, [topMode]);
    return {
      nodeSelector: whenKnown(a.nodeSelector, (s) => checkLabels("nodeSelector", s), pending),
    };
  }
  if (!Array.isArray(pools) || pools.length === 0) {
    mustBe(
      "pools",
      "a non-empty list of { name, isolationMode, nodeSelector, tolerations }, or unset for one pool of all nodes",
      pools,
    );
  }
  const list = pools as unknown[];
  const seen = new Map<string, number>();
  const checkedPools = list.map((pool, i) => {
    const at = `pools[${i}]`;
    const p = checkObject(at, pool, ["name", "isolationMode", "nodeSelector", "tolerations"]);
    if (!isDnsLabel(p.name)) {
      fail(`${at}.name must be ${DNS1123_LABEL_RULE}; got ${show(p.name)}.`);
    }
    const first = seen.get(p.name as string);
    if (first !== undefined) {
      fail(
        `${at}.name ${show(p.name)} is already used by pools[${first}]; pool names must be unique.`,
      );
    }
    seen.set(p.name as string, i);
    checkDerivedName(name, p.name as string, `${at}.name`);
    checkEnum(`${at}.isolationMode`, p.isolationMode, Object.values(IsolationMode));
    const tolerations = whenKnown(
      p.tolerations,
      (t) => checkTolerations(`${at}.tolerations`, t),
      pending,
    );
    return { ...p, ...(p.tolerations !== undefined ? { tolerations } : {}) } as Record<
      string,
      unknown
    >;
  });
  const modes = modesInUse(
    list.map((pool) => ({
      isolationMode:
        ((pool as Record<string, unknown>).isolationMode as IsolationMode | undefined) ?? topMode,
    })),
  );
  checkClassNames(a, modes);

  const selectors = [a.nodeSelector, ...checkedPools.map((pool) => pool.nodeSelector)];
  const checkedSelectors = whenKnown(
    selectors,
    (resolved) => checkSelectors((resolved as unknown[])[0], (resolved as unknown[]).slice(1)),
    pending,
  );
  if (checkedSelectors === selectors) {
    return { nodeSelector: a.nodeSelector, pools: checkedPools };
  }
  const part = (i: number): pulumi.Output<unknown> =>
    (checkedSelectors as unknown as pulumi.Output<unknown[]>).apply((resolved) => resolved[i]);
  return {
    ...(a.nodeSelector !== undefined ? { nodeSelector: part(0) } : {}),
    pools: checkedPools.map((pool, i) =>
      pool.nodeSelector !== undefined ? { ...pool, nodeSelector: part(i + 1) } : pool,
    ),
  };
}

/** The component's and the pools' node selectors, known: labels, and pools provably disjoint. */
function checkSelectors(top: unknown, pools: unknown[]): void {
  checkLabels("nodeSelector", top);
  const topSelector = (top as Record<string, string> | undefined) ?? {};
  pools.forEach((selector, i) => {
    const at = `pools[${i}]`;
    checkLabels(`${at}.nodeSelector`, selector);
    for (const [key, value] of Object.entries((selector as Record<string, string>) ?? {})) {
      if (key in topSelector && topSelector[key] !== value) {
        fail(
          `${at}.nodeSelector[${show(key)}] is ${show(value)} but nodeSelector[${show(key)}] is ${show(topSelector[key])}; the pool's nodes would never match both.`,
        );
      }
    }
    if (pools.length > 1 && Object.keys((selector as object | undefined) ?? {}).length === 0) {
      fail(
        `${at}.nodeSelector must not be empty when there is more than one pool: each pool must select its own nodes.`,
      );
    }
  });
  // Two agents on one node would fight over containerd and over the node-wide mode, so any two
  // pools must be provably disjoint: a common key with different values.
  const selectors = pools.map((selector) => ({
    ...topSelector,
    ...((selector as Record<string, string>) ?? {}),
  }));
  for (let j = 1; j < selectors.length; j++) {
    for (let i = 0; i < j; i++) {
      const disjoint = Object.keys(selectors[j]).some(
        (key) => key in selectors[i] && selectors[i][key] !== selectors[j][key],
      );
      if (!disjoint) {
        fail(
          `pools[${j}].nodeSelector ${show(selectors[j])} can select the same nodes as pools[${i}].nodeSelector ${show(selectors[i])}; give both pools a common label key with different values (e.g. pool=a and pool=b), so that no node runs two agents.`,
        );
      }
    }
  }
}

export function checkDerivedName(name: string, pool: string | undefined, argument: string): void {
  const derived = daemonSetName(name, pool);
  if (derived.length > 63) {
    fail(
      `${argument} is too long: the DaemonSet name ${show(derived)} has ${derived.length} characters, at most 63 are allowed.`,
    );
  }
}

export function checkClassNames(a: Record<string, unknown>, modes: IsolationMode[]): void {
  const base = (a.runtimeClassName as string | undefined) ?? DEFAULTS.runtimeClassName;
  const names = runtimeClassNames(base, a.perPodRuntimeClassName as string | undefined, modes);
  const perNamespace = names[IsolationMode.PerNamespace];
  if (perNamespace !== undefined && perNamespace === names[IsolationMode.PerPod]) {
    fail(
      `perPodRuntimeClassName must differ from runtimeClassName ${show(perNamespace)} when pools use both isolation modes, because each RuntimeClass pins pods to nodes of one mode.`,
    );
  }
}
