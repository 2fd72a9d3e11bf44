/**
 * Exponential backoff for the agent's retries (Kubernetes label patches) and restarts (the
 * runtime manager process). Pure delay arithmetic plus one small retry loop; the clock, the
 * sleep and the randomness are injectable so tests are exact.
 */

export interface BackoffPolicy {
  /** Delay before the first retry. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Growth per attempt. Defaults to 2. */
  factor?: number;
  /**
   * Fraction of each delay that is randomised away, 0..1: with 0.5 a 4 s delay becomes a
   * uniform 2..4 s. Spreads retries of many nodes hitting one API server. Defaults to 0.
   */
  jitter?: number;
}

/**
 * The delay before retry number `attempt` (0-based): `initialMs * factor^attempt`, capped at
 * `maxMs`, then reduced by up to `jitter` of itself using `random()` in [0, 1).
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const { initialMs, maxMs, factor = 2, jitter = 0 } = policy;
  if (!(initialMs >= 0 && maxMs >= initialMs && factor >= 1 && jitter >= 0 && jitter <= 1)) {
    throw new Error(
      `invalid backoff policy ${JSON.stringify(policy)}: need 0 <= initialMs <= maxMs, factor >= 1, 0 <= jitter <= 1.`,
    );
  }
  // Cap the exponent too, so a long-running supervisor cannot overflow to Infinity.
  const capped = Math.min(maxMs, initialMs * Math.pow(factor, Math.min(attempt, 64)));
  return Math.round(capped * (1 - jitter * random()));
}

export interface RetryOptions {
  /** Total tries, the first one included; `Infinity` when only `deadline` bounds them. */
  attempts: number;
  policy: BackoffPolicy;
  /**
   * Epoch ms after which no try starts: the last wait is cut short to end at it, and one last
   * try runs then. A wait on the clock, not on a count, stays bounded however short the
   * policy's first delays are.
   */
  deadline?: number;
  now?: () => number;
  /** Whether an error is worth another try; others are rethrown at once. */
  isRetryable: (err: unknown) => boolean;
  /** Called before each wait, for logs. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/**
 * The agent's one sleep: resolves after `ms`, or at once when `signal` aborts (SIGTERM cutting
 * the daemon's wait short); never rejects.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs `fn` until it resolves, a non-retryable error, `attempts` tries or the `deadline`; the last error is
 * rethrown as it is, so callers keep its type and status.
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions,
): Promise<T> {
  const unbounded = opts.attempts === Infinity && opts.deadline !== undefined;
  if (!unbounded && (!Number.isInteger(opts.attempts) || opts.attempts < 1)) {
    throw new Error(
      `retry attempts must be an integer >= 1 (or Infinity with a deadline); got ${opts.attempts}.`,
    );
  }
  const wait = opts.sleep ?? sleep;
  const now = opts.now ?? Date.now;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt + 1 >= opts.attempts || !opts.isRetryable(err)) throw err;
      let delay = backoffDelay(attempt, opts.policy, opts.random);
      if (opts.deadline !== undefined) {
        const left = opts.deadline - now();
        if (left <= 0) throw err;
        delay = Math.min(delay, left);
      }
      opts.onRetry?.(err, attempt, delay);
      await wait(delay);
    }
  }
}
