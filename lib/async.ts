/**
 * `delay()` with the semantics of denoland/std's `async/delay.ts`, re-created here because JSR
 * is unreachable from our build machines.
 *
 * @module
 */

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
 * @throws {unknown} `signal.reason` when the signal is (or becomes) aborted; the timer and the
 * abort listener are both cleaned up.
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
      clearTimeout(timer);
      reject(signal?.reason);
    };
    // The runtime's timers fire at once past 2^31 - 1 ms: a longer wait is that long.
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, Math.min(ms, 2 ** 31 - 1));
    signal?.addEventListener("abort", abort, { once: true });
  });
}
