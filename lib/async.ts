/**
 * Small async helpers with the semantics of denoland/std's `async/` module
 * (`delay`, `deadline`, `retry`), re-created here because JSR is unreachable from our
 * build machines.
 *
 * @module
 */

/** The longest wait of the runtime's timers (2^31 - 1 ms, about 24.8 days). */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Calls `fn` once, `ms` milliseconds from now, unless the returned function cancels it first:
 * helm-lock's `setTimeout`. Deno's global `setTimeout` is Node's: its first call loads Node's
 * timers and what they import, about 10 ms of the main thread (Deno 2.9.6), spent while helm
 * starts (the lock's first renewal timer) or, as a plugin, before helm starts (the parent
 * watch). `AbortSignal.timeout` runs on the runtime's own timers. Like a `setTimeout` timer, a
 * pending one keeps the process alive; a cancelled one does not.
 *
 * @param ms Milliseconds from now: negative and NaN count as 0, more than about 24.8 days
 *   (2^31 - 1 ms, Infinity too) as that.
 * @param fn Called once when the time is up.
 * @returns A function that cancels the call (nothing happens when it already ran).
 *
 * @example
 * ```ts
 * const cancel = schedule(5_000, () => console.log("late"));
 * cancel();
 * ```
 */
export function schedule(ms: number, fn: () => void): () => void {
  // The runtime's timers fire at once past 2^31 - 1 ms (setTimeout's too): wait that long
  // at most, never less than 0, and NaN as 0 (AbortSignal.timeout throws for NaN, Infinity).
  const wait = Number.isNaN(ms) ? 0 : Math.min(Math.max(0, ms), MAX_DELAY_MS);
  const timeout = AbortSignal.timeout(wait);
  const fire = () => fn();
  timeout.addEventListener("abort", fire, { once: true });
  return () => timeout.removeEventListener("abort", fire);
}

/** Options for {@linkcode delay}. */
export interface DelayOptions {
  /** Signal used to abort the delay. */
  signal?: AbortSignal;
}

/**
 * Resolves after the given number of milliseconds.
 *
 * @param ms Duration to wait, in milliseconds.
 * @param options Additional options.
 * @returns A promise that resolves after `ms` milliseconds.
 * @throws {unknown} `signal.reason` when the signal is (or becomes) aborted; the timer
 * and the abort listener are both cleaned up.
 *
 * @example
 * ```ts
 * await delay(100);
 * ```
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const abort = () => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = schedule(ms, () => {
      signal?.removeEventListener("abort", abort);
      resolve();
    });
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/** Options for {@linkcode deadline}. */
export interface DeadlineOptions {
  /** Signal used to abort the deadline. */
  signal?: AbortSignal;
}

/**
 * Races `p` against a timer of `ms` milliseconds.
 *
 * It does **not** cancel `p`: whoever started the work (a child process, a request)
 * must stop it.
 *
 * @param p The promise to wait for.
 * @param ms How long to wait, in milliseconds.
 * @param options Additional options.
 * @returns The value of `p` if it settles first.
 * @throws {DOMException} named `TimeoutError` when `ms` elapses first.
 * @throws {unknown} `signal.reason` when the signal aborts first.
 */
export function deadline<T>(p: Promise<T>, ms: number, options: DeadlineOptions = {}): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/** Options for {@linkcode retry}. */
export interface RetryOptions {
  /**
   * How much to multiply the wait by after each attempt.
   * @default {2}
   */
  multiplier?: number;
  /**
   * The most to wait between two attempts, in milliseconds.
   * @default {60000}
   */
  maxTimeout?: number;
  /**
   * How many times to call `fn` in total.
   * @default {5}
   */
  maxAttempts?: number;
  /**
   * The wait before the second attempt, in milliseconds.
   * @default {1000}
   */
  minTimeout?: number;
  /**
   * How much of each wait is random: 0 waits exactly, 1 waits anywhere between 0 and
   * the full wait.
   * @default {1}
   */
  jitter?: number;
  /**
   * Decides whether an error is worth another attempt; other errors are rethrown at once.
   * @default {() => true}
   */
  isRetriable?: (err: unknown) => boolean;
  /** Signal used to stop retrying; the wait rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Thrown by {@linkcode retry} when every attempt failed. `cause` is the last error. */
export class RetryError extends Error {
  constructor(cause: unknown, attempts: number) {
    super(`Retrying exceeded the maxAttempts (${attempts})`, { cause });
    this.name = "RetryError";
  }
}

/**
 * Calls `fn` until it succeeds, waiting
 * `(1 - jitter * random) * min(maxTimeout, minTimeout * multiplier ** n)` milliseconds
 * after the n-th failure (n from 0).
 *
 * @param fn The operation to attempt.
 * @param options Additional options.
 * @returns The first value `fn` resolves to.
 * @throws {RetryError} with the last error as `cause` when `maxAttempts` run out.
 * @throws {RangeError} when `maxTimeout`, `maxAttempts`, `minTimeout` or `jitter` is invalid.
 * @throws {unknown} the error of `fn` when `isRetriable` returns false for it.
 * @throws {unknown} `signal.reason` when the signal aborts.
 */
export async function retry<T>(
  fn: () => Promise<T> | T,
  options: RetryOptions = {},
): Promise<T> {
  const {
    multiplier = 2,
    maxTimeout = 60000,
    maxAttempts = 5,
    minTimeout = 1000,
    jitter = 1,
    isRetriable = () => true,
    signal,
  } = options;
  if (!(maxTimeout > 0)) {
    throw new RangeError(
      `Cannot retry as 'maxTimeout' must be positive: current value is ${maxTimeout}`,
    );
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(
      `Cannot retry as 'maxAttempts' must be a positive integer: current value is ${maxAttempts}`,
    );
  }
  if (!(minTimeout >= 0) || minTimeout > maxTimeout) {
    throw new RangeError(
      `Cannot retry as 'minTimeout' must be between 0 and 'maxTimeout' (${maxTimeout}): current value is ${minTimeout}`,
    );
  }
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(
      `Cannot retry as 'jitter' must be between 0 and 1: current value is ${jitter}`,
    );
  }
  for (let attempt = 0;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (err) {
      if (!isRetriable(err)) throw err;
      if (attempt + 1 >= maxAttempts) throw new RetryError(err, maxAttempts);
      const wait = Math.min(maxTimeout, minTimeout * multiplier ** attempt);
      await delay((1 - jitter * Math.random()) * wait, signal ? { signal } : {});
    }
  }
}
