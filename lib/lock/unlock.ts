/**
 * `lock-unlock` (README "Lock status, list and unlock"). A held lock goes only once the API
 * server's own clock says it is not renewed; dead tickets of older helm-locks
 * (`helm-lock.ticket-<n>.<release>`) go too.
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { delay } from "../async.ts";
import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { isStatus } from "../kube/api_error.ts";
import type { KubeClient } from "../kube/rest.ts";
import { kubeLeaseApi, namingFailures } from "./cache.ts";
import { holderInfo, MAX_LEASE_DURATION_MS as WATCH_MS, writtenAt } from "./lease.ts";
import { lockName, PREFIX } from "./names.ts";
import { readLeases } from "./status.ts";
import { isStale, type Ticket, TicketTimings } from "./tickets.ts";

/**
 * Removes the release's dead lock, dead tickets and (with `force`) everything else, saying one
 * line per finding and action.
 *
 * @throws {HelmLockError} {@linkcode ExitCode.Internal} when the holder still renews (without
 *   `force`) or the lock changed hands; API errors as they come (the caller maps them).
 */
export async function unlock(
  client: KubeClient,
  namespace: string,
  release: string,
  opts: { force: boolean; info(line: string): void },
): Promise<void> {
  const who = { namespace, user: client.user, server: client.server };
  const api = namingFailures(kubeLeaseApi(client, namespace), who);
  const found = await readLeases(client, namespace, release, api);
  // Tickets of helm-locks older than the release label.
  const older = (await api.list(`${PREFIX}queue=${release}`)).items;
  const name = lockName(release);
  const lockAt = `${name} in namespace "${namespace}"`;
  const remove = async (lease: V1Lease) => {
    const { name = "", uid = "", resourceVersion = "" } = lease.metadata ?? {};
    try {
      await api.delete(name, { uid, resourceVersion });
      return true;
    } catch (err) {
      if (isStatus(err, 404) || isStatus(err, 409)) return false;
      throw err;
    }
  };
  let removed = 0;
  if (found.lock) removed += await unlockLock(found.lock, found.serverTime) ? 1 : 0;

  const dead = (t: Ticket) => opts.force || isStale(t, found.serverTime);
  for (const t of found.tickets.filter(dead)) {
    if (!await remove(t.lease)) continue;
    removed++;
    const why = isStale(t, found.serverTime) ? "it was not renewed for over a minute" : "--force";
    opts.info(`removed the ticket ${t.name} of ${t.info.identity} from the queue (${why})`);
  }
  for (const lease of older) {
    if (!opts.force && !isStale({ writtenAt: writtenAt(lease) }, found.serverTime)) continue;
    if (await remove(lease)) {
      removed++;
      opts.info(`removed the ticket ${lease.metadata?.name} of an older helm-lock from the queue`);
    }
  }
  const live = found.tickets.length - found.tickets.filter(dead).length;
  if (live > 0) {
    opts.info(
      `${live} waiting job(s) still renew their tickets: left in the queue (--force removes them)`,
    );
  }
  if (found.record && opts.force && await remove(found.record)) {
    removed++;
    opts.info(`removed the deploy record ${found.record.metadata?.name} (--lock-order-key)`);
  }
  if (removed === 0 && live === 0 && !(found.record && !opts.force)) {
    opts.info(`release "${release}" has no lock ${lockAt}: nothing to unlock`);
  }

  async function unlockLock(lock: V1Lease, serverTime: number | undefined): Promise<boolean> {
    const holder = holderInfo(lock).identity;
    let current: V1Lease | undefined = lock;
    if (holder && !opts.force) {
      const leaseMs = (lock.spec?.leaseDurationSeconds ?? 15) * 1000;
      const written = writtenAt(lock);
      const left = serverTime === undefined || written === undefined
        ? leaseMs
        : leaseMs + TicketTimings.marginMs - (serverTime - written);
      if (left > 0) {
        // Another party may write an int32's 68 years: that needs --force.
        if (leaseMs > WATCH_MS) {
          throw new HelmLockError(
            ExitCode.Internal,
            `Cannot unlock release "${release}" as its holder ${holder} may still renew the ` +
              `lock ${lockAt}: expected a lease duration of at most ` +
              `${roughDuration(WATCH_MS)} to watch, found ${roughDuration(leaseMs)}; ` +
              `--force removes it and stops that holder's helm`,
          );
        }
        opts.info(
          `watching the lock ${lockAt} for ${roughDuration(left)} (to its lease of ` +
            `${roughDuration(leaseMs)} after its last write, by the API server's clock) to ` +
            `see whether its holder ${holder} still renews it`,
        );
        current = await watchFor(lock, left);
        if (!current) {
          opts.info(`the lock ${lockAt} was released meanwhile`);
          return false;
        }
      }
    }
    for (let attempt = 0;; attempt++) {
      const { uid = "", resourceVersion = "" } = current.metadata ?? {};
      try {
        await api.delete(name, { uid, resourceVersion });
        break;
      } catch (err) {
        if (isStatus(err, 404)) return false;
        if (!isStatus(err, 409) || attempt >= 5) throw err;
        const fresh = await api.get(name);
        if (!fresh) return false;
        if (holderInfo(fresh).identity !== holder || fresh.metadata?.uid !== uid) {
          throw changedHands(holder, holderInfo(fresh).identity);
        }
        current = fresh;
      }
    }
    opts.info(
      !holder
        ? `removed the free lock ${lockAt}`
        : opts.force
        ? `removed the lock ${lockAt} held by ${holder} (--force); if that holder still ` +
          `runs, it stops its helm`
        : `removed the expired lock ${lockAt} of ${holder}, who no longer renewed it`,
    );
    return true;
  }

  /** Reads the lock until `ms` have passed without a renewal; refuses if there is one. */
  async function watchFor(lock: V1Lease, ms: number): Promise<V1Lease | undefined> {
    const holder = holderInfo(lock).identity;
    const key = (l: V1Lease) =>
      JSON.stringify([l.metadata?.uid, l.spec?.holderIdentity, String(l.spec?.renewTime ?? "")]);
    const until = performance.now() + ms;
    let current = lock;
    while (performance.now() < until) {
      await delay(Math.min(500, Math.max(0, until - performance.now())));
      const now = await api.get(name);
      if (!now) return undefined;
      if (key(now) !== key(lock)) {
        const by = holderInfo(now).identity;
        if (by !== holder) throw changedHands(holder, by);
        throw new HelmLockError(
          ExitCode.Internal,
          `Cannot unlock release "${release}" as its holder ${holder} still renews the lock ` +
            `${lockAt}: expected a holder that is gone; --force removes it and stops that ` +
            `holder's helm`,
        );
      }
      current = now;
    }
    return current;
  }

  function changedHands(from: string, to: string): HelmLockError {
    return new HelmLockError(
      ExitCode.Internal,
      `Cannot unlock release "${release}" as the lock ${lockAt} changed hands to ` +
        `${to || "nobody"} meanwhile: expected the holder ${from || "nobody"}; run again`,
    );
  }
}
