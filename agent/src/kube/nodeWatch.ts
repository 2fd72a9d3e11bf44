/**
 * The agent's own Node, kept current by a watch instead of a GET every interval: at 5,000 nodes
 * a 30 s GET of a tens-of-KB object is ~170 requests and TLS handshakes a second on the API
 * server, forever, for labels that rarely change. One GET gives the node and a resourceVersion;
 * then one watch, field-selected to this node, with bookmarks, is resumed from the last
 * resourceVersion it saw whenever the server ends it (every 10-20 min, jittered, as client-go's
 * reflector does with 5-10). Only a 410 (the version left the API server's event window) costs
 * another GET. Errors back off (1 s .. 30 s, jittered) and never end the loop.
 */
import type { KubeClient, NodeWatchEvent, V1Node } from "./client";

/** The watch's server-side timeout range (s): at most one re-establishment per 10 minutes. */
export const WATCH_TIMEOUT_SECONDS = { min: 600, max: 1200 } as const;

export interface NodeWatchLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class NodeWatch {
  /** The node as last seen, or undefined before the first GET. */
  node: V1Node | undefined;
  /** Watches opened so far (the first included). */
  established = 0;
  private resourceVersion: string | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly kube: KubeClient,
    private readonly name: string,
    private readonly log: NodeWatchLog,
    private readonly random: () => number = Math.random,
  ) {}

  /** The node's labels, or undefined when the watch has not seen the node yet. */
  get labels(): Record<string, string> | undefined {
    return this.node === undefined ? undefined : (this.node.metadata?.labels ?? {});
  }

  /** Takes a node the agent got otherwise (a PATCH answer); the watch delivers it again. */
  offer(node: V1Node): void {
    this.node = node;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        if (this.resourceVersion === undefined) {
          const node = await this.kube.getNode(this.name);
          this.node = node;
          this.resourceVersion = node.metadata?.resourceVersion;
          if (this.resourceVersion === undefined)
            throw new Error("the node has no resourceVersion");
        }
        this.established++;
        const span = WATCH_TIMEOUT_SECONDS.max - WATCH_TIMEOUT_SECONDS.min;
        const timeoutSeconds = WATCH_TIMEOUT_SECONDS.min + Math.floor(this.random() * span);
        await this.kube.watchNode(this.name, this.resourceVersion, (e) => this.apply(e), {
          timeoutSeconds,
          signal: this.abort.signal,
        });
        failures = 0;
      } catch (err) {
        if (this.abort.signal.aborted) break;
        failures++;
        const delay = Math.min(30_000, 1000 * 2 ** (failures - 1)) * (0.5 + this.random() / 2);
        this.log.warn(
          { phase: "watch", reason: (err as Error).message, retryInMs: Math.round(delay) },
          "node watch failed",
        );
        await this.sleep(delay);
      }
    }
  }

  private apply(e: NodeWatchEvent): void {
    const rv = e.object.metadata?.resourceVersion;
    switch (e.type) {
      case "ADDED":
      case "MODIFIED":
        this.offer(e.object);
        if (rv !== undefined) this.resourceVersion = rv;
        break;
      case "BOOKMARK":
        if (rv !== undefined) this.resourceVersion = rv;
        break;
      case "DELETED":
        this.node = undefined;
        this.resourceVersion = undefined;
        break;
      case "ERROR":
        // 410 Gone: the version is older than the server's event window; GET the node again.
        this.log.info({ phase: "watch", code: e.object.code }, "node watch expired; re-reading");
        this.resourceVersion = undefined;
        throw new Error(`watch error ${e.object.code}: ${e.object.message}`);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.abort.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
