/**
 * `pools`: unique names, one mode each, and node selections that provably never overlap, so that
 * no node runs two agents; and the names derived from them (DaemonSets, RuntimeClasses).
 */
import { DNS1123_LABEL_RULE, isDnsLabel } from "vnode-contract";
import { IsolationMode } from "../args";
import { DEFAULTS, modesInUse } from "../defaults";
import { daemonSetName, runtimeClassNames } from "../names";
import { fail, mustBe, show } from "./errors";
import { checkLabels } from "./labels";
import { checkTolerations } from "./podSpec";
import { checkEnum, checkObject } from "./values";

export function checkPools(name: string, a: Record<string, unknown>): void {
  const topMode = (a.isolationMode as IsolationMode | undefined) ?? DEFAULTS.isolationMode;
  const pools = a.pools;
  const topSelector = (a.nodeSelector as Record<string, string> | undefined) ?? {};
  if (pools === undefined) {
    checkDerivedName(name, undefined, "name");
    checkClassNames(a, [topMode]);
    return;
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
  list.forEach((pool, i) => {
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
    checkLabels(`${at}.nodeSelector`, p.nodeSelector);
    checkTolerations(`${at}.tolerations`, p.tolerations);
    for (const [key, value] of Object.entries((p.nodeSelector as Record<string, string>) ?? {})) {
      if (key in topSelector && topSelector[key] !== value) {
        fail(
          `${at}.nodeSelector[${show(key)}] is ${show(value)} but nodeSelector[${show(key)}] is ${show(topSelector[key])}; the pool's nodes would never match both.`,
        );
      }
    }
    if (list.length > 1 && Object.keys((p.nodeSelector as object | undefined) ?? {}).length === 0) {
      fail(
        `${at}.nodeSelector must not be empty when there is more than one pool: each pool must select its own nodes.`,
      );
    }
  });
  // Two agents on one node would fight over containerd and over the node-wide mode, so any two
  // pools must be provably disjoint: a common key with different values.
  const selectors = list.map((pool) => ({
    ...topSelector,
    ...(((pool as Record<string, unknown>).nodeSelector as Record<string, string>) ?? {}),
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
  const modes = modesInUse(
    list.map((pool) => ({
      isolationMode:
        ((pool as Record<string, unknown>).isolationMode as IsolationMode | undefined) ?? topMode,
    })),
  );
  checkClassNames(a, modes);
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
