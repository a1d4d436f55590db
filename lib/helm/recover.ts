/**
 * The release check and recovery stage (DESIGN §3), run only once the lock is held:
 * {@linkcode recover} reads the release (helm's records, else `helm history` with the user's
 * own helm and connection flags), decides what to do ({@linkcode planRecovery}, pure), and
 * rolls back, unlocks or uninstalls what blocks helm ({@linkcode recoverRelease}).
 *
 * Checked against Helm 3.17.2 and 4.1.4: both print the same `helm history -o json` (an array
 * of `{revision, updated, status, chart, app_version, description}`, oldest first), both
 * exit 1 with `Error: release: not found` for an unknown release, and both leave a killed
 * upgrade's revision `pending-upgrade` in the history even after a rollback, so only the
 * newest revision tells the release's state.
 *
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import type { RunLock } from "../lock/run_lock.ts";
import { redactText, secretValues } from "../redact.ts";
import { helmCapture } from "./exec.ts";
import type { HeldBy } from "./nesting.ts";
import type { Interrupts } from "./signals.ts";
import {
  kubeRecords,
  markFailed,
  readRevisions,
  type ReleaseRecordsApi,
  storageDriver,
} from "./storage.ts";

/** The user's command as recovery needs it. */
export interface RecoverCommand extends RecoveryCommand {
  release: string;
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

/** The statuses helm writes, and `unknown`, which also stands for any status we do not know. */
const STATUSES = [
  "deployed",
  "superseded",
  "failed",
  "uninstalling",
  "uninstalled",
  "pending-install",
  "pending-upgrade",
  "pending-rollback",
  "unknown",
] as const;
const KNOWN_STATUSES: ReadonlySet<unknown> = new Set(STATUSES);

/** A revision's status as helm prints it. */
export type ReleaseStatus = typeof STATUSES[number];

function statusOf(status: unknown): ReleaseStatus {
  return KNOWN_STATUSES.has(status) ? status as ReleaseStatus : "unknown";
}

/** One entry of `helm history`. */
export interface ReleaseRevision {
  revision: number;
  status: ReleaseStatus;
  /** When helm last wrote this revision (RFC 3339), as helm prints it. */
  updated?: string;
  /** helm's description, e.g. `Upgrade complete` or `Preparing upgrade`. */
  description?: string;
}

/** A release as found in the cluster. */
export interface ReleaseState {
  /** `false` when helm has no record of the release. */
  found: boolean;
  /** The newest revision: the release's state. */
  current?: ReleaseRevision;
  /** All revisions helm keeps (up to 256), oldest first. */
  history: ReleaseRevision[];
}

/** What to do before running the user's command. */
export type RecoveryPlan =
  | { action: "proceed"; reason: string }
  | {
    action: "rollback";
    toRevision: number;
    /** The stuck revision rolled back from. */
    from: { revision: number; status: ReleaseStatus };
    reason: string;
  }
  | { action: "uninstall"; reason: string }
  | { action: "error"; message: string };

/** The user's command as {@linkcode planRecovery} needs it. */
export interface RecoveryCommand {
  /** The helm command, e.g. `upgrade`. */
  command: string;
  /** Whether the command can create the release (`upgrade --install`; implied by `install`). */
  install: boolean;
  /** Named in messages when given, as is `namespace`. */
  release?: string;
  namespace?: string;
}

/**
 * Decides, from the release's state, what to do before the user's command (DESIGN §3).
 * Only `install` and `upgrade` are recovered; every other command proceeds.
 *
 * Recovery exists to unblock helm, never to block it: a state helm itself proceeds from is
 * left to helm (the README's "Recovery" section argues each row).
 *
 * | newest revision | action |
 * |---|---|
 * | none (not found), `deployed`, `uninstalled`, `superseded`, `unknown` | proceed (helm decides) |
 * | `failed` with a good revision before it | proceed: `helm upgrade` starts from the last deployed revision |
 * | `failed` with none (a failed first install) | uninstall when the command can create the release, else proceed |
 * | `pending-upgrade`, `pending-rollback` with a good revision before it | rollback to the newest `deployed` (else `superseded`) revision; if that fails and the revision is still pending, unlock it ({@linkcode recoverRelease}) |
 * | `pending-install`; or pending with no good revision | uninstall when the command can create the release, else error |
 * | `uninstalling` | error |
 *
 * @returns The plan; an `error` plan's message is meant for the user as is.
 */
export function planRecovery(state: ReleaseState, cmd: RecoveryCommand): RecoveryPlan {
  const name = cmd.release === undefined ? "the release" : `release "${cmd.release}"`;
  const where = cmd.namespace === undefined ? "" : ` in namespace "${cmd.namespace}"`;
  const Name = name.charAt(0).toUpperCase() + name.slice(1);
  const current = state.current;
  if (cmd.command !== "install" && cmd.command !== "upgrade") {
    return { action: "proceed", reason: `no release check for "helm ${cmd.command}"` };
  }
  if (!state.found || current === undefined) {
    return { action: "proceed", reason: `${name}${where} does not exist yet` };
  }
  const at = `${name}${where} is ${current.status} at revision ${current.revision}`;
  const canCreate = cmd.install || cmd.command === "install";
  switch (current.status) {
    case "deployed":
    case "superseded":
    case "uninstalled":
    case "unknown":
      // Nothing stuck: whatever helm does with such a release, it does without helm-lock too
      // (e.g. `helm install` of a deployed release fails with helm's own message).
      return { action: "proceed", reason: at };
    case "uninstalling":
      return {
        action: "error",
        message: `${Name}${where} is stuck in state "uninstalling" at revision ` +
          `${current.revision}: finish it with "helm uninstall ${cmd.release ?? "<release>"}", ` +
          `then run the command again`,
      };
    case "failed": {
      // Helm upgrades a failed release from its last deployed revision (else from the failed
      // one), so `failed` blocks nothing. A rollback first would only add a revision and a
      // rollout of the old version, and it fails where the failed revision renamed a
      // resource (helm/helm#13437), blocking a deploy helm would have done.
      if (!canCreate || lastGoodRevision(state.history, current.revision) !== undefined) {
        return { action: "proceed", reason: `${at}, which does not block helm ${cmd.command}` };
      }
      break;
    }
    case "pending-upgrade":
    case "pending-rollback": {
      // helm refuses every upgrade of a pending release ("another operation is in progress"):
      // back to the last good revision first (DESIGN §3); recoverRelease unlocks the stale
      // revision when that rollback fails.
      const good = lastGoodRevision(state.history, current.revision);
      if (good !== undefined) {
        return {
          action: "rollback",
          toRevision: good,
          from: { revision: current.revision, status: current.status },
          reason: `${at}; the last good revision is ${good}`,
        };
      }
      break;
    }
    case "pending-install":
      // A first install that never finished: rolling back to an older good revision (one from
      // before an `uninstall --keep-history`) would resurrect what the user removed.
      break;
  }
  if (canCreate) {
    return { action: "uninstall", reason: `${at} with no good revision to roll back to` };
  }
  return {
    action: "error",
    message: `Cannot upgrade ${name}${where}: it is ${current.status} at revision ` +
      `${current.revision} with no good revision to roll back to; add --install to let ` +
      `helm-lock uninstall the stale release and install it again`,
  };
}

/**
 * The revision to roll back to: the newest `deployed` one before `before`, else the newest
 * `superseded` one. `deployed` comes first because helm also marks failed revisions
 * `superseded` (the base of a later upgrade, or of a failed rollback), so a `superseded`
 * revision newer than the `deployed` one was not a good one.
 */
function lastGoodRevision(history: ReleaseRevision[], before: number): number | undefined {
  const older = history.filter((r) => r.revision < before).sort((a, b) => b.revision - a.revision);
  return (older.find((r) => r.status === "deployed") ??
    older.find((r) => r.status === "superseded"))?.revision;
}

/** Options for {@linkcode readRelease} and {@linkcode recoverRelease}. */
export interface ReleaseOptions {
  /** The release namespace, named in error messages. */
  namespace?: string;
  /** Environment for helm on top of the inherited one (see {@linkcode helmCapture}). */
  env?: Record<string, string>;
  /** Aborting stops the running helm with SIGTERM; the call then rejects with the reason. */
  signal?: AbortSignal;
  /** The lock helm runs under, for its nesting marker (`nesting.ts`). */
  lock?: HeldBy;
  /**
   * helm's release records (`secret` and `configmap` drivers, see `storage.ts`): read instead
   * of spawning `helm history`, and edited to unlock a stale pending revision. Without them
   * (other drivers) helm-lock reads with `helm history` and cannot unlock.
   */
  records?: ReleaseRecordsApi;
}

/**
 * Reads the release from helm's records when `opts.records` is given (no helm spawn; the
 * revisions then carry no `updated` or `description`), else, or when reading them fails,
 * with `helm history <release> -o json --max 256` and the user's global flags (`globalArgs`),
 * so it sees the same cluster, namespace, identity and storage driver as the command.
 *
 * @returns `{found: false, history: []}` when helm has no such release.
 * @throws {HelmLockError} {@linkcode ExitCode.Forbidden} when the API server refused us,
 *   {@linkcode ExitCode.Unreachable} when it cannot be reached, else
 *   {@linkcode ExitCode.RecoveryFailed}; the message includes helm's error.
 */
export async function readRelease(
  release: string,
  globalArgs: string[],
  opts: ReleaseOptions = {},
): Promise<ReleaseState> {
  const where = describe(release, opts.namespace);
  let history: ReleaseRevision[] | undefined;
  if (opts.records !== undefined) {
    // On an error helm says best what went wrong (and classify() knows its words): ask it.
    const revisions = await readRevisions(opts.records, release).catch(() => undefined);
    history = revisions?.map((r) => ({ revision: r.revision, status: statusOf(r.status) }));
  }
  if (history === undefined) {
    const args = ["history", release, "-o", "json", "--max", "256", ...globalArgs];
    const res = await helmCapture(args, opts);
    if (res.code === 0) {
      try {
        history = parseHistory(res.stdout);
      } catch (error) {
        throw new HelmLockError(
          ExitCode.RecoveryFailed,
          `Cannot read the state of ${where}: expected a JSON list from "helm history -o json", ` +
            `found ${JSON.stringify(res.stdout.trim().slice(0, 80))}`,
          { cause: error },
        );
      }
    } else if (/\brelease: not found\b/.test(res.stderr)) {
      history = [];
    } else {
      throw new HelmLockError(
        classify(res.stderr),
        `Cannot read the state of ${where}: "helm history" exited with code ${res.code}: ` +
          helmSaid(res.stderr, args),
      );
    }
  }
  const current = history[history.length - 1];
  return current === undefined ? { found: false, history } : { found: true, current, history };
}

/** Parses `helm history -o json`, oldest revision first. */
export function parseHistory(json: string): ReleaseRevision[] {
  const data: unknown = JSON.parse(json);
  if (!Array.isArray(data)) throw new TypeError("Expected a JSON array");
  const history = data.map((entry: unknown): ReleaseRevision => {
    if (typeof entry !== "object" || entry === null) {
      throw new TypeError(`Expected an object per revision: found ${JSON.stringify(entry)}`);
    }
    const e = entry as Record<string, unknown>;
    if (typeof e.revision !== "number" || !Number.isInteger(e.revision)) {
      throw new TypeError(`Expected an integer revision: found ${JSON.stringify(e.revision)}`);
    }
    const rev: ReleaseRevision = { revision: e.revision, status: statusOf(e.status) };
    if (typeof e.updated === "string") rev.updated = e.updated;
    if (typeof e.description === "string") rev.description = e.description;
    return rev;
  });
  return history.sort((a, b) => a.revision - b.revision);
}

/**
 * Carries out a `rollback` or `uninstall` plan with the user's helm and global flags; does
 * nothing for `proceed`. Logs (`log`) what was found (the plan's reason) and what was done,
 * one line each, without the `helm-lock:` prefix.
 *
 * - rollback: `helm rollback <release> <revision>` without `--wait`. Waiting for readiness
 *   is the user's command's business (it runs right after), and a wait here could hang for
 *   the whole `--timeout` on workloads that never get ready. Rollback hooks still run, as
 *   they would in a rollback by hand. The rollback is always tried, never predicted from the
 *   manifests: whether helm can roll back depends on which objects exist (helm/helm#13437
 *   fails only while the renamed-away object is still there), and a rollback that succeeds
 *   removes what the pending revision created, which an unlock would leave behind.
 * - uninstall: `helm uninstall <release> --no-hooks`. The release never finished installing,
 *   so its delete hooks would run against half-created resources; one that fails or hangs
 *   would leave the release `uninstalling`, which is worse than where we started.
 *
 * @throws {HelmLockError} {@linkcode ExitCode.RecoveryFailed} when helm fails (with helm's
 *   error), or for an `error` plan (with its message).
 */
export async function recoverRelease(
  release: string,
  plan: RecoveryPlan,
  globalArgs: string[],
  log: (line: string) => void,
  opts: ReleaseOptions = {},
): Promise<void> {
  const where = describe(release, opts.namespace);
  if (plan.action === "proceed") return;
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
        helmSaid(res.stderr, args),
    );
  }
  // The rollback failed (e.g. helm/helm#13437: the pending revision renamed a resource). What
  // blocks helm is only the pending revision: when helm recorded its failed rollback it
  // already marked that one superseded, and helm proceeds; when it is still pending, it is
  // marked failed in helm's storage (as Flux's helm-controller unlocks), after which helm
  // upgrades from the last deployed revision. Only a pending release in a driver helm-lock
  // cannot edit stops the run.
  const failed = `could not roll back to revision ${rev} (helm: ${helmSaid(res.stderr)})`;
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
        `${helmSaid(res.stderr)}; helm-lock unlocks a stale revision only in the "secret" and ` +
        `"configmap" storage drivers`,
    );
  }
  await markFailed(opts.records, release, current.revision, current.status);
  log(
    `${failed}; marked the stale ${current.status} revision ${current.revision} failed in ` +
      `helm's storage, so helm can proceed`,
  );
}

function describe(release: string, namespace: string | undefined): string {
  return namespace === undefined
    ? `release "${release}"`
    : `release "${release}" in namespace "${namespace}"`;
}

/** The exit code for a failed helm call, judged by helm's error text (both helm 3 and 4). */
export function classify(stderr: string): ExitCode {
  // Helm 3 says "Kubernetes cluster unreachable", Helm 4 "kubernetes cluster unreachable",
  // and both use it for rejected credentials too, so look for authentication words first.
  if (/\bforbidden\b|\bunauthorized\b|provide credentials/i.test(stderr)) {
    return ExitCode.Forbidden;
  }
  if (
    /cluster unreachable|connection refused|no such host|i\/o timeout|network is unreachable/i
      .test(stderr)
  ) {
    return ExitCode.Unreachable;
  }
  return ExitCode.RecoveryFailed;
}

/**
 * helm's error as one line: its `Error:` lines (else all it printed), without the prefix,
 * with the secrets of the `args` helm was given (a `--kube-token`, URL user info) hidden.
 */
export function helmSaid(stderr: string, args: readonly string[] = []): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const errors = lines.filter((l) => l.startsWith("Error:"));
  const text = (errors.length > 0 ? errors : lines)
    .map((l) => l.replace(/^Error:\s*/, ""))
    .join("; ");
  return text === "" ? "no error message" : redactText(text, secretValues(args));
}
