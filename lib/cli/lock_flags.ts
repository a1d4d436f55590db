/**
 * helm-lock's own flags, all named `--lock-*` so they never clash with helm's, taken out of
 * the argv wherever they stand before a lone `--` (by `lib/helm/argv.ts`).
 *
 * @module
 */

import { checkDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { parseBool, splitInline } from "../helm/argv.ts";

/** `--lock-timeout` when not given: 10 minutes. */
export const DEFAULT_LOCK_TIMEOUT_MS = 600_000;

/** `--lock-lease-duration` when not given: client-go's leader-election default. */
export const DEFAULT_LEASE_DURATION_SECONDS = 15;

/** The flags, for messages. */
export const LOCK_FLAGS =
  "--lock-timeout <duration>, --lock-lease-duration <duration>, --lock-no-recover or --lock-no-fence";

/** What the `--lock-*` flags set. */
export interface LockSettings {
  /** `--lock-timeout` in milliseconds. @default {600000} (10m) */
  lockTimeoutMs: number;
  /** `false` with `--lock-no-recover`: only lock, do not check or repair the release. */
  recover: boolean;
  /** `--lock-lease-duration` in whole seconds. @default {15} */
  leaseDurationSeconds: number;
  /** `false` with `--lock-no-fence`: helm talks to the API server directly (`lib/fence/`). */
  fence: boolean;
}

/** The settings when no `--lock-*` flag is given. */
export function defaultLockSettings(): LockSettings {
  return {
    lockTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS,
    recover: true,
    leaseDurationSeconds: DEFAULT_LEASE_DURATION_SECONDS,
    fence: true,
  };
}

/**
 * Applies one `--lock-*` token (and its value, `next`, when not inline) to `settings`.
 *
 * @param quote Renders a token for a message with secrets scrubbed.
 * @param found The `found "..."` part of usage messages.
 * @returns How many tokens after `arg` were consumed (0 or 1).
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for an unknown flag, a missing
 * value or a bad duration.
 */
export function applyLockFlag(
  settings: LockSettings,
  arg: string,
  next: string | undefined,
  quote: (token: string) => string,
  found: string,
): number {
  const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);
  const [name = "", inline] = splitInline(arg.slice(2));
  if (name === "lock-timeout" || name === "lock-lease-duration") {
    const value = inline ?? next;
    if (value === undefined) {
      throw usage(
        `Cannot run as --${name} has no value: expected a duration such as ` +
          `"--${name} 5m", ${found}`,
      );
    }
    const ms = checkDuration(value);
    if (typeof ms !== "number") {
      throw usage(`Cannot use --${name} as ${ms.reason}: ${ms.expected}`);
    }
    if (name === "lock-timeout") {
      settings.lockTimeoutMs = ms;
    } else if (ms < 1000) {
      // The Lease records whole seconds, and renewals every third of it need room.
      throw usage(
        `Cannot use --lock-lease-duration as it must be at least 1s: found ${
          JSON.stringify(value)
        }`,
      );
    } else {
      settings.leaseDurationSeconds = Math.round(ms / 1000);
    }
    return inline === undefined ? 1 : 0;
  }
  if (name === "lock-no-recover") {
    settings.recover = !parseBool(inline, "--lock-no-recover", usage);
    return 0;
  }
  if (name === "lock-no-fence") {
    settings.fence = !parseBool(inline, "--lock-no-fence", usage);
    return 0;
  }
  throw usage(`Cannot run as ${quote(arg)} is not a helm-lock flag: expected ${LOCK_FLAGS}`);
}
