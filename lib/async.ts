/**
 * `delay()` as denoland/std's `async/delay.ts` has it (JSR is unreachable from our builds).
 *
 * @module
 */

/**
 * Resolves after `ms` milliseconds.
 *
 * @throws {unknown} `signal.reason` when the signal is (or becomes) aborted; the timer and the
 * abort listener are both cleaned up.
 */
export function delay(ms: number, { signal }: { signal?: AbortSignal } = {}): Promise<void> {
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
