/**
 * The release check and recovery stage (DESIGN §3), once the lock is held: read the release,
 * decide (`planRecovery`), and roll back, unlock or uninstall what blocks helm.
 *
 * @module
 */

import type { RunLock } from "../lock/run_lock.ts";
import type { Interrupts } from "./signals.ts";
import { planRecovery, readRelease, recoverRelease } from "./release.ts";
import { kubeRecords, storageDriver } from "./storage.ts";

/** The user's command as recovery needs it. */
export interface RecoverCommand {
  command: string;
  release: string;
  /** Whether the command can create the release (`install`, `upgrade --install`). */
  install: boolean;
  /** `--dry-run`: nothing is checked or changed. */
  dryRun: boolean;
  /** `false` with `--lock-no-recover`. */
  recover: boolean;
  /** helm's global flags, for helm-lock's own helm calls. */
  globalArgs: string[];
}

/**
 * Checks and recovers the release for `install` and `upgrade`; other commands take the lock
 * only. A signal or the lost lock stops recovery's helm (SIGTERM) and ends recovery quietly:
 * the run then says why helm did not run.
 *
 * @param env The fence's environment, for the helm calls recovery makes.
 * @throws {HelmLockError} exit 5 when the release cannot be recovered (helm then must not run),
 *   6 or 7 when the API server cannot be reached or refuses.
 */
export async function recover(
  cmd: RecoverCommand,
  lock: RunLock,
  env: Record<string, string>,
  signals: Interrupts,
): Promise<void> {
  const { client, report, heldBy: { namespace } } = lock;
  const signal = AbortSignal.any([signals.signal, lock.held.lost]);
  if (!cmd.recover || (cmd.command !== "install" && cmd.command !== "upgrade")) return;
  if (cmd.dryRun) return report.info("--dry-run: the release is neither checked nor recovered");
  // helm's records are read (and a stale revision unlocked) directly for the drivers
  // helm-lock knows; other drivers go through helm.
  const driver = storageDriver(Deno.env.get("HELM_DRIVER"));
  const opts = {
    namespace,
    signal,
    env,
    lock: lock.heldBy,
    ...(driver ? { records: kubeRecords(client, namespace, driver) } : {}),
  };
  try {
    const state = await readRelease(cmd.release, cmd.globalArgs, opts);
    const plan = planRecovery(state, { ...cmd, namespace });
    if (plan.action === "proceed") return report.info(plan.reason);
    const done: string[] = [];
    await recoverRelease(cmd.release, plan, cmd.globalArgs, (line) => {
      report.info(line);
      done.push(line);
    }, opts);
    report.event("Recovered", done.join("; "));
  } catch (err) {
    // A signal or the lost lock stopped recovery's helm: the run says that, not how helm died.
    if (!signal.aborted) throw err;
  }
}
