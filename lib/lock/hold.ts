/**
 * Holding the lock: renewals, loss detection and a guarded release (docs/design.md "Holding
 * the lock" and §5).
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import { MicroTime } from "../kube/micro_time.ts";
import { action, type Actor, type LeaseApi, type LeaseCache, type Timing } from "./cache.ts";
import { Annotation } from "./identity.ts";
import { holderInfo, holdTimings, isTransient, within } from "./lease.ts";
import { lockName } from "./names.ts";

export interface HeldLock {
  /** Aborts, with a {@linkcode HelmLockError} reason, if the lock is lost. */
  readonly lost: AbortSignal;
  /** Until when the lock is certainly ours (docs/design.md "The fence"); `-Infinity` once lost. */
  validUntil(): number;
  /** Releases the lock. Idempotent; never removes a Lease that is no longer ours. */
  release(): Promise<void>;
}

/** What holding (and waiting) needs; `warn` says once what the user should fix. */
export interface HoldContext extends Timing, Actor {
  api: LeaseApi;
  /** The release's Leases, watched: a delete or takeover is seen at once. */
  cache: LeaseCache;
  release: string;
  identity: string;
  durationSeconds: number;
  warn: (line: string) => void;
}

type Outcome = "ok" | "again" | "timeout" | "retry" | "lost";

export class Held implements HeldLock {
  readonly #ctx: HoldContext;
  readonly #t: ReturnType<typeof holdTimings>;
  readonly #name: string;
  readonly #lost = new AbortController();
  readonly #stop = new AbortController();
  #lease: V1Lease;
  /** When the last successful renewal was sent: others count our expiry from later than that. */
  #renewedAt: number;
  /** Whether the Lease may still be ours after a loss (by deadline or a refused renewal). */
  #mayHold = false;
  #checking = false;
  readonly #loop: Promise<void>;
  #released: Promise<void> | undefined;

  /** `lease`: the lock as our create or takeover wrote it, sent at `sentAt`. */
  constructor(ctx: HoldContext, lease: V1Lease, sentAt: number) {
    this.#ctx = ctx;
    this.#t = holdTimings(ctx.durationSeconds);
    this.#name = lockName(ctx.release);
    this.#lease = lease;
    this.#renewedAt = sentAt;
    ctx.cache.put(lease);
    ctx.cache.changes.addEventListener("change", this.#onChange);
    this.#loop = this.#renewLoop();
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  validUntil(): number {
    if (this.#stop.signal.aborted) return -Infinity;
    return this.#renewedAt + this.#t.renewDeadlineMs;
  }

  release(): Promise<void> {
    // The release's watch served the wait and the hold: it ends with them.
    return this.#released ??= this.#release().finally(() => this.#ctx.cache.stop());
  }

  #lose(reason: string, opts: { cause?: unknown; code?: ExitCode; mayHold?: boolean } = {}): void {
    // A renewal still in flight during release sees our own delete: that is no loss.
    if (this.#lost.signal.aborted || this.#stop.signal.aborted) return;
    const { namespace, release } = this.#ctx;
    this.#mayHold = opts.mayHold ?? false;
    const where = `release "${release}" in namespace "${namespace}" (Lease "${this.#name}")`;
    this.#lost.abort(
      new HelmLockError(
        opts.code ?? ExitCode.LockLost,
        `Lost the lock on ${where}: ${reason}`,
        opts.cause === undefined ? {} : { cause: opts.cause },
      ),
    );
    this.#stop.abort();
  }

  #loseTo(lease: V1Lease | undefined): void {
    if (!lease) return this.#lose("the Lease was deleted by someone else");
    const { identity, ciJobUrl } = holderInfo(lease);
    const job = ciJobUrl ? ` (CI job ${ciJobUrl})` : "";
    this.#lose(
      identity ? `it is now held by "${identity}"${job}` : "it was released by someone else",
    );
  }

  /** The release's watch moved: is the lock still ours? */
  #onChange = (): void => {
    if (this.#stop.signal.aborted) return;
    const seen = this.#ctx.cache.get(this.#name);
    if (seen) {
      if (seen.spec?.holderIdentity !== this.#ctx.identity) this.#loseTo(seen);
      return;
    }
    // Gone from what we know: a delete event, or a list that may predate our write. Ask.
    if (this.#checking) return;
    this.#checking = true;
    within(this.#ctx, this.#ctx.api.get(this.#name)).then((fresh) => {
      if (!fresh || fresh.spec?.holderIdentity !== this.#ctx.identity) this.#loseTo(fresh);
      else this.#ctx.cache.put(fresh);
    }, () => {/* The renewals will tell. */}).finally(() => this.#checking = false);
  };

  /** A renewal's answer, however late: it moves our expiry if it was sent later. */
  #renewed(lease: V1Lease, sentAt: number): void {
    this.#ctx.cache.put(lease);
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
      const lease = roughDuration(this.#ctx.durationSeconds * 1000);
      this.#lose(
        `no renewal succeeded for ${starved}: renewals starved (a loaded machine or API server); ` +
          `a longer --lock-lease-duration (now ${lease}) tolerates longer stalls`,
        { mayHold: true },
      );
      return "lost";
    }
    const { managedFields: _m, ...metadata } = this.#lease.metadata ?? {};
    const renewTime = new MicroTime(clock.date().getTime());
    const renewedBefore = this.#renewedAt;
    const sent = api.replace({
      ...this.#lease,
      metadata,
      spec: { ...this.#lease.spec, renewTime },
    });
    // Counted even when it arrives after we stopped waiting for it.
    sent.then((lease) => this.#renewed(lease, sentAt), () => {});
    try {
      // A renewal answered after the deadline is worth nothing: do not wait longer.
      const budget = Math.max(1, this.#renewedAt + renewDeadlineMs - sentAt);
      await within(this.#ctx, sent, Math.min(budget, renewRequestTimeoutMs));
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
          const fresh = await within(this.#ctx, api.get(this.#name), renewRequestTimeoutMs);
          if (!fresh || fresh.spec?.holderIdentity !== identity) {
            this.#loseTo(fresh);
            return "lost";
          }
          // Still ours, only changed (someone added a label): renew from the new version.
          this.#lease = fresh;
          return "again";
        } catch {
          return "retry";
        }
      }
      if (!isTransient(err)) {
        const refused = apiError(err, action(this.#ctx, "update"));
        this.#lose(`the renewal was refused: ${refused.message}`, {
          cause: refused,
          code: refused.code === ExitCode.Forbidden ? ExitCode.Forbidden : ExitCode.LockLost,
          mayHold: true,
        });
        return "lost";
      }
      return "retry";
    }
  }

  async #release(): Promise<void> {
    // Not waiting for a renewal in flight: if it lands first, the delete's resourceVersion
    // precondition fails and we retry from a fresh read; if it lands after, it finds no Lease.
    const wasLost = this.#lost.signal.aborted;
    this.#stop.abort();
    this.#ctx.cache.changes.removeEventListener("change", this.#onChange);
    this.#loop.catch(() => {});
    if (wasLost && !this.#mayHold) return;
    const { api } = this.#ctx;
    let lease: V1Lease | undefined = this.#lease;
    if (wasLost) {
      lease = await this.#retrying("get", () => api.get(this.#name));
      if (!this.#isOurs(lease)) return;
    }
    for (let attempt = 0;; attempt++) {
      const { uid = "", resourceVersion = "" } = lease.metadata ?? {};
      try {
        await within(this.#ctx, api.delete(this.#name, { uid, resourceVersion }));
        this.#ctx.cache.drop(this.#name);
        return;
      } catch (err) {
        if (isStatus(err, 404)) return;
        if (isStatus(err, 403)) return await this.#clearInstead(err);
        if (isStatus(err, 409) || isStatus(err, 400) || isStatus(err, 422)) {
          const fresh = await within(this.#ctx, api.get(this.#name)).catch(() => undefined);
          if (!this.#isOurs(fresh)) return; // No longer ours: leave it alone.
          if (isStatus(err, 409) && attempt < 5) {
            lease = fresh;
            continue;
          }
          // Delete preconditions unsupported: clearing the holder releases it just as well.
          await this.#clearHolder(fresh).catch(() => {});
          return;
        }
        if (!isTransient(err) || attempt >= 4) throw apiError(err, action(this.#ctx, "delete"));
        await this.#ctx.sleep(200 * 2 ** attempt, new AbortController().signal);
      }
    }
  }

  /** Without `delete`, clearing the holder frees the lock just as well: say once what to grant. */
  async #clearInstead(refused: unknown): Promise<void> {
    const { namespace, user } = this.#ctx;
    const fresh = await this.#retrying("get", () => this.#ctx.api.get(this.#name));
    if (!this.#isOurs(fresh)) return;
    try {
      await this.#clearHolder(fresh);
    } catch (err) {
      if (err instanceof HelmLockError && err.code === ExitCode.Forbidden) {
        throw new HelmLockError(
          ExitCode.Forbidden,
          `Cannot release the lock (Lease "${this.#name}") in namespace "${namespace}" as user ` +
            `"${user}": forbidden to delete and to update leases; grant both, or the lock ` +
            `expires ${this.#ctx.durationSeconds}s after its last renewal`,
          { cause: refused },
        );
      }
      throw err;
    }
    this.#ctx.warn(
      `the Role of user "${user}" lacks "delete" on leases in namespace "${namespace}": ` +
        `released the lock by clearing its holder, and its Lease stays; grant "delete" so ` +
        `helm-lock removes what it made`,
    );
  }

  #isOurs(lease: V1Lease | undefined): lease is V1Lease {
    return !!lease && lease.metadata?.uid === this.#lease.metadata?.uid &&
      lease.spec?.holderIdentity === this.#ctx.identity;
  }

  /** Clears the holder, marked released (older helm-locks wait out a lock cleared without it). */
  async #clearHolder(lease: V1Lease): Promise<V1Lease> {
    const { holderIdentity: _holder, ...spec } = lease.spec ?? {};
    const { managedFields: _m, ...meta } = lease.metadata ?? {};
    const annotations = { ...meta.annotations, [Annotation.released]: "true" };
    const body = { ...lease, metadata: { ...meta, annotations }, spec };
    return await this.#retrying("update", () => this.#ctx.api.replace(body));
  }

  /** Five tries through transient failures. */
  async #retrying<T>(verb: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      try {
        return await within(this.#ctx, call());
      } catch (err) {
        if (!isTransient(err) || attempt >= 4) throw apiError(err, action(this.#ctx, verb));
        await this.#ctx.sleep(200 * 2 ** attempt, new AbortController().signal);
      }
    }
  }
}
