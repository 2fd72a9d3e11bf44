import { AgentError, ExitCode } from "../../agent/src/errors";
import { IsolationMode, parsePerPod, perPodEnvValue } from "../../agent/src/isolationMode";

describe("parsePerPod", () => {
  it.each([
    ["unset", undefined, IsolationMode.PerNamespace],
    ["empty", "", IsolationMode.PerNamespace],
    ["false", "false", IsolationMode.PerNamespace],
    ["FALSE", "FALSE", IsolationMode.PerNamespace],
    [" False\n", " False\n", IsolationMode.PerNamespace],
    ["true", "true", IsolationMode.PerPod],
    ["True", "True", IsolationMode.PerPod],
    ["\tTRUE ", "\tTRUE ", IsolationMode.PerPod],
  ])("%j -> %s", (_name, value, mode) => {
    expect(parsePerPod(value === undefined ? {} : { VNODE_PER_POD: value })).toBe(mode);
  });

  it.each(["1", "yes", "per-pod", "truee", "on", "0", "t"])(
    "rejects %j naming the variable, the value and the allowed values",
    (value) => {
      let err: unknown;
      try {
        parsePerPod({ VNODE_PER_POD: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AgentError);
      expect((err as AgentError).exitCode).toBe(ExitCode.BadInput);
      expect((err as Error).message).toBe(
        `VNODE_PER_POD must be "true" or "false" (case-insensitive) or unset; got "${value}".`,
      );
    },
  );

  it("reads only VNODE_PER_POD", () => {
    expect(parsePerPod({ PER_POD: "true", VNODE_PER_NAMESPACE: "true" })).toBe("per-namespace");
  });
});

describe("perPodEnvValue", () => {
  it("is always explicit", () => {
    expect(perPodEnvValue(IsolationMode.PerPod)).toBe("true");
    expect(perPodEnvValue(IsolationMode.PerNamespace)).toBe("false");
  });

  it.each(["true", "false"])("round-trips %s", (v) => {
    expect(perPodEnvValue(parsePerPod({ VNODE_PER_POD: v }))).toBe(v);
  });
});
