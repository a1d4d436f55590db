/**
 * The holding side of the lock: renewals, loss detection, the watch on our own Lease and
 * release (DESIGN §2).
 *
 * - Renew every retry period (2 s of a 15 s lease), each renewal waiting at most half the
 *   renew deadline for an answer; a timed-out renewal is followed by another at once, and
 *   its late answer still counts. So an API server stall shorter than the renew deadline
 *   minus the retry period (8 s) loses nothing, whenever it starts.
 * - Loss: no renewal sent within the renew deadline succeeded, the Lease was deleted or
 *   taken over (seen at once through a watch on the Lease; renewals are the fallback),
 *   or the API server refuses the renewal (401/403: exit 7, naming verb and user).
 * - Release: delete guarded by uid and resourceVersion, so a Lease that is no longer ours
 *   is never removed; without `delete` permission, clear the holder (`update`) and say once
 *   which verb is missing. After a loss by deadline the Lease may still be ours (a late
 *   renewal landed): it is looked up and released all the same.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { MicroTime } from "../kube/micro_time.ts";
import { Annotation } from "./identity.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import { roughDuration } from "../duration.ts";
import {
  action,
  type HoldTimings,
  holdTimings,
  isTransient,
  type LockContext,
  request,
} from "./context.ts";
import type { LeaseEvent } from "./lease_api.ts";
import { holderInfo } from "./wait.ts";

/** A lock we hold. */
export interface HeldLock {
  /** Aborts, with a {@linkcode HelmLockError} ({@linkcode ExitCode.LockLost}) reason, if the lock is lost. */
  readonly lost: AbortSignal;
  /**
   * Until when (monotonic `performance.now()` milliseconds, or the injected clock's) the lock
   * is certainly ours: the send time of the last successful renewal plus the renew deadline.
   * `-Infinity` once the lock is lost or released.
   */
  validUntil(): number;
  /** Releases the lock. Idempotent; never removes a Lease that is no longer ours. */
  release(): Promise<void>;
}

/** Waits before re-opening our own Lease's watch after a failure, then the last one. */
const WATCH_RETRY_MS = [1_000, 2_000, 5_000, 10_000];

type Outcome = "ok" | "again" | "timeout" | "retry" | "lost";

/** The holding side: renewals, loss detection and release. */
export class Held implements HeldLock {
  readonly #ctx: LockContext;
  readonly #t: HoldTimings;
  readonly #lost = new AbortController();
  readonly #stop = new AbortController();
  #lease: V1Lease;
  /** When the last successful renewal was sent: others count our expiry from later than that. */
  #renewedAt: number;
  /** Whether the Lease may still be ours after a loss (by deadline, or a late renewal). */
  #mayHold = false;
  readonly #loop: Promise<void>;
  readonly #watch: Promise<void>;
  #released: Promise<void> | undefined;

  constructor(ctx: LockContext, lease: V1Lease, sentAt: number) {
    this.#ctx = ctx;
    this.#t = holdTimings(ctx.durationSeconds);
    this.#lease = lease;
    this.#renewedAt = sentAt;
    this.#loop = this.#renewLoop();
    this.#watch = this.#watchLoop();
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  validUntil(): number {
    if (this.#stop.signal.aborted) return -Infinity;
    return this.#renewedAt + this.#t.renewDeadlineMs;
  }

  release(): Promise<void> {
    return this.#released ??= this.#release();
  }

  #lose(reason: string, opts: { cause?: unknown; code?: ExitCode; mayHold?: boolean } = {}): void {
    // A renewal still in flight during release sees our own delete: that is no loss.
    if (this.#lost.signal.aborted || this.#stop.signal.aborted) return;
    const { name, namespace, release } = this.#ctx;
    this.#mayHold = opts.mayHold ?? false;
    this.#lost.abort(
      new HelmLockError(
        opts.code ?? ExitCode.LockLost,
        `Lost the lock on release "${release}" in namespace "${namespace}" (Lease "${name}"): ${reason}`,
        opts.cause === undefined ? {} : { cause: opts.cause },
      ),
    );
    this.#stop.abort();
  }

  #loseTo(lease: V1Lease | undefined): void {
    if (!lease) return this.#lose("the Lease was deleted by someone else");
    const holder = holderInfo(lease);
    this.#lose(
      holder.identity
        ? `it is now held by "${holder.identity}"${
          holder.ciJobUrl ? ` (CI job ${holder.ciJobUrl})` : ""
        }`
        : "it was released by someone else",
    );
  }

  /** A renewal's answer, however late: it moves our expiry if it was sent later. */
  #renewed(lease: V1Lease, sentAt: number): void {
    if (this.#stop.signal.aborted) {
      // Declared lost (or releasing) already, but this write made us the holder again.
      if (this.#lost.signal.aborted) this.#mayHold = true;
      this.#lease = lease;
      return;
    }
    if (sentAt >= this.#renewedAt) {
      this.#renewedAt = sentAt;
      this.#lease = lease;
    }
  }

  async #renewLoop(): Promise<void> {
    const { clock, sleep } = this.#ctx;
    const { retryPeriodMs, renewDeadlineMs } = this.#t;
    let waitMs = retryPeriodMs;
    while (!this.#stop.signal.aborted) {
      // Never sleep past the renew deadline.
      const untilLoss = this.#renewedAt + renewDeadlineMs - clock.now();
      try {
        await sleep(Math.max(0, Math.min(waitMs, untilLoss)), this.#stop.signal);
      } catch {
        return;
      }
      const outcome = await this.#renewOnce();
      // A timed-out renewal is followed by another at once: the stall may be over.
      waitMs = outcome === "again" || outcome === "timeout" ? 0 : retryPeriodMs;
    }
  }

  async #renewOnce(): Promise<Outcome> {
    const { api, clock, identity } = this.#ctx;
    const { renewDeadlineMs, renewRequestTimeoutMs } = this.#t;
    const sentAt = clock.now();
    if (sentAt - this.#renewedAt >= renewDeadlineMs) {
      // Usually a starved process or API server, not a taker: say what to raise.
      const starved = roughDuration(sentAt - this.#renewedAt);
      this.#lose(
        `no renewal succeeded for ${starved}: renewals starved (a loaded machine or API server); ` +
          `a longer --lock-lease-duration (now ${
            roughDuration(this.#ctx.durationSeconds * 1000)
          }) ` +
          `tolerates longer stalls`,
        { mayHold: true },
      );
      return "lost";
    }
    const { managedFields: _managed, ...meta } = this.#lease.metadata ?? {};
    const body: V1Lease = {
      ...this.#lease,
      metadata: meta,
      spec: { ...this.#lease.spec, renewTime: new MicroTime(clock.date().getTime()) },
    };
    const renewedBefore = this.#renewedAt;
    const sent = api.replace(body);
    // Counted even when it arrives after we stopped waiting for it.
    sent.then((lease) => this.#renewed(lease, sentAt), () => {});
    try {
      // A renewal answered after the deadline is worth nothing: do not wait longer.
      const budget = Math.max(1, this.#renewedAt + renewDeadlineMs - sentAt);
      await request(this.#ctx, sent, Math.min(budget, renewRequestTimeoutMs));
      return "ok";
    } catch (err) {
      if (this.#stop.signal.aborted) return "lost";
      if (err instanceof DOMException && err.name === "TimeoutError") return "timeout";
      if (isStatus(err, 404)) {
        this.#lose("the Lease was deleted by someone else");
        return "lost";
      }
      if (isStatus(err, 409)) {
        // A late answer to an earlier renewal moved the Lease on: renew from it.
        if (this.#renewedAt !== renewedBefore) return "again";
        try {
          const fresh = await request(this.#ctx, api.get(), renewRequestTimeoutMs);
          if (!fresh || fresh.spec?.holderIdentity !== identity) {
            this.#loseTo(fresh);
            return "lost";
          }
          // Still ours, only changed (say, someone edited a label): renew from the new version.
          this.#lease = fresh;
          return "again";
        } catch {
          return "retry";
        }
      }
      if (isStatus(err, 401) || isStatus(err, 403)) {
        const refused = apiError(err, action(this.#ctx, "update"));
        this.#lose(`the renewal was refused: ${refused.message}`, {
          cause: refused,
          code: ExitCode.Forbidden,
        });
        return "lost";
      }
      if (!isTransient(err)) {
        const refused = apiError(err, action(this.#ctx, "update"));
        this.#lose(`the renewal was refused: ${refused.message}`, { cause: refused });
        return "lost";
      }
      return "retry";
    }
  }

  /** Watches our own Lease, so a delete or takeover stops helm at once. */
  async #watchLoop(): Promise<void> {
    const { api, identity, sleep } = this.#ctx;
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      let events = 0;
      try {
        const rv = this.#lease.metadata?.resourceVersion ?? "";
        const { ended } = await api.watch(rv, (e: LeaseEvent) => {
          events++;
          if (e.type === "DELETED") this.#loseTo(undefined);
          else if (e.type === "ADDED" || e.type === "MODIFIED") {
            if (e.object.spec?.holderIdentity !== identity) this.#loseTo(e.object);
          }
        }, signal);
        await ended;
      } catch {
        // Renewals notice a delete or takeover too, only later: re-open after a pause.
      }
      if (signal.aborted) return;
      const wait = events > 0 ? 0 : WATCH_RETRY_MS[Math.min(failures++, 3)] ?? 10_000;
      if (events > 0) failures = 0;
      await sleep(wait, signal).catch(() => {});
    }
  }

  async #release(): Promise<void> {
    // Not waiting for a renewal in flight: if it lands first, the delete's resourceVersion
    // precondition fails and we retry from a fresh read; if it lands after, it finds no Lease.
    const wasLost = this.#lost.signal.aborted;
    this.#stop.abort();
    this.#loop.catch(() => {});
    this.#watch.catch(() => {});
    if (wasLost && !this.#mayHold) return;
    const { api, identity, sleep } = this.#ctx;
    let lease: V1Lease | undefined = this.#lease;
    if (wasLost) {
      // Declared lost by the deadline: a renewal may have landed since. Release it if so.
      lease = await this.#retrying("get", () => api.get());
      if (!this.#isOurs(lease)) return;
    }
    // Clear the holder first (client-go's ReleaseOnCancel), marked released, then delete:
    // waiters take a released Lease at once, but one deleted while held only once it would
    // have expired, as its holder may still be able to write until then (wait.ts).
    let clearError: unknown;
    lease = await this.#clearHolder(lease).catch((err) => {
      clearError = err;
      return lease;
    });
    for (let attempt = 0;; attempt++) {
      const uid = lease?.metadata?.uid ?? "";
      const resourceVersion = lease?.metadata?.resourceVersion ?? "";
      try {
        await request(this.#ctx, api.delete({ uid, resourceVersion }));
        return;
      } catch (err) {
        if (isStatus(err, 404)) return;
        if (isStatus(err, 403)) {
          // Neither `update` (the clear above) nor `delete`: say so, naming `update`.
          if (clearError instanceof HelmLockError && clearError.code === ExitCode.Forbidden) {
            throw clearError;
          }
          // Without `delete`, clearing the holder frees the lock just as well.
          const fresh = await this.#retrying("get", () => api.get());
          if (!this.#isOurs(fresh, true)) return;
          if (fresh.spec?.holderIdentity) await this.#clearHolder(fresh);
          this.#ctx.warn(
            `the Role of user "${this.#ctx.user}" lacks "delete" on leases in namespace "${this.#ctx.namespace}": released the lock by clearing its holder instead; grant "delete" so the Lease is removed`,
          );
          return;
        }
        if (isStatus(err, 409) || isStatus(err, 400) || isStatus(err, 422)) {
          const fresh = await request(this.#ctx, api.get()).catch(() => undefined);
          const holder = fresh?.spec?.holderIdentity;
          if (!fresh || fresh.metadata?.uid !== uid || (holder && holder !== identity)) {
            return; // No longer ours: leave it alone.
          }
          if (isStatus(err, 409) && attempt < 5) {
            lease = holder ? await this.#clearHolder(fresh).catch(() => fresh) : fresh;
            continue;
          }
          // Delete preconditions unsupported: clearing the holder releases it just as well.
          await this.#clearHolder(fresh).catch(() => {});
          return;
        }
        if (!isTransient(err) || attempt >= 4) throw apiError(err, action(this.#ctx, "delete"));
        await sleep(200 * 2 ** attempt, new AbortController().signal);
      }
    }
  }

  /** Our Lease, still held by us (or, with `cleared`, released by us and not taken since). */
  #isOurs(lease: V1Lease | undefined, cleared = false): lease is V1Lease {
    const holder = lease?.spec?.holderIdentity;
    return !!lease && lease.metadata?.uid === this.#lease.metadata?.uid &&
      (holder === this.#ctx.identity ||
        (cleared && !holder && lease.metadata?.annotations?.[Annotation.released] === "true"));
  }

  /** Clears the holder, marked released so waiters take it at once; returns the new Lease. */
  async #clearHolder(lease: V1Lease): Promise<V1Lease> {
    const { holderIdentity: _holder, ...spec } = lease.spec ?? {};
    const { managedFields: _managed, ...meta } = lease.metadata ?? {};
    const metadata = {
      ...meta,
      annotations: { ...meta.annotations, [Annotation.released]: "true" },
    };
    return await this.#retrying(
      "update",
      () => this.#ctx.api.replace({ ...lease, metadata, spec }),
    );
  }

  /** A request retried through transient failures (five tries), mapped on failure. */
  async #retrying<T>(verb: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      try {
        return await request(this.#ctx, call());
      } catch (err) {
        if (!isTransient(err) || attempt >= 4) throw apiError(err, action(this.#ctx, verb));
        await this.#ctx.sleep(200 * 2 ** attempt, new AbortController().signal);
      }
    }
  }
}
