/**
 * The pure part of the manager restart report: kubelet's container status (the shape
 * `@kubernetes/client-node` deserializes, `finishedAt` a Date) into a state, the restarts since
 * the last look, and the node Event's message.
 */
import type { V1Pod } from "../../agent/src/kube/client";
import {
  managerRestartMessage,
  managerStateOf,
  restartsSince,
} from "../../agent/src/daemon/managerRestarts";

const pod = (statuses: object[]): V1Pod => ({ status: { containerStatuses: statuses } }) as V1Pod;

describe("managerStateOf", () => {
  it("reads the named container's restart count and last termination", () => {
    const p = pod([
      { name: "agent", restartCount: 9, ready: true, image: "a", imageID: "" },
      {
        name: "vnode-manager",
        restartCount: 2,
        ready: true,
        image: "a",
        imageID: "",
        lastState: {
          terminated: {
            exitCode: 137,
            reason: "OOMKilled",
            finishedAt: new Date("2026-11-29T23:00:00Z"),
          },
        },
      },
    ]);
    expect(managerStateOf(p, "vnode-manager")).toEqual({
      restartCount: 2,
      lastTermination: {
        exitCode: 137,
        reason: "OOMKilled",
        finishedAt: "2026-11-29T23:00:00.000Z",
      },
    });
  });

  it("is undefined without the pod, its statuses or the container", () => {
    expect(managerStateOf(null, "vnode-manager")).toBeUndefined();
    expect(managerStateOf({} as V1Pod, "vnode-manager")).toBeUndefined();
    expect(managerStateOf(pod([{ name: "agent", restartCount: 1 }]), "vnode-manager")).toBe(
      undefined,
    );
  });
});

describe("restartsSince", () => {
  it.each([
    [undefined, 0, 0],
    [undefined, 5, 0], // first look: the baseline
    [0, 0, 0],
    [0, 1, 1],
    [1, 4, 3],
    [4, 0, 0], // lower: another pod, a new baseline
  ])("previous %p, now %p: %p", (previous, now, expected) => {
    expect(restartsSince(previous, now)).toBe(expected);
  });
});

describe("managerRestartMessage", () => {
  it("names the node, the container, the count and how the last run ended", () => {
    expect(
      managerRestartMessage(
        "n1",
        "vnode-manager",
        {
          restartCount: 3,
          lastTermination: { exitCode: 2, reason: "Error", finishedAt: "2026-11-29T23:00:00.000Z" },
        },
        2,
      ),
    ).toBe(
      "vNode manager restarted 2 times on node n1 (container vnode-manager, restart count 3; its last run ended with exit code 2, Error, at 2026-11-29T23:00:00.000Z): every vNode and workload on node n1 restarted.",
    );
    expect(managerRestartMessage("n1", "vnode-manager", { restartCount: 1 }, 1)).toBe(
      "vNode manager restarted on node n1 (container vnode-manager, restart count 1): every vNode and workload on node n1 restarted.",
    );
  });
});
