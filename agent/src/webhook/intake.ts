/**
 * How the webhook takes request bodies in without letting one client take its memory: a streaming
 * check of the JSON's shape that refuses a body before it is materialised (a 3 MiB review holding
 * a million empty objects costs ~100 MiB once `JSON.parse`d, so it must never get there), and a
 * small number of slots for large bodies, so however many clients send large bodies at once, only
 * a few are buffered and parsed at a time. Pure and synchronous; the server wires it to sockets.
 */

export interface JsonShapeLimits {
  /** Deepest nesting of objects and arrays. A pod review nests about 15 deep (managedFields). */
  maxDepth: number;
  /**
   * Most JSON values (every object, array, member and element). A real review of a pod the size
   * of etcd's 1.5 MiB limit carries far fewer: what fills large pods is strings (annotations,
   * env values), each one value.
   */
  maxValues: number;
}

export const JSON_SHAPE_LIMITS: JsonShapeLimits = { maxDepth: 64, maxValues: 100_000 };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/**
 * After this many bytes of one string, the scanner looks for the string's end with
 * `Buffer.indexOf` (memchr) instead of byte by byte: what fills a large review is long strings
 * (annotations, env values, a crafted 3 MiB one), and memchr crosses them ~20x faster, while short
 * strings (keys, names) never pay for a native call.
 */
const LONG_STRING_RUN = 64;

/**
 * Counts the structure of a JSON text chunk by chunk, in one pass over the bytes, without building
 * anything: depth, and values (each `{`, `[`, `,` and `:` outside strings starts one). It does not
 * check the grammar; `JSON.parse` does that afterwards, on a body already known to be small in
 * values. Multi-byte UTF-8 never contains these ASCII bytes, so byte-wise scanning is exact.
 */
export class JsonShapeScanner {
  private inString = false;
  private escaped = false;
  private depth = 0;
  private values = 1;

  constructor(private readonly limits: JsonShapeLimits = JSON_SHAPE_LIMITS) {}

  /** Feeds the next chunk; returns why the body is refused, or undefined while it is within limits. */
  feed(bytes: Buffer): string | undefined {
    let { inString, escaped, depth, values } = this;
    const { maxDepth, maxValues } = this.limits;
    // Where the next quote and backslash are in this chunk (-1: none), found at most once each per
    // position, so a string full of escapes cannot make the native searches quadratic.
    let quoteAt = -2;
    let backslashAt = -2;
    let run = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (b === BACKSLASH) escaped = true;
        else if (b === QUOTE) {
          inString = false;
          run = 0;
        } else if (++run >= LONG_STRING_RUN) {
          if (quoteAt !== -1 && quoteAt <= i) quoteAt = bytes.indexOf(QUOTE, i + 1);
          if (backslashAt !== -1 && backslashAt <= i) backslashAt = bytes.indexOf(BACKSLASH, i + 1);
          const next = Math.min(
            quoteAt === -1 ? bytes.length : quoteAt,
            backslashAt === -1 ? bytes.length : backslashAt,
          );
          // The loop's i++ lands on that quote or backslash, or ends the chunk mid-string.
          i = next - 1;
          run = 0;
        }
        continue;
      }
      if (b === QUOTE) inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (++depth > maxDepth) {
          return `JSON nests deeper than ${maxDepth} levels; an AdmissionReview of a Pod never does`;
        }
        values++;
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
      else if (b === COMMA || b === COLON) {
        if (++values > maxValues) {
          return `JSON holds more than ${maxValues} values; an AdmissionReview of a Pod never does`;
        }
      }
    }
    Object.assign(this, { inString, escaped, depth, values });
    return undefined;
  }
}

/**
 * A counting semaphore whose waiters are served in arrival order. `acquire` resolves with a
 * release function that may be called more than once (only the first call counts).
 */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) {
      throw new Error(`slots must be a positive integer; got ${size}.`);
    }
    this.free = size;
  }

  /** How many callers wait for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          const next = this.waiting.shift();
          if (next) next();
          else this.free++;
        });
      };
      if (this.free > 0) {
        this.free--;
        grant();
      } else {
        this.waiting.push(grant);
      }
    });
  }

  /**
   * Gives back the slot of `waiter`, granted yet or not (its socket closed while it waited): a
   * waiter still gets its slot when its turn comes, and passes it on at once.
   */
  release(waiter: Promise<() => void>): void {
    void waiter.then((release) => release());
  }
}
