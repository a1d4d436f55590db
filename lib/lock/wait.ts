/**
 * The waiting side of the lock: observe the Lease (watch + jittered poll), judge expiry by
 * local observation time, and try to create or take over the Lease when it is free.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { Annotation } from "./identity.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import type { LeaseEvent } from "./lease_api.ts";
import type { LockHolderInfo, LockOptions } from "./options.ts";
import {
  action,
  holderLease,
  isTransient,
  type LockContext,
  missingNamespace,
  request,
} from "./context.ts";

/** Waiting tunables. The poll intervals keep a waiter at ≤ 6 API requests a minute. */
export const WaitTimings = {
  progressMs: 10_000,
  /** Safety re-read while the watch is healthy. */
  pollWatchingMs: 60_000,
  /** Re-read while the watch is down. */
  pollFallbackMs: 15_000,
  /**
   * After a failed request, no request (read or write) before this long, doubling with
   * each further failure up to `retryMaxMs`, then that over and over.
   */
  retryFirstMs: 1_000,
  retryMaxMs: 15_000,
  /** Waits before re-opening a failed watch, then the last one over and over. */
  watchRetryMs: [2_000, 10_000, 30_000, 60_000],
  /** A watch that ends sooner than this without events counts as failed (backs off). */
  watchMinLifeMs: 5_000,
} as const;

function toDate(value: unknown): Date | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const date = value instanceof Date ? value : new Date(String(value));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Reads the holder and its annotations from a Lease. */
export function holderInfo(lease: V1Lease): LockHolderInfo {
  const a = lease.metadata?.annotations ?? {};
  const info: LockHolderInfo = { identity: lease.spec?.holderIdentity ?? "" };
  const set = (key: "ciJobUrl" | "user" | "host" | "command", value: string | undefined) => {
    if (value) info[key] = value;
  };
  set("ciJobUrl", a[Annotation.ciJobUrl]);
  set("user", a[Annotation.user]);
  set("host", a[Annotation.host]);
  set("command", a[Annotation.command]);
  const since = toDate(a[Annotation.startedAt]) ?? toDate(lease.spec?.acquireTime);
  if (since) info.since = since;
  return info;
}

/** What changes when the holder renews or hands over; equal keys mean "no news". */
function recordKey(lease: V1Lease | undefined): string {
  if (!lease) return "absent";
  const s = lease.spec ?? {};
  const time = (t: unknown) => toDate(t)?.toISOString() ?? String(t ?? "");
  return JSON.stringify([
    s.holderIdentity ?? "",
    time(s.renewTime),
    time(s.acquireTime),
    s.leaseDurationSeconds ?? null,
    s.leaseTransitions ?? null,
    lease.metadata?.uid ?? "",
  ]);
}

/** One wait for the lock. */
export class Waiter {
  readonly #ctx: LockContext;
  readonly #opts: LockOptions;
  #lease: V1Lease | undefined;
  #rv = "";
  #observedKey = "";
  #observedAt = 0;
  /** When we last heard the Lease's state from the server (a read or a watch event). */
  #syncedAt = -Infinity;
  /**
   * Set while `#lease` is the last held state of a Lease whose holder vanished without a
   * release; `actual` is what the server has now (absent, or without holder): write on that.
   */
  #vanished: { actual: V1Lease | undefined } | undefined;
  #watching = false;
  #relist = false;
  /** Set by watch events, so one arriving during a request is not slept through. */
  #dirty = false;
  #wake: AbortController | undefined;
  /** Requests that failed in a row; no request is sent before `#retryAt`. */
  #failures = 0;
  #retryAt = -Infinity;

  constructor(ctx: LockContext, opts: LockOptions) {
    this.#ctx = ctx;
    this.#opts = opts;
  }

  /** The queue moved: look again whether it is our turn. */
  #onTurn = (): void => {
    this.#dirty = true;
    this.#wake?.abort();
  };

  /**
   * Since when the lock is free by what we saw: its release or deletion, or its expiry.
   * Local observation times only, like the expiry itself.
   */
  #freeSince(lease: V1Lease | undefined): number {
    const holder = lease?.spec?.holderIdentity;
    return lease && holder && holder !== this.#ctx.identity
      ? this.#expiresAt(lease)
      : this.#observedAt;
  }

  /** When the queue lets us take the lock once it is free (see `LockTurn`). */
  #turnAt(lease: V1Lease | undefined): number {
    return this.#freeSince(lease) + (this.#opts.turn?.graceMs() ?? 0);
  }

  #observe(lease: V1Lease | undefined): void {
    const last = this.#lease;
    const heldByOther = (l: V1Lease | undefined) =>
      !!l?.spec?.holderIdentity && l.spec.holderIdentity !== this.#ctx.identity;
    const vanished = !lease ||
      (!lease.spec?.holderIdentity && !lease.metadata?.annotations?.[Annotation.released]);
    if (last && vanished && (this.#vanished || heldByOther(last))) {
      // Deleted or cleared while held, not released by its holder (a release marks it): that
      // holder may still write until its renew deadline, so the Lease counts as held until
      // it would have expired by our observation — by then its fence has cut helm off.
      this.#vanished = { actual: lease };
      if (lease?.metadata?.resourceVersion) this.#rv = lease.metadata.resourceVersion;
      this.#syncedAt = this.#ctx.clock.now();
      return;
    }
    this.#vanished = undefined;
    this.#lease = lease;
    if (lease?.metadata?.resourceVersion) this.#rv = lease.metadata.resourceVersion;
    this.#syncedAt = this.#ctx.clock.now();
    const key = recordKey(lease);
    if (key !== this.#observedKey) {
      this.#observedKey = key;
      this.#observedAt = this.#ctx.clock.now();
    }
    // The server answers and there is nothing to write: a later failure starts a fresh
    // backoff. Not while the Lease is free: then reads may work while our writes fail.
    if (lease && !this.#isFree(lease, this.#ctx.clock.now())) this.#failures = 0;
  }

  #onEvent = (event: LeaseEvent): void => {
    const rv = event.object?.metadata?.resourceVersion;
    switch (event.type) {
      case "ADDED":
      case "MODIFIED":
        this.#observe(event.object);
        break;
      case "DELETED":
        this.#observe(undefined);
        break;
      case "BOOKMARK":
        if (rv) this.#rv = rv;
        return;
      case "ERROR":
        // 410 Gone: our resourceVersion is too old to resume from; read afresh.
        this.#relist = true;
        return;
      default:
        return;
    }
    if (rv) this.#rv = rv;
    this.#dirty = true;
    this.#wake?.abort();
  };

  async #watchLoop(signal: AbortSignal): Promise<void> {
    const { api, clock, sleep } = this.#ctx;
    let failures = 0;
    while (!signal.aborted) {
      const openedAt = clock.now();
      let events = 0;
      let opened = false;
      try {
        if (this.#relist) {
          this.#relist = false;
          this.#observe(await request(this.#ctx, api.get()));
        }
        const { ended } = await api.watch(this.#rv, (e) => {
          events++;
          this.#onEvent(e);
        }, signal);
        opened = this.#watching = true;
        // Ends on the server's timeout, client-node's 30 s inactivity limit, or an error.
        await ended;
      } catch {
        // Handled below: reconnect, with a backoff unless the watch had been useful.
      }
      this.#watching = false;
      if (signal.aborted) return;
      this.#wake?.abort(); // Let the waiter switch to the fallback poll rate.
      if (opened && (events > 0 || clock.now() - openedAt >= WaitTimings.watchMinLifeMs)) {
        failures = 0;
        continue;
      }
      const retries = WaitTimings.watchRetryMs;
      const wait = retries[Math.min(failures++, retries.length - 1)] ?? 60_000;
      await sleep(this.#jitter(wait), signal).catch(() => {});
    }
  }

  #jitter(ms: number): number {
    return ms * (0.75 + 0.5 * this.#ctx.random());
  }

  /**
   * Backs off after a transient failure. Without it a Lease that expired while the API
   * server fails (5xx, down) would be retried at once, over and over: its expiry has passed.
   */
  #failed(err: unknown): void {
    if (!isTransient(err)) throw apiError(err, action(this.#ctx, "get"));
    const { retryFirstMs, retryMaxMs } = WaitTimings;
    const backoff = Math.min(retryFirstMs * 2 ** Math.min(this.#failures++, 16), retryMaxMs);
    this.#retryAt = this.#ctx.clock.now() + this.#jitter(backoff);
  }

  #expiresAt(lease: V1Lease): number {
    const seconds = lease.spec?.leaseDurationSeconds ?? this.#ctx.durationSeconds;
    return this.#observedAt + seconds * 1000;
  }

  #isFree(lease: V1Lease, now: number): boolean {
    const holder = lease.spec?.holderIdentity;
    return !holder || holder === this.#ctx.identity || now >= this.#expiresAt(lease);
  }

  /** Creates or takes over the Lease if it is free; `undefined` when someone holds it. */
  async #tryAcquire(): Promise<{ lease: V1Lease; sentAt: number } | undefined> {
    const { api, clock } = this.#ctx;
    const lease = this.#lease;
    const sentAt = clock.now();
    if (lease && !this.#isFree(lease, sentAt)) return undefined;
    if (sentAt < this.#turnAt(lease)) return undefined;
    if (
      lease?.spec?.holderIdentity && !this.#vanished && !this.#watching &&
      this.#syncedAt < this.#expiresAt(lease)
    ) {
      // Expired by what we knew, but without a watch we may have missed renewals: look first.
      this.#observe(await request(this.#ctx, api.get()));
      return undefined;
    }
    const base = this.#vanished ? this.#vanished.actual : lease;
    const verb = base ? "update" : "create";
    try {
      const body = holderLease(this.#ctx, base);
      const written = await request(this.#ctx, base ? api.replace(body) : api.create(body));
      return { lease: written, sentAt };
    } catch (err) {
      if (isStatus(err, 409)) {
        this.#observe(await request(this.#ctx, api.get())); // Someone moved first.
        return undefined;
      }
      if (isStatus(err, 404) && base) {
        this.#observe(undefined);
        return undefined;
      }
      if (isStatus(err, 404)) {
        const { release, namespace } = this.#ctx;
        throw missingNamespace(release, namespace, this.#opts.createNamespaceHint, err);
      }
      throw err instanceof HelmLockError ? err : isTransient(err) ? err : apiError(err, {
        ...action(this.#ctx, verb),
      });
    }
  }

  #timeoutError(waitedMs: number): HelmLockError {
    const { name, namespace, release } = this.#ctx;
    const lease = this.#lease;
    const holder = lease ? holderInfo(lease) : undefined;
    let who = "an unknown holder";
    if (holder?.identity) {
      const details = [
        holder.ciJobUrl ? `CI job ${holder.ciJobUrl}` : "no CI job recorded",
        holder.user ? `user ${holder.user}` : undefined,
        holder.host ? `host ${holder.host}` : undefined,
      ].filter((d) => d).join(", ");
      const since = holder.since ? ` since ${holder.since.toISOString()}` : "";
      who = `"${holder.identity}" (${details})${since}`;
    }
    return new HelmLockError(
      ExitCode.LockTimeout,
      `Cannot acquire the lock on release "${release}" in namespace "${namespace}" (Lease "${name}") within ${
        roughDuration(waitedMs)
      }: it is held by ${who}; raise --lock-timeout to wait longer`,
    );
  }

  #progress(now: number, startedAt: number): void {
    const lease = this.#lease;
    const holder = lease ? holderInfo(lease) : undefined;
    if (!holder?.identity || !this.#opts.onProgress) return;
    const heldForMs = holder.since
      ? Math.max(0, this.#ctx.clock.date().getTime() - holder.since.getTime())
      : undefined;
    this.#opts.onProgress({
      holder,
      waitedMs: now - startedAt,
      ...(heldForMs === undefined ? {} : { heldForMs }),
    });
  }

  /** Waits until the lock is ours; returns the written Lease and when the write was sent. */
  async run(): Promise<{ lease: V1Lease; sentAt: number }> {
    const { api, clock, sleep } = this.#ctx;
    const userSignal = this.#opts.signal;
    userSignal?.throwIfAborted();
    const startedAt = clock.now();
    const deadlineAt = startedAt + this.#opts.timeoutMs;
    // The first line at once: a waiting CI job should say what it waits for right away.
    let nextProgress = startedAt;
    try {
      this.#observe(await request(this.#ctx, api.get()));
    } catch (err) {
      throw apiError(err, action(this.#ctx, "get"));
    }
    const stopWatch = new AbortController();
    let watch: Promise<void> | undefined;
    let nextPoll = Infinity;
    let pollBase: [number, boolean] = [NaN, false];
    this.#opts.turn?.changes.addEventListener("change", this.#onTurn);
    try {
      for (;;) {
        userSignal?.throwIfAborted();
        this.#dirty = false;
        if (clock.now() >= this.#retryAt) {
          try {
            const acquired = await this.#tryAcquire();
            if (acquired) return acquired;
          } catch (err) {
            // A blip while waiting is not a reason to give up: back off and carry on.
            // (Refused writes arrive mapped already; only the re-read's failures are raw.)
            this.#failed(err);
          }
        }
        // Watch only once the Lease is known to be held: most locks are free at once.
        watch ??= this.#watchLoop(stopWatch.signal);
        const now = clock.now();
        // Poll only when the server has not told us anything for a poll interval.
        if (pollBase[0] !== this.#syncedAt || pollBase[1] !== this.#watching) {
          pollBase = [this.#syncedAt, this.#watching];
          nextPoll = this.#syncedAt + this.#pollInterval();
        }
        if (now >= deadlineAt) throw this.#timeoutError(now - startedAt);
        if (now >= nextProgress) {
          this.#progress(now, startedAt);
          while (nextProgress <= now) nextProgress += WaitTimings.progressMs;
        }
        if (now >= nextPoll && now >= this.#retryAt) {
          try {
            this.#observe(await request(this.#ctx, api.get()));
          } catch (err) {
            this.#failed(err);
          }
          continue;
        }
        if (this.#dirty && now >= this.#retryAt) continue;
        const lease = this.#lease;
        // Whatever is due (a poll, an expiry, a free Lease) waits for the retry time.
        const due = Math.max(
          this.#retryAt,
          Math.min(nextPoll, Math.max(now, this.#turnAt(lease))),
        );
        const wakeAt = Math.min(deadlineAt, nextProgress, due);
        this.#wake = new AbortController();
        const signals = [this.#wake.signal, ...(userSignal ? [userSignal] : [])];
        await sleep(Math.max(0, wakeAt - now), AbortSignal.any(signals)).catch(() => {});
        this.#wake = undefined;
      }
    } finally {
      this.#opts.turn?.changes.removeEventListener("change", this.#onTurn);
      // Not awaited: a watch still connecting must not delay the lock we already hold.
      stopWatch.abort();
      watch?.catch(() => {});
    }
  }

  #pollInterval(): number {
    return this.#jitter(this.#watching ? WaitTimings.pollWatchingMs : WaitTimings.pollFallbackMs);
  }
}
