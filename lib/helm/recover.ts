/**
 * The release check and recovery stage (DESIGN §3): {@linkcode recover} reads the release, decides
 * what to do (`planRecovery`, pure) and does it (`recoverRelease`).
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import type { RunLock } from "../lock/run_lock.ts";
import { helmCapture } from "./exec.ts";
import type { Interrupts } from "./signals.ts";
import {
  kubeRecords,
  markFailed,
  readRelease,
  type ReleaseOptions,
  type ReleaseState,
  storageDriver,
} from "./storage.ts";

/** The user's command as recovery needs it. */
export interface RecoverCommand {
  command: string;
  /** Whether the command can create the release (`upgrade --install`; implied by `install`). */
  install: boolean;
  release: string;
  dryRun: boolean;
  /** `false` with `--lock-no-recover`. */
  recover: boolean;
  /** helm's global flags, for helm-lock's own helm calls. */
  globalArgs: string[];
}

/**
 * Checks and recovers the release for `install` and `upgrade`. A signal or the lost lock stops
 * recovery's helm and ends recovery quietly: the run then says why helm did not run.
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
    const plan = planRecovery(state, cmd, namespace);
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

/** What to do before running the user's command. */
type RecoveryPlan =
  | { action: "proceed"; reason: string }
  | { action: "rollback"; toRevision: number; reason: string }
  | { action: "uninstall"; reason: string }
  | { action: "error"; message: string };

/**
 * Decides what to do before `install` or `upgrade`: the README's table (a test holds the two
 * together), argued in DESIGN §3.
 *
 * @returns The plan; an `error` plan's message is meant for the user as is.
 */
function planRecovery(state: ReleaseState, cmd: RecoverCommand, namespace: string): RecoveryPlan {
  const name = `release "${cmd.release}" in namespace "${namespace}"`;
  const current = state.current;
  if (!state.found || current === undefined) {
    return { action: "proceed", reason: `${name} does not exist yet` };
  }
  const at = `${name} is ${current.status} at revision ${current.revision}`;
  const canCreate = cmd.install || cmd.command === "install";
  // helm also marks failed revisions `superseded` (the base of a later upgrade or of a failed
  // rollback): one newer than the last `deployed` revision was not a good one.
  const older = state.history.filter((r) => r.revision < current.revision)
    .sort((a, b) => b.revision - a.revision);
  const good = (older.find((r) => r.status === "deployed") ??
    older.find((r) => r.status === "superseded"))?.revision;
  switch (current.status) {
    case "deployed":
    case "superseded":
    case "uninstalled":
    case "unknown":
      return { action: "proceed", reason: at };
    case "uninstalling":
      return {
        action: "error",
        message: `Release "${cmd.release}" in namespace "${namespace}" is stuck in state ` +
          `"uninstalling" at revision ${current.revision}: finish it with "helm uninstall ` +
          `${cmd.release}", then run the command again`,
      };
    case "failed":
      // helm upgrades from the last deployed revision; a rollback first could fail where the
      // failed revision renamed a resource (helm/helm#13437).
      if (!canCreate || good !== undefined) {
        return { action: "proceed", reason: `${at}, which does not block helm ${cmd.command}` };
      }
      break;
    case "pending-upgrade":
    case "pending-rollback":
      // helm refuses to upgrade a pending release ("another operation is in progress").
      if (good !== undefined) {
        return {
          action: "rollback",
          toRevision: good,
          reason: `${at}; the last good revision is ${good}`,
        };
      }
      break;
    case "pending-install":
      // A good revision from before an `uninstall --keep-history` would resurrect what the
      // user removed.
      break;
  }
  if (canCreate) {
    return { action: "uninstall", reason: `${at} with no good revision to roll back to` };
  }
  return {
    action: "error",
    message: `Cannot upgrade ${name}: it is ${current.status} at revision ` +
      `${current.revision} with no good revision to roll back to; add --install to let ` +
      `helm-lock uninstall the stale release and install it again`,
  };
}

/**
 * Carries out a `rollback` (without `--wait`: the user's command follows and brings its own) or
 * `uninstall` plan (`--no-hooks`: a failing delete hook would leave the release `uninstalling`),
 * logging what was found and done; a failed rollback that left the revision pending is unlocked
 * in helm's records (DESIGN §3).
 *
 * @throws {HelmLockError} {@linkcode ExitCode.RecoveryFailed} when helm fails (with helm's
 *   error), or for an `error` plan (with its message).
 */
async function recoverRelease(
  release: string,
  plan: Exclude<RecoveryPlan, { action: "proceed" }>,
  globalArgs: string[],
  log: (line: string) => void,
  opts: ReleaseOptions & { namespace: string },
): Promise<void> {
  const where = `release "${release}" in namespace "${opts.namespace}"`;
  if (plan.action === "error") throw new HelmLockError(ExitCode.RecoveryFailed, plan.message);
  log(plan.reason);
  const rev = plan.action === "rollback" ? String(plan.toRevision) : "";
  const args = plan.action === "rollback"
    ? ["rollback", release, rev, ...globalArgs]
    : ["uninstall", release, "--no-hooks", ...globalArgs];
  const res = await helmCapture(args, opts);
  if (res.code === 0) {
    return log(
      plan.action === "rollback"
        ? `rolled back ${where} to revision ${rev}`
        : `uninstalled the stale ${where}`,
    );
  }
  if (plan.action === "uninstall") {
    throw new HelmLockError(
      ExitCode.RecoveryFailed,
      `Cannot uninstall the stale ${where}: "helm uninstall" exited with code ${res.code}: ` +
        res.said,
    );
  }
  // A failed rollback that helm recorded marked the pending revision superseded.
  const failed = `could not roll back to revision ${rev} (helm: ${res.said})`;
  const current = (await readRelease(release, globalArgs, opts)).current;
  if (current === undefined || !current.status.startsWith("pending-")) {
    const at = current === undefined ? "gone" : `${current.status} at revision ${current.revision}`;
    return log(`${failed}; ${where} is now ${at}, which does not block helm: proceeding`);
  }
  if (opts.records === undefined) {
    throw new HelmLockError(
      ExitCode.RecoveryFailed,
      `Cannot recover ${where} from state "${current.status}" at revision ` +
        `${current.revision}: "helm rollback" to revision ${rev} failed: ` +
        `${res.said}; helm-lock unlocks a stale revision only in the "secret" and ` +
        `"configmap" storage drivers`,
    );
  }
  await markFailed(opts.records, release, current.revision, current.status);
  log(
    `${failed}; marked the stale ${current.status} revision ${current.revision} failed in ` +
      `helm's storage, so helm can proceed`,
  );
}
