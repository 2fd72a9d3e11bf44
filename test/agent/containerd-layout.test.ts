/**
 * Which containerd layout a node has: detection per distribution, the explicit flags, and the
 * errors that name the flag. Existence is answered from a set of host paths.
 */
import { AgentError } from "../../agent/src/lib/errors";
import { detectLayout, layoutFor, ownDropIn } from "../../agent/src/containerd/config/layout";

const exists = (...paths: string[]) => {
  const set = new Set(paths);
  return (p: string) => set.has(p);
};

const K3S = "/var/lib/rancher/k3s/agent/etc/containerd";
const RKE2 = "/var/lib/rancher/rke2/agent/etc/containerd";
const MK8S = "/var/snap/microk8s/current/args";

describe("detectLayout", () => {
  it.each([
    [
      "containerd",
      ["/etc/containerd/config.toml"],
      {
        distribution: "containerd",
        config: "/etc/containerd/config.toml",
        dropInDir: "/etc/containerd/conf.d",
        socket: "/run/containerd/containerd.sock",
      },
    ],
    [
      "k3s",
      [`${K3S}/config.toml`],
      {
        distribution: "k3s",
        config: `${K3S}/config.toml`,
        template: `${K3S}/config.toml.tmpl`,
        templateV3: `${K3S}/config-v3.toml.tmpl`,
        socket: "/run/k3s/containerd/containerd.sock",
      },
    ],
    [
      "rke2",
      [`${RKE2}/config.toml`],
      {
        distribution: "rke2",
        config: `${RKE2}/config.toml`,
        template: `${RKE2}/config.toml.tmpl`,
        templateV3: `${RKE2}/config-v3.toml.tmpl`,
        socket: "/run/k3s/containerd/containerd.sock",
      },
    ],
    [
      "microk8s (template only, before its first start)",
      [`${MK8S}/containerd-template.toml`],
      {
        distribution: "microk8s",
        config: `${MK8S}/containerd.toml`,
        template: `${MK8S}/containerd-template.toml`,
        socket: "/var/snap/microk8s/common/run/containerd.sock",
      },
    ],
    [
      "k0s",
      ["/etc/k0s/containerd.toml"],
      {
        distribution: "k0s",
        config: "/etc/k0s/containerd.toml",
        dropInDir: "/etc/k0s/containerd.d",
        socket: "/run/k0s/containerd.sock",
      },
    ],
    [
      "k3s beside a plain containerd (Docker's, say): k3s",
      ["/etc/containerd/config.toml", `${K3S}/config.toml`],
      {
        distribution: "k3s",
        config: `${K3S}/config.toml`,
        template: `${K3S}/config.toml.tmpl`,
        templateV3: `${K3S}/config-v3.toml.tmpl`,
        socket: "/run/k3s/containerd/containerd.sock",
      },
    ],
  ])("%s", (_name, present, expected) => {
    expect(detectLayout(exists(...present))).toEqual(expected);
  });

  it("breaks a tie between distributions by the socket that exists", () => {
    const layout = detectLayout(
      exists(`${K3S}/config.toml`, "/etc/k0s/containerd.toml", "/run/k0s/containerd.sock"),
    );
    expect(layout.distribution).toBe("k0s");
  });

  it("refuses to guess between distributions with no live socket", () => {
    expect(() => detectLayout(exists(`${K3S}/config.toml`, "/etc/k0s/containerd.toml"))).toThrow(
      `found several containerd configs on the host: k3s (${K3S}/config.toml), k0s (/etc/k0s/containerd.toml); pass --containerd-config to choose one.`,
    );
  });

  it("names the flag and the paths it looked at when nothing is found", () => {
    let err: unknown;
    try {
      detectLayout(exists());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).exitCode).toBe(2);
    expect((err as AgentError).message).toBe(
      "found no containerd config on the host (looked for /etc/containerd/config.toml, " +
        `${K3S}/config.toml, ${K3S}/config.toml.tmpl, ${K3S}/config-v3.toml.tmpl, ` +
        `${RKE2}/config.toml, ${RKE2}/config.toml.tmpl, ${RKE2}/config-v3.toml.tmpl, ` +
        `${MK8S}/containerd.toml, ${MK8S}/containerd-template.toml, /etc/k0s/containerd.toml); ` +
        "pass --containerd-config with the path of the config containerd loads.",
    );
  });

  it("an explicit config wins over detection and keeps the distribution it belongs to", () => {
    const present = exists("/etc/containerd/config.toml", `${K3S}/config.toml`);
    expect(detectLayout(present, { config: "/etc/containerd/config.toml" })).toEqual(
      layoutFor("containerd"),
    );
    expect(detectLayout(present, { config: `${K3S}/config.toml` })).toEqual(layoutFor("k3s"));
    expect(
      detectLayout(exists(`${MK8S}/containerd.toml`), {
        config: `${MK8S}/containerd-template.toml`,
      }),
    ).toEqual(layoutFor("microk8s"));
  });

  it("an explicit config elsewhere is plain containerd with its drop-in dir beside it", () => {
    expect(
      detectLayout(exists("/opt/ctd/config.toml"), {
        config: "/opt/ctd/config.toml",
        socket: "/opt/ctd/ctd.sock",
      }),
    ).toEqual({
      distribution: "containerd",
      config: "/opt/ctd/config.toml",
      dropInDir: "/opt/ctd/conf.d",
      socket: "/opt/ctd/ctd.sock",
    });
  });

  it("a distribution with a custom data dir takes its files beside the config", () => {
    const config = "/data/k3s/agent/etc/containerd/config.toml";
    expect(detectLayout(exists(config), { distribution: "k3s", config })).toEqual({
      distribution: "k3s",
      config,
      template: `${config}.tmpl`,
      templateV3: "/data/k3s/agent/etc/containerd/config-v3.toml.tmpl",
      socket: "/run/k3s/containerd/containerd.sock",
    });
  });

  it("an explicit distribution limits detection to it", () => {
    const present = exists("/etc/containerd/config.toml", `${K3S}/config.toml`);
    expect(detectLayout(present, { distribution: "containerd" }).distribution).toBe("containerd");
    expect(() => detectLayout(present, { distribution: "k0s" })).toThrow(
      "found no containerd config on the host (looked for /etc/k0s/containerd.toml); pass --containerd-config with the path of the config containerd loads.",
    );
  });

  it.each([
    [
      { distribution: "docker" },
      '--containerd-distribution must be one of auto, containerd, k3s, rke2, microk8s, k0s; got "docker".',
    ],
    [
      { config: "etc/containerd/config.toml" },
      '--containerd-config must be an absolute host path; got "etc/containerd/config.toml".',
    ],
    [
      { socket: "containerd.sock" },
      '--containerd-socket must be an absolute host path; got "containerd.sock".',
    ],
    [
      { config: "/nope/config.toml" },
      "--containerd-config /nope/config.toml does not exist on the host; pass the path of the config containerd loads.",
    ],
  ])("rejects %j", (opts, message) => {
    expect(() => detectLayout(exists("/etc/containerd/config.toml"), opts)).toThrow(message);
  });
});

describe("ownDropIn", () => {
  it("is in the layout's drop-in dir, else conf.d beside the config", () => {
    expect(ownDropIn(layoutFor("containerd"))).toBe("/etc/containerd/conf.d/vnode-agent.toml");
    expect(ownDropIn(layoutFor("k0s"))).toBe("/etc/k0s/containerd.d/vnode-agent.toml");
    expect(ownDropIn(layoutFor("k3s"))).toBe(`${K3S}/conf.d/vnode-agent.toml`);
  });
});
