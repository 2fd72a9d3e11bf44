/**
 * Pulumi mock harness for component tests: records every registered resource, and waits until
 * registrations have settled so late children are not missed.
 */
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";

export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** `<provider urn>::<provider id>` of the provider the engine was asked to use. */
  provider: string | undefined;
  /** The URN the mock monitor derives; embeds `Parent$Child` types, which proves parentage. */
  urn: string;
  /**
   * Pulumi names of the resources this one waits for, as the SDK sent them to the engine (explicit
   * `dependsOn` plus the resources its input Outputs come from), sorted.
   */
  dependencies: string[];
}

/** The part of a RegisterResourceRequest the recorder reads. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getDependenciesList(): string[];
}

export class Recorder {
  readonly resources: Registered[] = [];
  /** Dependency URNs per `<type>::<name>`, captured from the register requests. */
  private readonly dependencyUrns = new Map<string, string[]>();

  /**
   * Installs the mocks; call in `beforeAll`. preview=false so unset outputs resolve; with true,
   * outputs the mock does not return are unknown, as in `pulumi preview`.
   */
  async install(project = "vnode-test", stack = "test", preview = false): Promise<void> {
    await pulumi.runtime.setMocks(
      {
        newResource: (
          args: pulumi.runtime.MockResourceArgs,
        ): { id: string; state: Record<string, unknown> } => {
          this.resources.push({
            type: args.type,
            name: args.name,
            inputs: args.inputs,
            provider: args.provider,
            urn: "",
            dependencies: [],
          });
          return { id: `${args.name}-id`, state: { ...args.inputs, ...computed(args) } };
        },
        call: (args: pulumi.runtime.MockCallArgs) => args.inputs,
      },
      project,
      stack,
      preview,
    );
    // The mocks' newResource does not see dependencies; the register request carries them.
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      registerResource(req: RegisterRequest, callback: unknown): Promise<void>;
    };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: RegisterRequest, callback: unknown): Promise<void> => {
      this.dependencyUrns.set(`${req.getType()}::${req.getName()}`, req.getDependenciesList());
      return register(req, callback);
    };
  }

  /** Copies each resource's URN from the mock monitor, which computes it after `newResource`. */
  fillUrns(): void {
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      getRegisteredResources(): Map<string, { urn: string }>;
    };
    const urns = [...monitor.getRegisteredResources().keys()];
    for (const resource of this.resources) {
      const matches = urns.filter((urn) => {
        const [qualifiedType, name] = urn.split("::").slice(2);
        return name === resource.name && qualifiedType.split("$").pop() === resource.type;
      });
      if (matches.length !== 1) {
        throw new Error(
          `expected one URN for ${resource.type} ${resource.name}, found ${matches.length}`,
        );
      }
      resource.urn = matches[0];
      resource.dependencies = (this.dependencyUrns.get(`${resource.type}::${resource.name}`) ?? [])
        .map((urn) => urn.split("::").pop() as string)
        .sort();
    }
  }

  /** Resources of one component, by the `${name}-` prefix of their Pulumi names. */
  of(prefix: string): Registered[] {
    return this.resources.filter((r) => r.name === prefix || r.name.startsWith(`${prefix}-`));
  }

  /** Resources of one component with a given type token, in registration order. */
  byType(prefix: string, type: string): Registered[] {
    return this.of(prefix).filter((r) => r.type === type);
  }

  /** The single resource of a type; fails when there is not exactly one. */
  one(prefix: string, type: string): Registered {
    const found = this.byType(prefix, type);
    if (found.length !== 1) {
      throw new Error(`expected exactly one ${type} for ${prefix}, found ${found.length}`);
    }
    return found[0];
  }
}

/**
 * Outputs a provider computes, which the mock must play: docker-build's Image pushes and reports
 * the digest of what it built, and `ref`, its first tag pinned to that digest.
 */
function computed(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  if (args.type !== "docker-build:index:Image") {
    return {};
  }
  const digest = mockImageDigest(args.inputs);
  const tags = args.inputs.tags as string[];
  return { digest, ref: `${tags[0]}@${digest}`, contextHash: `mock-${digest.slice(7, 19)}` };
}

/**
 * Stands in for the registry digest: a hash of what decides the image's content (the context,
 * the Dockerfile, build args, platforms), not of the tags or credentials, as for a real build.
 */
export function mockImageDigest(inputs: Record<string, unknown>): string {
  const content = JSON.stringify([
    inputs.context,
    inputs.dockerfile,
    inputs.buildArgs,
    inputs.platforms,
  ]);
  return `sha256:${createHash("sha256").update(content).digest("hex")}`;
}

/** Resolves an Output's value (and whether it is secret) under mocks. */
export async function resolve<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolvePromise) => output.apply((value) => resolvePromise(value)));
}

/**
 * Waits until the component's URN and outputs resolved and no resource registered for a few
 * macrotasks: the mock monitor has no I/O, so a registration still queued shows up by then.
 */
export async function settle(
  recorder: Recorder,
  component: { urn: pulumi.Output<string> },
): Promise<void> {
  await resolve(component.urn);
  let stableTurns = 0;
  let count = recorder.resources.length;
  while (stableTurns < 5) {
    await new Promise((r) => setTimeout(r, 5));
    if (recorder.resources.length === count) {
      stableTurns += 1;
    } else {
      count = recorder.resources.length;
      stableTurns = 0;
    }
  }
  recorder.fillUrns();
}

/** Deep copy that replaces Pulumi secret envelopes by `{ secret: value }` for readable asserts. */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** Whether a value (anywhere inside it) is a Pulumi secret envelope as the mock monitor sees it. */
export function containsSecret(value: unknown): boolean {
  if (Array.isArray(value)) {
    return value.some(containsSecret);
  }
  if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIG] === SECRET_VALUE) {
      return true;
    }
    return Object.values(record).some(containsSecret);
  }
  return false;
}
