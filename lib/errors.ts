/**
 * The one error type helm-lock throws on purpose; `main.ts` maps its code to the exit code.
 *
 * @module
 */

/** Exit codes of helm-lock itself. When helm ran, helm-lock exits with helm's own code. */
export const ExitCode = {
  /** An unexpected error (a bug, or a failure with no more specific code). */
  Internal: 1,
  /** The command line could not be used. Nothing was written to the cluster. */
  Usage: 2,
  /** The lock was not acquired before `--lock-timeout`. helm did not run. */
  LockTimeout: 3,
  /** The lock was lost while helm ran (renewals failed, or another holder took it). */
  LockLost: 4,
  /** The release was stuck or failed and could not be recovered. helm did not run. */
  RecoveryFailed: 5,
  /** The Kubernetes API server could not be reached (or no cluster is configured). */
  Unreachable: 6,
  /** The API server refused a request (authentication or RBAC). */
  Forbidden: 7,
  /** Superseded by a newer waiting job, or outdated by `--lock-order-key`. helm did not run. */
  Superseded: 8,
  /** `$HELM_BIN` (else `helm` on `PATH`) cannot be started or is helm-lock: found first. */
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
