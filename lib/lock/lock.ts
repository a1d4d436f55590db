/**
 * The lock: a `coordination.k8s.io/v1` Lease named `helm-lock-<release>` in the release
 * namespace (shared/DESIGN.md §2).
 *
 * - Acquire: create the Lease, or take it over when its holder is empty or it expired.
 *   Expiry is judged like client-go's leader election: from the local (monotonic) time at
 *   which this process last saw the record change, plus the record's own
 *   `leaseDurationSeconds` — never by comparing our clock with the holder's `renewTime`.
 * - Every write carries the resourceVersion it was based on; a 409 means someone else
 *   moved first: re-read and carry on.
 * - Wait: a watch on the single Lease wakes the waiter as soon as it is released or
 *   deleted; a jittered poll covers a broken watch; failed requests back off (1 s doubling
 *   to 15 s, jittered).
 * - Hold: renew every third of the lease duration; `lost` fires when another holder has the
 *   Lease, it was deleted, or no renewal succeeded for two thirds of the lease duration (the
 *   renew deadline): declared before others may take over, so helm has the rest of the
 *   lease to stop.
 * - Release: clear the holder, then delete guarded by uid and resourceVersion, so a lock
 *   that is no longer ours is never removed, and waiters can tell a release from a Lease
 *   deleted under a live holder (they wait that one out: `wait.ts`).
 * - Validity (`validUntil()`): what the fence (`lib/fence/`) forwards helm's traffic by.
 *
 * @module
 */

import { type V1Lease, V1MicroTime } from "@kubernetes/client-node";
import { delay } from "../async.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import { kubeLeaseApi } from "./lease_api.ts";
import {
  action,
  type Clock,
  isTransient,
  type LockContext,
  LockDefaults,
  request,
  type Sleep,
} from "./context.ts";
import { roughDuration } from "../duration.ts";
import { holderInfo, Waiter } from "./wait.ts";
import { Annotation } from "./identity.ts";
import type { LockHolderInfo, LockOptions, WaitProgress } from "./options.ts";

export { holderInfo, LockDefaults };
export type { Clock, LockHolderInfo, LockOptions, Sleep, WaitProgress };

/** A lock we hold. */
export interface HeldLock {
  /** Aborts, with a {@linkcode HelmLockError} ({@linkcode ExitCode.LockLost}) reason, if the lock is lost. */
  readonly lost: AbortSignal;
  /**
   * Until when the lock is provably ours, on the lock's monotonic clock (`performance.now()`
   * ms by default): the send time of the last successful renewal plus the renew deadline
   * (two thirds of the lease), so always before any waiter may take over. `-Infinity` once
   * the lock is lost or being released.
   */
  validUntil(): number;
  /** Releases the lock. Idempotent; never removes a Lease that is no longer ours. */
  release(): Promise<void>;
}

/**
 * Acquires the lock for a release, waiting up to `timeoutMs`.
 *
 * @param options What to lock and how long to wait.
 * @returns The held lock; call `release()` on every exit path.
 * @throws {HelmLockError} {@linkcode ExitCode.LockTimeout} when the wait times out (the
 * message names the holder, its CI job, since when, and `--lock-timeout`);
 * {@linkcode ExitCode.Forbidden} or {@linkcode ExitCode.Unreachable} when the API server
 * refuses or cannot be reached.
 * @throws {unknown} `signal.reason` when `signal` aborts; nothing is left held.
 */
export async function acquireLock(options: LockOptions): Promise<HeldLock> {
  const name = `helm-lock-${options.release}`;
  const kc = options.kubeConfig;
  const kubeUser = kc.getCurrentUser();
  const ctx: LockContext = {
    api: options.api ?? kubeLeaseApi(kc, options.namespace, name),
    name,
    namespace: options.namespace,
    release: options.release,
    identity: options.identity,
    annotations: options.annotations,
    durationSeconds: options.leaseDurationSeconds ?? LockDefaults.leaseDurationSeconds,
    clock: options.clock ?? { now: () => performance.now(), date: () => new Date() },
    sleep: options.sleep ?? ((ms, signal) => delay(ms, { signal })),
    random: options.random ?? Math.random,
    user: options.user ?? kubeUser?.impersonateUser ?? kubeUser?.name ?? "unknown",
    server: options.server ?? kc.getCurrentCluster()?.server ?? "unknown",
  };
  if (!(ctx.durationSeconds >= 1) || !Number.isInteger(ctx.durationSeconds)) {
    throw new RangeError(
      `Cannot lock as 'leaseDurationSeconds' must be a positive integer: current value is ${ctx.durationSeconds}`,
    );
  }
  const waiter = new Waiter(ctx, options);
  const { lease, sentAt } = await waiter.run();
  const held = new Held(ctx, lease, sentAt);
  if (options.signal?.aborted) {
    // Aborted while our create/takeover was in flight: hand the lock straight back.
    await held.release();
    throw options.signal.reason;
  }
  return held;
}

/** The holding side: renewals, loss detection and release. */
class Held implements HeldLock {
  readonly #ctx: LockContext;
  readonly #lost = new AbortController();
  readonly #stop = new AbortController();
  #lease: V1Lease;
  /** When the last successful renewal was sent: others count our expiry from later than that. */
  #renewedAt: number;
  readonly #loop: Promise<void>;
  #released: Promise<void> | undefined;

  constructor(ctx: LockContext, lease: V1Lease, sentAt: number) {
    this.#ctx = ctx;
    this.#lease = lease;
    this.#renewedAt = sentAt;
    this.#loop = this.#renewLoop();
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  validUntil(): number {
    if (this.#stop.signal.aborted) return -Infinity;
    return this.#renewedAt + (this.#ctx.durationSeconds * 1000 * 2) / 3;
  }

  release(): Promise<void> {
    return this.#released ??= this.#release();
  }

  #lose(reason: string, cause?: unknown): void {
    // A renewal still in flight during release sees our own delete: that is no loss.
    if (this.#lost.signal.aborted || this.#stop.signal.aborted) return;
    const { name, namespace, release } = this.#ctx;
    this.#lost.abort(
      new HelmLockError(
        ExitCode.LockLost,
        `Lost the lock on release "${release}" in namespace "${namespace}" (Lease "${name}"): ${reason}`,
        cause === undefined ? {} : { cause },
      ),
    );
    this.#stop.abort();
  }

  async #renewLoop(): Promise<void> {
    const { clock, sleep, durationSeconds } = this.#ctx;
    const durationMs = durationSeconds * 1000;
    const intervalMs = durationMs / 3;
    // Like client-go's renew deadline (10 s of a 15 s lease): a waiter may take over right
    // at expiry, and helm needs time to stop after SIGTERM, so loss is declared earlier.
    const deadlineMs = (durationMs * 2) / 3;
    let waitMs = intervalMs;
    while (!this.#stop.signal.aborted) {
      // Never sleep past the renew deadline.
      const untilLoss = this.#renewedAt + deadlineMs - clock.now();
      try {
        await sleep(Math.max(0, Math.min(waitMs, untilLoss)), this.#stop.signal);
      } catch {
        return;
      }
      const outcome = await this.#renewOnce(deadlineMs);
      waitMs = outcome === "ok" ? intervalMs : outcome === "again" ? 0 : intervalMs / 4;
    }
  }

  async #renewOnce(deadlineMs: number): Promise<"ok" | "again" | "retry" | "lost"> {
    const { api, clock, identity } = this.#ctx;
    const sentAt = clock.now();
    if (sentAt - this.#renewedAt >= deadlineMs) {
      this.#lose(`no renewal succeeded for ${roughDuration(sentAt - this.#renewedAt)}`);
      return "lost";
    }
    const { managedFields: _managed, ...meta } = this.#lease.metadata ?? {};
    const body: V1Lease = {
      ...this.#lease,
      metadata: meta,
      spec: { ...this.#lease.spec, renewTime: new V1MicroTime(clock.date().getTime()) },
    };
    try {
      // A renewal answered after the deadline is worth nothing: do not wait longer.
      const budget = Math.max(1, this.#renewedAt + deadlineMs - sentAt);
      this.#lease = await request(this.#ctx, api.replace(body), budget);
      this.#renewedAt = sentAt;
      return "ok";
    } catch (err) {
      if (this.#stop.signal.aborted) return "lost";
      if (isStatus(err, 404)) {
        this.#lose("the Lease was deleted by someone else");
        return "lost";
      }
      if (isStatus(err, 409)) {
        try {
          const fresh = await request(this.#ctx, api.get());
          if (!fresh) {
            this.#lose("the Lease was deleted by someone else");
            return "lost";
          }
          if (fresh.spec?.holderIdentity !== identity) {
            const holder = holderInfo(fresh);
            this.#lose(
              holder.identity
                ? `it is now held by "${holder.identity}"${
                  holder.ciJobUrl ? ` (CI job ${holder.ciJobUrl})` : ""
                }`
                : "it was released by someone else",
            );
            return "lost";
          }
          // Still ours, only changed (say, someone edited a label): renew from the new version.
          this.#lease = fresh;
          return "again";
        } catch {
          return "retry";
        }
      }
      if (!isTransient(err)) {
        this.#lose(
          "the API server refused the renewal",
          apiError(err, action(this.#ctx, "update")),
        );
        return "lost";
      }
      return "retry";
    }
  }

  async #release(): Promise<void> {
    // Not waiting for a renewal in flight: if it lands first, the delete's resourceVersion
    // precondition fails and we retry from a fresh read; if it lands after, it finds no Lease.
    this.#stop.abort();
    this.#loop.catch(() => {});
    if (this.#lost.signal.aborted) return;
    const { api, identity, sleep } = this.#ctx;
    let lease = this.#lease;
    // Clear the holder first (client-go's ReleaseOnCancel), then delete: waiters take a
    // released Lease at once, but one deleted while held only once it would have expired,
    // as its holder may still be able to write until then (wait.ts).
    const clear = (l: V1Lease) => {
      const { holderIdentity: _holder, ...spec } = l.spec ?? {};
      const { managedFields: _managed, ...meta } = l.metadata ?? {};
      const annotations = { ...meta.annotations, [Annotation.released]: "true" };
      const body = { ...l, metadata: { ...meta, annotations }, spec };
      return request(this.#ctx, api.replace(body)).catch(() => l);
    };
    lease = await clear(lease);
    for (let attempt = 0;; attempt++) {
      const uid = lease.metadata?.uid ?? "";
      const resourceVersion = lease.metadata?.resourceVersion ?? "";
      try {
        await request(this.#ctx, api.delete({ uid, resourceVersion }));
        return;
      } catch (err) {
        if (isStatus(err, 404)) return;
        if (isStatus(err, 409) || isStatus(err, 400) || isStatus(err, 422)) {
          const fresh = await request(this.#ctx, api.get()).catch(() => undefined);
          const holder = fresh?.spec?.holderIdentity;
          if (!fresh || fresh.metadata?.uid !== uid || (holder && holder !== identity)) {
            return; // No longer ours: leave it alone.
          }
          if (isStatus(err, 409) && attempt < 5) {
            lease = holder ? await clear(fresh) : fresh;
            continue;
          }
          // Delete preconditions unsupported: clearing the holder releases it just as well.
          const { holderIdentity: _holder, ...spec } = fresh.spec ?? {};
          const cleared = { ...fresh, spec };
          await request(this.#ctx, api.replace(cleared)).catch(() => {});
          return;
        }
        if (!isTransient(err) || attempt >= 4) throw apiError(err, action(this.#ctx, "delete"));
        await sleep(200 * 2 ** attempt, new AbortController().signal);
      }
    }
  }
}
