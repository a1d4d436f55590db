/**
 * Running the user's helm command under the held lock (DESIGN §4): argv verbatim, stdio
 * inherited, the fence's environment, SIGINT and SIGTERM forwarded, and helm stopped with
 * SIGTERM the moment the lock is lost.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import type { Reporter } from "../report.ts";
import { helmSpawn } from "./exec.ts";
import type { Interrupts } from "./signals.ts";

/** The signal count at which helm is killed instead of asked to stop. */
const KILL_AT_SIGNAL = 3;

/** What helm runs under. */
export interface HelmRunOptions {
  /** The helm executable (`findHelm()`). */
  bin: string;
  /** helm's argv, verbatim. */
  args: string[];
  /** The command line with secrets hidden, for the log. */
  commandLine: string;
  /** The fence's environment (empty when unfenced). */
  env: Record<string, string>;
  release: string;
  /** The lock: its loss stops helm. */
  lost: AbortSignal;
  signals: Interrupts;
}

/**
 * Runs helm and returns the exit code to end with: helm's own, or 128 + signal.
 *
 * @throws {HelmLockError} {@linkcode ExitCode.LockLost} when the lock was lost while helm ran
 *   (helm was stopped); `ExitCode.HelmNotFound`-like errors when helm cannot start.
 */
export async function runHelm(o: HelmRunOptions, report: Reporter): Promise<number> {
  if (o.signals.first) {
    report.info(`${o.signals.first} received: helm did not run`);
    return o.signals.exitCode();
  }
  o.lost.throwIfAborted();
  report.info(`running helm ${o.commandLine}`);
  const helm = helmSpawn(o.args, o.env, { bin: o.bin });
  o.signals.onSignal = (sig, count) => {
    if (count < KILL_AT_SIGNAL) {
      // Helm ≥ 3.7 cancels on SIGINT/SIGTERM and marks the release failed, not pending. A
      // repeated signal is forwarded too (helm ignores it): CI runners and shell wrappers often
      // deliver the same SIGTERM twice, and killing helm for that would leave the very pending
      // release helm-lock exists to prevent.
      report.info(
        count === 1
          ? `${sig} received: forwarding it to helm and waiting for helm to exit`
          : `${sig} received again: still waiting for helm; a third signal kills it`,
      );
      helm.kill(sig);
    } else {
      report.info(`${sig} received ${count} times: killing helm (the next run recovers it)`);
      helm.kill("SIGKILL");
    }
  };
  const onLost = () => {
    report.info(`lost ${o.release}'s lock while helm ran: stopping helm with SIGTERM`);
    helm.kill("SIGTERM");
  };
  o.lost.addEventListener("abort", onLost, { once: true });
  const status = await helm.status;
  o.lost.removeEventListener("abort", onLost);
  if (o.lost.aborted) {
    const reason = o.lost.reason;
    throw reason instanceof HelmLockError ? reason : new HelmLockError(
      ExitCode.LockLost,
      `Lost the lock of release "${o.release}" while helm ran: helm was stopped`,
      { cause: reason },
    );
  }
  if (o.signals.first) return o.signals.exitCode();
  report.debug(`helm exited with code ${status.code}`);
  return status.code;
}
