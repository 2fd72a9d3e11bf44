/**
 * The component's enum-like inputs document each value for other languages' SDKs, so they are
 * written out in components/args.ts; these tests keep them equal to the contract's lists, which
 * the agent's CLI accepts, so a value added on one side only fails here instead of on a node.
 */
import { CONTAINERD_DISTRIBUTIONS, ISOLATION_MODES, RESTART_STRATEGIES } from "vnode-contract";
import { ContainerdDistribution, IsolationMode, RestartStrategy } from "../../components/index";

test("containerd distributions are exactly the contract's", () => {
  expect(Object.values(ContainerdDistribution).sort()).toEqual(
    Object.keys(CONTAINERD_DISTRIBUTIONS).sort(),
  );
});

test("restart strategies are the contract's, less `command` (an operator's and tests' escape hatch)", () => {
  expect(Object.values(RestartStrategy).sort()).toEqual(
    RESTART_STRATEGIES.filter((s) => s !== "command").sort(),
  );
});

test("isolation modes are the contract's own object", () => {
  expect(Object.values(IsolationMode)).toEqual(ISOLATION_MODES);
});
