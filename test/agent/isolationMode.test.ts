import { AgentError, ExitCode } from "../../agent/src/lib/errors";
import { encodePerPod, IsolationMode } from "vnode-contract";
import { modeFromEnv } from "../../agent/src/lib/isolationMode";

describe("modeFromEnv", () => {
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
    expect(modeFromEnv(value === undefined ? {} : { VNODE_PER_POD: value })).toBe(mode);
  });

  it.each(["1", "yes", "per-pod", "truee", "on", "0", "t"])(
    "rejects %j naming the variable, the value and the allowed values",
    (value) => {
      let err: unknown;
      try {
        modeFromEnv({ VNODE_PER_POD: value });
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
    expect(modeFromEnv({ PER_POD: "true", VNODE_PER_NAMESPACE: "true" })).toBe("per-namespace");
  });
});

describe("encodePerPod", () => {
  it("is always explicit", () => {
    expect(encodePerPod(IsolationMode.PerPod)).toBe("true");
    expect(encodePerPod(IsolationMode.PerNamespace)).toBe("false");
  });

  it.each(["true", "false"])("round-trips %s", (v) => {
    expect(encodePerPod(modeFromEnv({ VNODE_PER_POD: v }))).toBe(v);
  });
});
