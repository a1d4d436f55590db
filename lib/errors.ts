/**
 * The one error type helm-lock throws on purpose; `main.ts` maps its code to the exit code.
 *
 * @module
 */

/** Exit codes of helm-lock itself (README, Exit codes); when helm ran, helm's own code. */
export const ExitCode = {
  Internal: 1,
  Usage: 2,
  LockTimeout: 3,
  LockLost: 4,
  RecoveryFailed: 5,
  Unreachable: 6,
  Forbidden: 7,
  Superseded: 8,
  HelmNotFound: 127,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/** An error that ends helm-lock with a documented exit code. */
export class HelmLockError extends Error {
  constructor(readonly code: ExitCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HelmLockError";
  }
}
