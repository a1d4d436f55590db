/**
 * Running the user's helm command (DESIGN §4): argv verbatim, stdio inherited, SIGINT and
 * SIGTERM forwarded. Under the held lock with the fence's environment, helm is stopped with
 * SIGTERM the moment the lock is lost; with no lock (`runHelmDirectly`) it simply runs.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import type { RunLock } from "../lock/run_lock.ts";
import { redactCommandLine } from "../redact.ts";
import { findHelm, helmSpawn } from "./exec.ts";
import type { Interrupts } from "./signals.ts";

/** The signal count at which helm is killed instead of asked to stop. */
const KILL_AT_SIGNAL = 3;

/**
 * Runs helm and returns the exit code to end with: helm's own, or 128 + signal.
 *
 * @throws {HelmLockError} {@linkcode ExitCode.LockLost} when the lock was lost while helm ran
 *   (helm was stopped); `ExitCode.HelmNotFound`-like errors when helm cannot start.
 */
export async function runHelm(
  bin: string,
  cmd: { helmArgs: string[]; release: string },
  lock: RunLock,
  env: Record<string, string>,
  signals: Interrupts,
): Promise<number> {
  const { report, held: { lost } } = lock;
  if (signals.first) {
    report.info(`${signals.first} received: helm did not run`);
    return signals.exitCode();
  }
  lost.throwIfAborted();
  report.info(`running helm ${redactCommandLine(cmd.helmArgs)}`);
  const helm = helmSpawn(cmd.helmArgs, env, { bin, lock: lock.heldBy });
  signals.onSignal = (sig, count) => {
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
    report.info(`lost ${cmd.release}'s lock while helm ran: stopping helm with SIGTERM`);
    helm.kill("SIGTERM");
  };
  lost.addEventListener("abort", onLost, { once: true });
  const status = await helm.status;
  lost.removeEventListener("abort", onLost);
  if (lost.aborted) {
    const reason = lost.reason;
    throw reason instanceof HelmLockError ? reason : new HelmLockError(
      ExitCode.LockLost,
      `Lost the lock of release "${cmd.release}" while helm ran: helm was stopped`,
      { cause: reason },
    );
  }
  if (signals.first) return signals.exitCode();
  report.debug(`helm exited with code ${status.code}`);
  return status.code;
}

const FORWARDED = ["SIGINT", "SIGTERM"] as const;

/**
 * Runs helm with no lock and returns its exit code (128 + n when a signal n ended it): helm
 * commands that do not change a release, helm's own `--help`, and a helm-lock nested under the
 * holder of the same lock. The argv reaches helm verbatim, stdio is inherited, SIGINT and
 * SIGTERM are forwarded.
 *
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when helm cannot be started.
 */
export async function runHelmDirectly(helmArgs: string[]): Promise<number> {
  const helm = helmSpawn(helmArgs, undefined, { bin: findHelm() });
  // A CI runner's SIGTERM to us must reach helm, or helm would outlive us unseen.
  const handlers = FORWARDED.map((sig) => [sig, () => helm.kill(sig)] as const);
  for (const [sig, handler] of handlers) Deno.addSignalListener(sig, handler);
  try {
    // Deno reports 128 + n for a helm ended by signal n, the shell's convention.
    return (await helm.status).code;
  } finally {
    for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
  }
}
