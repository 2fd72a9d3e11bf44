/**
 * Kubelet's side of running the agent DaemonSet's pod, for the node e2e: translates the pod
 * template EXACTLY as rendered into `podman pod create` + one `podman run --pod` per container,
 * refuses any field it does not understand (so the harness cannot silently drift from the
 * component), runs the pod, probes it and stops it as kubelet does.
 *
 * What kubelet does that the translation reproduces (Kubernetes docs "Pods", "Volumes",
 * "Configure a Security Context", "Accessing the Kubernetes API from a Pod", "Pod Lifecycle";
 * kubelet pkg/kubelet/kubelet_pods.go, pkg/kubelet/kuberuntime, pkg/kubelet/prober):
 * - one sandbox per pod whose network, IPC and UTS namespaces every container joins; each
 *   container has its own PID namespace (no `shareProcessNamespace`), its own security context,
 *   mounts and env; containers start in template order;
 * - `command` replaces the image's ENTRYPOINT, `args` its CMD;
 * - env: literal values; the downward API (`spec.nodeName`, `metadata.namespace`,
 *   `metadata.name`); plus, in
 *   EVERY container, `KUBERNETES_SERVICE_HOST`/`_PORT` of the API server and the service account
 *   token, CA and namespace at /var/run/secrets/kubernetes.io/serviceaccount (read-only;
 *   `automountServiceAccountToken` defaults to true and is per pod, not per container; a
 *   container that already mounts that path keeps its own mount);
 * - the projected API-access volume (bound token, `kube-root-ca.crt`'s `ca.crt`, the namespace)
 *   that the ServiceAccount admission plugin injects for automount, when a pod that opts out of
 *   automount declares it itself: the same token, CA and namespace files;
 * - hostPath volumes: `DirectoryOrCreate` creates a missing dir (0755, root), `Directory` fails
 *   the pod when it is missing; `readOnly` mounts are read-only; propagation None (private);
 * - emptyDir: a fresh writable dir per pod;
 * - securityContext: runAsUser/Group, `privileged` (all capabilities, every device, no seccomp
 *   filter unless one is set), capabilities drop/add, no privilege escalation (no_new_privs),
 *   read-only root filesystem; seccomp: the container's profile, else the pod's (`RuntimeDefault`:
 *   the runtime's default, podman's default profile here; unset: `Unconfined`, kubelet's default
 *   without `--seccomp-default`);
 * - `hostPID` shares the node's PID namespace;
 * - probes: each container's readiness and liveness probe every `periodSeconds` after
 *   `initialDelaySeconds`, each attempt with `timeoutSeconds`; ready after one success, a
 *   liveness probe failing `failureThreshold` times in a row gets the container killed;
 * - stop: SIGTERM to every container at once, SIGKILL after `terminationGracePeriodSeconds`.
 *
 * Where this machine differs from a node, on purpose and named: the node's host root is a private
 * dir (`hostRoot`), so hostPath `/x` is `<hostRoot>/x`; the pod network is the host network (the
 * agent needs only egress to the API server and ingress on its probe port, and podman has no pod
 * network here); the sandbox's pause container is the tests' busybox pause image. Fields that only
 * steer the scheduler or the API server (nodeSelector, tolerations, affinity, priorityClassName,
 * resources requests, imagePullPolicy: the image is local) are accepted and have no effect on one
 * node; a memory limit becomes podman's.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { PAUSE_IMAGE, pauseImageArchive } from "./pause";
import { type Exec, type Store, ULIMITS, check, exec, podmanArgs } from "./images";

/** A field of the pod template the translation does not know: the harness must learn it first. */
export class UnsupportedPodField extends Error {}

type Obj = Record<string, unknown>;

/** What the node and the cluster provide that the pod template refers to. */
export interface NodeContext {
  /** The private dir standing in for the node's `/`. */
  hostRoot: string;
  nodeName: string;
  /** The pod's namespace (the DaemonSet's). */
  namespace: string;
  /** Directory with `token`, `ca.crt`, `namespace`: the service account volume. */
  serviceAccountDir: string;
  apiHost: string;
  apiPort: number;
  /** Per-pod scratch dir (emptyDir volumes go below it). */
  podDir: string;
  /** The pod's name; its containers are `<name>-<container>`. */
  name: string;
  /**
   * Appended to a container's args, by container name: ONLY for what this machine is not (a
   * vNode-capable node), named by the caller and asserted in its test. Never to paper over the
   * component.
   */
  extraArgs?: Record<string, string[]>;
  /** Replaces every container's image: a rollout to a newer image is a new template's image. */
  image?: string;
}

export interface HttpProbe {
  path: string;
  port: number;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
  initialDelaySeconds: number;
}

export interface TranslatedContainer {
  /** The container's name in the template. */
  name: string;
  /** Its podman container name. */
  podmanName: string;
  /** `podman run` arguments (after the global store flags). */
  runArgs: string[];
  readinessProbe: HttpProbe | undefined;
  livenessProbe: HttpProbe | undefined;
}

/** The pod as podman runs it, and what kubelet must do around it. */
export interface TranslatedPod {
  name: string;
  /** `podman pod create` arguments: the sandbox. */
  createArgs: string[];
  containers: TranslatedContainer[];
  terminationGracePeriodSeconds: number;
  /** hostPath dirs created because the type was DirectoryOrCreate (host paths). */
  created: string[];
}

const POD_FIELDS = new Set([
  "serviceAccountName",
  "automountServiceAccountToken",
  "priorityClassName",
  "terminationGracePeriodSeconds",
  "nodeSelector",
  "tolerations",
  "affinity",
  "securityContext",
  "containers",
  "volumes",
  "hostPID",
]);
const CONTAINER_FIELDS = new Set([
  "name",
  "image",
  "imagePullPolicy",
  "command",
  "args",
  "env",
  "ports",
  "livenessProbe",
  "readinessProbe",
  "resources",
  "terminationMessagePolicy",
  "securityContext",
  "volumeMounts",
]);
const CONTAINER_SECURITY_FIELDS = new Set([
  "runAsUser",
  "runAsGroup",
  "runAsNonRoot",
  "privileged",
  "allowPrivilegeEscalation",
  "capabilities",
  "readOnlyRootFilesystem",
  "seccompProfile",
]);

const SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

function unknownKeys(at: string, obj: Obj, known: Set<string>): void {
  const unknown = Object.keys(obj).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new UnsupportedPodField(
      `${at} has ${unknown.map((k) => `${at}.${k}`).join(", ")}, which the kubelet translation does not understand; teach test/support/kubelet.ts first.`,
    );
  }
}

function probe(at: string, p: unknown, ports: Map<string, number>): HttpProbe | undefined {
  if (p === undefined) return undefined;
  const o = p as Obj;
  unknownKeys(
    at,
    o,
    new Set([
      "httpGet",
      "initialDelaySeconds",
      "periodSeconds",
      "timeoutSeconds",
      "failureThreshold",
    ]),
  );
  const get = o.httpGet as Obj | undefined;
  if (!get) throw new UnsupportedPodField(`${at} is not an httpGet probe.`);
  unknownKeys(`${at}.httpGet`, get, new Set(["path", "port"]));
  const port = typeof get.port === "number" ? get.port : ports.get(String(get.port));
  if (port === undefined)
    throw new UnsupportedPodField(
      `${at}.httpGet.port ${String(get.port)} names no container port.`,
    );
  // Kubernetes defaults (core/v1 Probe).
  return {
    path: String(get.path),
    port,
    periodSeconds: (o.periodSeconds as number | undefined) ?? 10,
    timeoutSeconds: (o.timeoutSeconds as number | undefined) ?? 1,
    failureThreshold: (o.failureThreshold as number | undefined) ?? 3,
    initialDelaySeconds: (o.initialDelaySeconds as number | undefined) ?? 0,
  };
}

/** The seccomp flags for a profile type (the container's, else the pod's). */
function seccompArgs(at: string, type: unknown): string[] {
  if (type === "RuntimeDefault") return []; // podman's default profile
  if (type === undefined || type === "Unconfined") return ["--security-opt", "seccomp=unconfined"];
  throw new UnsupportedPodField(`${at}.seccompProfile.type ${String(type)} is not translated.`);
}

/**
 * Accepts a projected volume only when it is the API-access volume kubelet fills with the
 * service account's token, the cluster CA and the namespace (the files `serviceAccountDir` holds).
 */
function apiAccessVolume(at: string, projected: Obj): void {
  unknownKeys(at, projected, new Set(["sources", "defaultMode"]));
  // The token's lifetime only steers kubelet's rotation, which a test run does not reach.
  const sources = ((projected.sources as Obj[] | undefined) ?? []).map((s) => {
    if (s.serviceAccountToken === undefined) return s;
    const token = { ...(s.serviceAccountToken as Obj) };
    delete token.expirationSeconds;
    return { serviceAccountToken: token };
  });
  const apiAccess = [
    { serviceAccountToken: { path: "token" } },
    { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
    {
      downwardAPI: {
        items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }],
      },
    },
  ];
  // Compared as plain JSON: the rendered manifest's objects need not be plain prototypes.
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(sources)), apiAccess)) {
    throw new UnsupportedPodField(
      `${at} is not the API-access volume (token, kube-root-ca.crt's ca.crt, the namespace); only that projection is translated.`,
    );
  }
}

/** The pod's volumes as host dirs; creates DirectoryOrCreate dirs and emptyDirs. */
function podVolumes(podSpec: Obj, node: NodeContext, created: string[]): Map<string, string> {
  const volumes = new Map<string, string>();
  for (const [i, v] of ((podSpec.volumes as Obj[] | undefined) ?? []).entries()) {
    unknownKeys(`spec.volumes[${i}]`, v, new Set(["name", "hostPath", "emptyDir", "projected"]));
    if (v.projected) {
      apiAccessVolume(`spec.volumes[${i}].projected`, v.projected as Obj);
      volumes.set(String(v.name), node.serviceAccountDir);
    } else if (v.hostPath) {
      const hp = v.hostPath as Obj;
      unknownKeys(`spec.volumes[${i}].hostPath`, hp, new Set(["path", "type"]));
      const onHost = path.join(node.hostRoot, String(hp.path));
      if (hp.type === "DirectoryOrCreate") {
        if (!fs.existsSync(onHost)) {
          fs.mkdirSync(onHost, { recursive: true, mode: 0o755 });
          created.push(String(hp.path));
        }
      } else if (hp.type === "Directory") {
        if (!fs.statSync(onHost, { throwIfNoEntry: false })?.isDirectory()) {
          throw new Error(
            `hostPath type check failed: ${String(hp.path)} is not a directory (kubelet fails the pod).`,
          );
        }
      } else {
        throw new UnsupportedPodField(
          `spec.volumes[${i}].hostPath.type ${String(hp.type)} is not translated.`,
        );
      }
      volumes.set(String(v.name), onHost);
    } else if (v.emptyDir) {
      unknownKeys(
        `spec.volumes[${i}].emptyDir`,
        v.emptyDir as Obj,
        new Set(["sizeLimit", "medium"]),
      );
      const dir = path.join(node.podDir, "empty-dir", String(v.name));
      fs.mkdirSync(dir, { recursive: true });
      volumes.set(String(v.name), dir);
    } else {
      throw new UnsupportedPodField(
        `spec.volumes[${i}] is neither hostPath, emptyDir nor projected.`,
      );
    }
  }
  return volumes;
}

function translateContainer(
  at: string,
  c: Obj,
  podSpec: Obj,
  volumes: Map<string, string>,
  node: NodeContext,
): TranslatedContainer {
  unknownKeys(at, c, CONTAINER_FIELDS);
  const name = String(c.name);
  const podmanName = `${node.name}-${name}`;
  const args = ["run", "--detach", "--name", podmanName, "--pod", node.name, ...ULIMITS];

  const podSec = (podSpec.securityContext ?? {}) as Obj;
  const sec = (c.securityContext ?? {}) as Obj;
  unknownKeys(`${at}.securityContext`, sec, CONTAINER_SECURITY_FIELDS);
  const containerSeccomp = sec.seccompProfile as Obj | undefined;
  if (containerSeccomp !== undefined)
    unknownKeys(`${at}.securityContext.seccompProfile`, containerSeccomp, new Set(["type"]));
  args.push(
    ...(containerSeccomp !== undefined
      ? seccompArgs(`${at}.securityContext`, containerSeccomp.type)
      : seccompArgs("spec.securityContext", (podSec.seccompProfile as Obj | undefined)?.type)),
  );
  if (podSpec.hostPID === true) args.push("--pid", "host");
  if (sec.privileged === true) args.push("--privileged");
  if (sec.runAsNonRoot === true && (sec.runAsUser ?? 0) === 0) {
    throw new Error(`${at}: runAsNonRoot with uid 0: kubelet refuses to start the container.`);
  }
  args.push(
    "--user",
    `${(sec.runAsUser as number | undefined) ?? 0}:${(sec.runAsGroup as number | undefined) ?? 0}`,
  );
  if (sec.allowPrivilegeEscalation === false) args.push("--security-opt", "no-new-privileges");
  const caps = (sec.capabilities ?? {}) as Obj;
  unknownKeys(`${at}.securityContext.capabilities`, caps, new Set(["drop", "add"]));
  for (const cap of (caps.drop as string[] | undefined) ?? []) args.push("--cap-drop", cap);
  for (const cap of (caps.add as string[] | undefined) ?? []) args.push("--cap-add", cap);
  if (sec.readOnlyRootFilesystem === true) {
    // podman's --read-only adds tmpfs /tmp, /run, /var/tmp; kubelet does not.
    args.push("--read-only", "--read-only-tmpfs=false");
  }

  for (const [i, m] of ((c.volumeMounts as Obj[] | undefined) ?? []).entries()) {
    unknownKeys(`${at}.volumeMounts[${i}]`, m, new Set(["name", "mountPath", "readOnly"]));
    const source = volumes.get(String(m.name));
    if (source === undefined)
      throw new UnsupportedPodField(`${at}.volumeMounts[${i}] names no volume.`);
    // rprivate: kubelet's default mount propagation None.
    args.push(
      "--volume",
      `${source}:${String(m.mountPath)}:${m.readOnly === true ? "ro" : "rw"},rprivate`,
    );
  }
  const mountsApiAccess = ((c.volumeMounts as Obj[] | undefined) ?? []).some(
    (m) => m.mountPath === SERVICE_ACCOUNT_MOUNT,
  );
  if (podSpec.automountServiceAccountToken !== false && !mountsApiAccess) {
    args.push("--volume", `${node.serviceAccountDir}:${SERVICE_ACCOUNT_MOUNT}:ro,rprivate`);
  }

  // Env: literal, downward API, and what kubelet injects.
  const fieldValues: Record<string, string> = {
    "spec.nodeName": node.nodeName,
    "metadata.namespace": node.namespace,
    "metadata.name": node.name,
  };
  for (const [i, e] of ((c.env as Obj[] | undefined) ?? []).entries()) {
    unknownKeys(`${at}.env[${i}]`, e, new Set(["name", "value", "valueFrom"]));
    if (e.value !== undefined) {
      args.push("--env", `${String(e.name)}=${String(e.value)}`);
      continue;
    }
    const from = e.valueFrom as Obj;
    unknownKeys(`${at}.env[${i}].valueFrom`, from, new Set(["fieldRef"]));
    const fieldPath = String((from.fieldRef as Obj).fieldPath);
    if (!(fieldPath in fieldValues)) {
      throw new UnsupportedPodField(
        `${at}.env[${i}] uses fieldRef ${fieldPath}, which is not translated.`,
      );
    }
    args.push("--env", `${String(e.name)}=${fieldValues[fieldPath]}`);
  }
  args.push(
    "--env",
    `KUBERNETES_SERVICE_HOST=${node.apiHost}`,
    "--env",
    `KUBERNETES_SERVICE_PORT=${node.apiPort}`,
  );

  const limits = ((c.resources as Obj | undefined)?.limits ?? {}) as Obj;
  if (typeof limits.memory === "string")
    args.push("--memory", limits.memory.replace(/i$/, "").toLowerCase());

  const ports = new Map<string, number>();
  for (const [i, p] of ((c.ports as Obj[] | undefined) ?? []).entries()) {
    unknownKeys(`${at}.ports[${i}]`, p, new Set(["name", "containerPort", "protocol"]));
    ports.set(String(p.name), p.containerPort as number);
  }

  if (c.command !== undefined) args.push("--entrypoint", JSON.stringify(c.command));
  args.push(node.image ?? String(c.image), ...((c.args as string[] | undefined) ?? []));
  args.push(...(node.extraArgs?.[name] ?? []));
  return {
    name,
    podmanName,
    runArgs: args,
    readinessProbe: probe(`${at}.readinessProbe`, c.readinessProbe, ports),
    livenessProbe: probe(`${at}.livenessProbe`, c.livenessProbe, ports),
  };
}

/** Translates the DaemonSet's pod spec for one node. Pure except for the pod's volume dirs. */
export function translatePod(podSpec: Obj, node: NodeContext): TranslatedPod {
  unknownKeys("spec", podSpec, POD_FIELDS);
  unknownKeys(
    "spec.securityContext",
    (podSpec.securityContext ?? {}) as Obj,
    new Set(["seccompProfile"]),
  );
  const created: string[] = [];
  const volumes = podVolumes(podSpec, node, created);
  const containers = (podSpec.containers as Obj[]).map((c, i) =>
    translateContainer(`spec.containers[${i}]`, c, podSpec, volumes, node),
  );
  return {
    name: node.name,
    // The sandbox: network (the host's, see above), IPC and UTS shared by the pod's containers.
    createArgs: [
      "pod",
      "create",
      "--name",
      node.name,
      "--network",
      "host",
      "--share",
      "ipc,net,uts",
      "--infra-image",
      PAUSE_IMAGE,
    ],
    containers,
    terminationGracePeriodSeconds:
      (podSpec.terminationGracePeriodSeconds as number | undefined) ?? 30,
    created,
  };
}

// --- running it: kubelet's I/O ---

/** podman with the harness's store; `confDir` holds a containers.conf with the sandbox's ulimits. */
function podman(store: Store, confFile: string, args: string[], timeoutMs?: number): Promise<Exec> {
  return exec("podman", podmanArgs(store, args), {
    timeoutMs,
    env: { ...process.env, CONTAINERS_CONF: confFile },
  });
}

/** kubelet's HTTP probe: success is a status in [200, 400) within the timeout. */
export async function probeOnce(p: HttpProbe): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${p.port}${p.path}`, {
      signal: AbortSignal.timeout(p.timeoutSeconds * 1000),
    });
    await res.text();
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}

/** One probe worker: runs the probe on its period, as kubelet's prober does. */
class ProbeWorker {
  results: boolean[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();

  constructor(readonly probe: HttpProbe) {
    this.timer = setTimeout(() => this.tick(), probe.initialDelaySeconds * 1000);
  }

  private tick(): void {
    if (this.stopped) return;
    this.running = probeOnce(this.probe).then((ok) => {
      if (this.stopped) return;
      this.results.push(ok);
      this.timer = setTimeout(() => this.tick(), this.probe.periodSeconds * 1000);
    });
  }

  /** A run of `failureThreshold` failures in a row (liveness: kubelet kills the container). */
  failedThreshold(): boolean {
    let run = 0;
    for (const ok of this.results) {
      run = ok ? 0 : run + 1;
      if (run >= this.probe.failureThreshold) return true;
    }
    return false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

/** A pod kubelet runs: its containers, probed. */
export class RunningPod {
  private readonly readiness = new Map<string, ProbeWorker>();
  private readonly liveness = new Map<string, ProbeWorker>();

  private constructor(
    readonly pod: TranslatedPod,
    private readonly store: Store,
    private readonly confFile: string,
  ) {}

  /**
   * Creates the sandbox and starts the containers in template order, each probed from its
   * start. `confDir` is a scratch dir for the containers.conf that gives the sandbox's pause
   * container the same explicit ulimits as the others (`podman pod create` has no --ulimit).
   */
  static async start(store: Store, pod: TranslatedPod, confDir: string): Promise<RunningPod> {
    const confFile = path.join(confDir, "containers.conf");
    if (!fs.existsSync(confFile)) {
      const limits = ULIMITS.filter((_, i) => i % 2 === 1).map((l) => JSON.stringify(l));
      fs.writeFileSync(confFile, `[containers]\ndefault_ulimits = [${limits.join(", ")}]\n`);
    }
    const running = new RunningPod(pod, store, confFile);
    const run = (args: string[]) => podman(store, confFile, args);
    if ((await run(["image", "exists", PAUSE_IMAGE])).code !== 0)
      check(
        "loading the pause image",
        await run(["load", "--quiet", "--input", await pauseImageArchive()]),
      );
    check(`creating pod ${pod.name}`, await run(pod.createArgs));
    for (const c of pod.containers) {
      check(`starting container ${c.name} of pod ${pod.name}`, await run(c.runArgs));
      if (c.readinessProbe) running.readiness.set(c.name, new ProbeWorker(c.readinessProbe));
      if (c.livenessProbe) running.liveness.set(c.name, new ProbeWorker(c.livenessProbe));
    }
    return running;
  }

  /** The container's host pid (its main process), for /proc/<pid>/environ. */
  async pid(container: string): Promise<number> {
    const c = this.container(container);
    const r = check(
      "podman inspect",
      await podman(this.store, this.confFile, [
        "inspect",
        "--format",
        "{{.State.Pid}}",
        c.podmanName,
      ]),
    );
    return Number(r.stdout.trim());
  }

  /** The last lines of a container's output (its logs go to stderr). */
  async logs(container: string, lines = 40): Promise<string> {
    const r = await podman(this.store, this.confFile, [
      "logs",
      "--tail",
      String(lines),
      this.container(container).podmanName,
    ]);
    return `${r.stdout}${r.stderr}`;
  }

  /**
   * Resolves once the container's readiness probe, polled on its period, succeeded; fails when
   * it did not within `timeoutMs` or a liveness probe reached its failure threshold (kubelet
   * would have killed the container).
   */
  async waitReady(container: string, timeoutMs: number): Promise<void> {
    const worker = this.readiness.get(container);
    if (!worker) throw new Error(`container ${container} has no readiness probe`);
    const deadline = Date.now() + timeoutMs;
    while (!worker.results.includes(true)) {
      this.assertLive();
      if (Date.now() > deadline) {
        throw new Error(
          `${this.pod.name}/${container} not ready after ${timeoutMs} ms (probe results ${JSON.stringify(worker.results)}):\n${await this.logs(container)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Throws when a liveness probe failed `failureThreshold` times in a row. */
  assertLive(): void {
    for (const [name, worker] of this.liveness) {
      if (worker.failedThreshold())
        throw new Error(
          `${this.pod.name}/${name}: liveness failed ${worker.probe.failureThreshold} times in a row; kubelet would kill it (results ${JSON.stringify(worker.results)})`,
        );
    }
  }

  /**
   * kubelet's stop: SIGTERM to every container at once, SIGKILL after the grace period, then the
   * sandbox; resolves with each container's exit code. (The sandbox's busybox pause ignores
   * SIGTERM as pid 1, where the real pause exits: it is removed, not stopped with a grace.)
   */
  async stop(): Promise<Record<string, number>> {
    for (const w of [...this.readiness.values(), ...this.liveness.values()]) await w.stop();
    const grace = this.pod.terminationGracePeriodSeconds;
    check(
      `stopping the containers of pod ${this.pod.name}`,
      await podman(
        this.store,
        this.confFile,
        ["stop", "--time", String(grace), ...this.pod.containers.map((c) => c.podmanName)],
        (grace + 30) * 1000,
      ),
    );
    const codes: Record<string, number> = {};
    for (const c of this.pod.containers) {
      const r = check(
        "podman inspect",
        await podman(this.store, this.confFile, [
          "inspect",
          "--format",
          "{{.State.ExitCode}}",
          c.podmanName,
        ]),
      );
      codes[c.name] = Number(r.stdout.trim());
    }
    return codes;
  }

  /** Removes the pod and its containers (force: also after a failed test). */
  async remove(): Promise<void> {
    for (const w of [...this.readiness.values(), ...this.liveness.values()]) await w.stop();
    await podman(this.store, this.confFile, ["pod", "rm", "--force", "--time", "0", this.pod.name]);
  }

  private container(name: string): TranslatedContainer {
    const c = this.pod.containers.find((x) => x.name === name);
    if (!c) throw new Error(`pod ${this.pod.name} has no container ${name}`);
    return c;
  }
}
