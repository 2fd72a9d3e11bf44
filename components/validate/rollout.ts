/** `updateStrategy` and `rollout`: how fast the agents are replaced and what `pulumi up` waits for. */
import { RolloutWait } from "../args";
import { fail } from "./errors";
import { checkEnum, checkInteger, checkObject } from "./values";

export function checkUpdateStrategy(value: unknown): void {
  if (value === undefined) {
    return;
  }
  const update = checkObject("updateStrategy", value, ["maxUnavailable", "maxUnavailablePercent"]);
  checkInteger("updateStrategy.maxUnavailable", update.maxUnavailable, 1);
  checkInteger("updateStrategy.maxUnavailablePercent", update.maxUnavailablePercent, 1, 100);
  if (update.maxUnavailable !== undefined && update.maxUnavailablePercent !== undefined) {
    fail(
      "updateStrategy.maxUnavailable and updateStrategy.maxUnavailablePercent are exclusive: set a count or a percentage; got both.",
    );
  }
}

export function checkRollout(value: unknown): void {
  if (value === undefined) {
    return;
  }
  const rollout = checkObject("rollout", value, ["wait", "timeoutSeconds"]);
  checkEnum("rollout.wait", rollout.wait, Object.values(RolloutWait));
  checkInteger("rollout.timeoutSeconds", rollout.timeoutSeconds, 1);
  if (rollout.timeoutSeconds !== undefined && rollout.wait !== RolloutWait.Ready) {
    fail(
      `rollout.timeoutSeconds only applies with rollout.wait ${RolloutWait.Ready}; rollout.wait is ${(rollout.wait as string | undefined) ?? RolloutWait.None}.`,
    );
  }
}
