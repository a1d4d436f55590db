/**
 * `helm-lock lock-unlock <release> [--force]`: removes a release's lock safely.
 *
 * - Without `--force` it removes only a lock whose holder is gone: it watches the Lease for
 *   one lease duration (judged by this process's own clock, as waiters judge expiry, never
 *   by comparing clocks with the holder's `renewTime`), and refuses if the holder renewed
 *   meanwhile. A lock without a holder is removed at once.
 * - With `--force` it removes the lock at once, even of a live holder, which notices at its
 *   next renewal and stops its helm with SIGTERM (exit 4).
 *
 * Either way the delete is guarded by the Lease's uid and resourceVersion: a lock that
 * changed hands after it was looked at is never removed.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { delay } from "../async.ts";
import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import { connect } from "../kube/connection.ts";
import { kubeClient } from "../kube/rest.ts";
import { kubeLeaseApi, type LeaseApi } from "../lock/lease_api.ts";
import { commandHelp, LOCK_UNLOCK } from "./help.ts";
import { MAX_LEASE_DURATION_MS } from "./lock_flags.ts";
import { type CommandIO, oneRelease, parseOwnArgs } from "./own_args.ts";
import { programName } from "./program.ts";

/** How often the Lease is read while watching for renewals. */
const POLL_MS = 250;

/** What changes when the holder renews or the lock changes hands. */
function recordKey(lease: V1Lease): string {
  const s = lease.spec ?? {};
  return JSON.stringify([
    lease.metadata?.uid,
    s.holderIdentity ?? "",
    String(s.renewTime ?? ""),
    String(s.acquireTime ?? ""),
  ]);
}

/**
 * Runs `lock-unlock` with the words after the command's name.
 *
 * @returns 0 when the lock is gone (removed, released meanwhile, or there was none), or the
 * help was printed.
 * @throws {HelmLockError} {@linkcode ExitCode.Internal} when the holder still renews and
 * `--force` was not given, or the lock changed hands; 2 for a bad command line; 6 and 7 for
 * an unreachable or refusing API server.
 */
export async function lockUnlock(argv: string[], io: CommandIO): Promise<number> {
  const args = parseOwnArgs(argv, LOCK_UNLOCK);
  if (args.help) {
    io.print(commandHelp(LOCK_UNLOCK, programName()));
    return 0;
  }
  const release = oneRelease(args, LOCK_UNLOCK);
  const force = args.on("force");
  const conn = await connect(args.cluster);
  // One connection for the command's few requests; the process ends right after.
  const client = kubeClient(conn);
  const name = `helm-lock-${release}`;
  const where = `lock ${name} in namespace "${conn.namespace}"`;
  const api: LeaseApi = kubeLeaseApi(client, conn.namespace, name);
  const failed = (verb: string) => (err: unknown) =>
    apiError(err, {
      verb,
      resource: "leases",
      namespace: conn.namespace,
      user: conn.user,
      server: conn.server,
    });
  const get = () => api.get().catch((err) => Promise.reject(failed("get")(err)));

  let lease = await get();
  if (!lease) {
    io.info(`release "${release}" has no ${where}: nothing to unlock`);
    return 0;
  }
  const holder = lease.spec?.holderIdentity ?? "";
  if (holder && !force) {
    // Another party writes the duration: one longer than helm-lock's own longest (an int32
    // holds 68 years) is refused at once instead of watched for years.
    const durationMs = Math.max(1, lease.spec?.leaseDurationSeconds ?? 15) * 1000;
    if (durationMs > MAX_LEASE_DURATION_MS) {
      throw new HelmLockError(
        ExitCode.Internal,
        `Cannot unlock release "${release}" as its holder ${holder} may still renew the ${where}: ` +
          `expected a lease duration of at most ${
            roughDuration(MAX_LEASE_DURATION_MS)
          } to watch, found ` +
          `${roughDuration(durationMs)}; --force removes it and stops that holder's helm`,
      );
    }
    io.info(
      `watching ${where} for ${
        roughDuration(durationMs)
      } (its lease duration) to see whether its holder ${holder} still renews it`,
    );
    const key = recordKey(lease);
    const until = performance.now() + durationMs;
    while (performance.now() < until) {
      await delay(POLL_MS);
      const now = await get();
      if (!now) {
        io.info(`${where} was released meanwhile: nothing to unlock`);
        return 0;
      }
      if (recordKey(now) !== key) {
        const by = now.spec?.holderIdentity ?? "";
        throw new HelmLockError(
          ExitCode.Internal,
          by === holder
            ? `Cannot unlock release "${release}" as its holder ${holder} still renews the ` +
              `${where}: expected a holder that is gone; --force removes it and stops that ` +
              `holder's helm`
            : `Cannot unlock release "${release}" as the ${where} changed hands to ` +
              `${by || "nobody"} meanwhile: expected the holder ${holder}; run again`,
        );
      }
      lease = now;
    }
  }

  for (let attempt = 0;; attempt++) {
    const uid = lease.metadata?.uid ?? "";
    const resourceVersion = lease.metadata?.resourceVersion ?? "";
    try {
      await api.delete({ uid, resourceVersion });
    } catch (err) {
      if (isStatus(err, 404)) {
        io.info(`${where} was released meanwhile: nothing to unlock`);
        return 0;
      }
      if (!isStatus(err, 409) || attempt >= 5) throw failed("delete")(err);
      // Renewed since we read it: with --force, remove it still if the holder is the same.
      const fresh = await get();
      if (!fresh) {
        io.info(`${where} was released meanwhile: nothing to unlock`);
        return 0;
      }
      if ((fresh.spec?.holderIdentity ?? "") !== holder || fresh.metadata?.uid !== uid) {
        throw new HelmLockError(
          ExitCode.Internal,
          `Cannot unlock release "${release}" as the ${where} changed hands to ` +
            `${fresh.spec?.holderIdentity || "nobody"} meanwhile: expected the holder ` +
            `${holder || "nobody"}; run again`,
        );
      }
      lease = fresh;
      continue;
    }
    if (!holder) io.info(`removed the free ${where}`);
    else if (force) {
      io.info(
        `removed the ${where} held by ${holder} (--force); if that holder still runs, it ` +
          `stops its helm when it next renews`,
      );
    } else io.info(`removed the expired ${where} of ${holder}, who no longer renewed it`);
    return 0;
  }
}
