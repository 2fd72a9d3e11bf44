/**
 * `manager`: vNode's manager container. Its socket directory becomes a host mount shared by the
 * manager (read-write) and the agent (read-only), so the path is held to what such a mount may be.
 */
import { posix } from "node:path";
import { ContainerdDistribution, RestartStrategy } from "../args";
import { hostMounts } from "../daemonSet";
import { fail, mustBe, show } from "./errors";
import { checkQuantities } from "./podSpec";
import { checkBoolean, checkObject } from "./values";

export function checkManager(
  value: unknown,
  distribution: ContainerdDistribution,
  restart: RestartStrategy,
): void {
  if (value === undefined) return;
  const manager = checkObject("manager", value, ["socketPath", "args", "resources", "hostPID"]);
  checkSocketPath(manager.socketPath, distribution, restart);
  if (manager.args !== undefined) {
    if (!Array.isArray(manager.args) || manager.args.some((a) => typeof a !== "string")) {
      mustBe("manager.args", "a list of strings", manager.args);
    }
  }
  if (manager.resources !== undefined) {
    const resources = checkObject("manager.resources", manager.resources, ["requests", "limits"]);
    checkQuantities("manager.resources.requests", resources.requests);
    checkQuantities("manager.resources.limits", resources.limits);
  }
  checkBoolean("manager.hostPID", manager.hostPID);
}

function checkSocketPath(
  value: unknown,
  distribution: ContainerdDistribution,
  restart: RestartStrategy,
): void {
  if (value === undefined) return;
  const rule = `an absolute, normalized host path in a directory of its own, such as "/run/vnode/manager.sock"`;
  // Printable, no spaces: it is a command-line value and a hostPath.
  if (typeof value !== "string" || !/^\/[\x21-\x7e]+$/.test(value)) {
    mustBe("manager.socketPath", rule, value);
  }
  if (posix.normalize(value) !== value || value.endsWith("/")) {
    mustBe("manager.socketPath", rule, value);
  }
  const dir = posix.dirname(value);
  if (dir.split("/").length < 3) {
    fail(
      `manager.socketPath ${show(value)} lies directly in ${show(dir)}, which would be mounted into the manager container and the agent; use a directory of its own such as "/run/vnode/manager.sock".`,
    );
  }
  const within = (a: string, b: string) => a === b || a.startsWith(`${b}/`);
  const clash = hostMounts(distribution, restart).find(
    (m) => within(dir, m.hostPath) || within(m.hostPath, dir),
  );
  if (clash !== undefined) {
    fail(
      `manager.socketPath ${show(value)} is in ${show(dir)}, which overlaps the agent's host mount ${show(clash.hostPath)}; use a directory of its own such as "/run/vnode/manager.sock".`,
    );
  }
}
