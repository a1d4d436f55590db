/**
 * Taking the lock through the release's queue (DESIGN §2): the one entry of `lib/lock/`.
 *
 * 1. One list of the release's Leases (lock, tickets, deploy record: `names.ts`). A refused or
 *    unreachable API server at this first request ends the job (exit 7, 6); timeouts, 429 and
 *    5xx are retried until `--lock-timeout`, here and everywhere below.
 * 2. Nobody holds the lock and nobody queues: create the lock (most deploys: 4 requests in all,
 *    with the watch and the release).
 * 3. Else join the queue: create a ticket (`tickets.ts`; its arrival order is the API server's)
 *    and watch the release's Leases. Only the head of the queue takes a free lock: at once when
 *    it is released or deleted (a watch event), one lease duration after its last renewal was
 *    seen when its holder died. A ticket the server has not seen written for a minute is
 *    deleted by whoever sees it; a head that does not take a free lock within one lease
 *    duration is judged gone and its ticket deleted by the waiters behind it. So a waiter that
 *    dies delays the queue once, by at most one lease duration, and later deploys not at all.
 * 4. Holding (`hold.ts`) goes on with the same watch; the ticket is deleted.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { delay } from "../async.ts";
import { roughDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import type { KubeClient } from "../kube/rest.ts";
import { kubeLeaseApi, type LeaseApi } from "./api.ts";
import { LeaseCache } from "./cache.ts";
import { Held, type HeldLock, type HoldContext } from "./hold.ts";
import { Annotation } from "./identity.ts";
import {
  action,
  DEFAULT_LEASE_SECONDS,
  type HolderInfo,
  holderInfo,
  holderLease,
  isTransient,
  leaseMs,
  missingNamespace,
  type Timing,
  within,
} from "./lease.ts";
import { lockName, RELEASE_LABEL, releaseLabels, releaseSelector, stateName } from "./names.ts";
import { outdated, recordDeploy } from "./record.ts";
import {
  heldByNewer,
  isStale,
  type Order,
  orderAnnotations,
  queueOrder,
  readTicket,
  renewedTicket,
  type Ticket,
  ticketBody,
  TicketTimings,
} from "./tickets.ts";

/** What a waiter reports, at once and about every 10 s. */
export interface WaitProgress {
  /** The lock's holder; none while the lock is free and a waiter ahead is to take it. */
  holder?: HolderInfo;
  /** How long we have waited, in ms. */
  waitedMs: number;
  /** How long the holder has held it (by its own clock), when known. */
  heldForMs?: number;
  /** Our place in the queue (1: next), and who is right ahead of us. */
  queue?: { place: number; ahead?: HolderInfo };
}

/** Options for {@linkcode takeLock}. */
export interface TakeOptions {
  /** The API server helm uses (`kubeClient()`). */
  client: KubeClient;
  namespace: string;
  release: string;
  /** This process's holder identity (`holderIdentity()`). */
  identity: string;
  /** Who we are, for waiters and `lock-status` (`lockAnnotations()`). */
  annotations: Record<string, string>;
  /** `--lock-timeout` in ms. */
  timeoutMs: number;
  /** `--lock-lease-duration` in s. @default {15} */
  leaseDurationSeconds?: number;
  /** `--lock-queue`, and the order key (`--lock-order-key`, else the CI pipeline's). */
  order?: Order;
  /** `--lock-order-key` was given: refuse a deploy older than the last one. */
  refuseOutdated?: boolean;
  /** Whether a missing namespace's message suggests `--create-namespace`. */
  createNamespaceHint?: boolean;
  /** Aborts the wait (a signal); rejects with its reason, leaving nothing behind. */
  signal?: AbortSignal;
  onProgress?: (progress: WaitProgress) => void;
  /** Called with our ticket's name when we join the queue. */
  onQueued?: (ticket: string) => void;
  /** Says once what the user should know (a missing RBAC verb, a lost place). */
  warn?: (line: string) => void;
  /** The Lease requests (unit tests put a fake API server here). */
  api?: LeaseApi;
  timing?: Partial<Timing>;
}

/** A lock taken through the queue. */
export interface QueuedLock extends HeldLock {
  /** Whether this job waited in the queue. */
  readonly queued: boolean;
  /** Records a successful deploy's `--lock-order-key` (nothing without one). */
  recordDeploy(): Promise<void>;
  /** The release was uninstalled: its deploy record goes too. */
  forgetRelease(): Promise<void>;
}

/** Progress lines come this often. */
const PROGRESS_MS = 10_000;
/** A tampered Lease may ask waiters to wait decades for its expiry; none waits past this. */
const MAX_LEASE_SECONDS = 3600;
/** After a failed request, none before this long, doubling up to `RETRY_MAX_MS`, jittered. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 15_000;

const SUPERSEDED = new WeakSet<object>();

/**
 * Whether `err` says a newer job superseded this one (`--lock-queue newest`), not an outdated
 * order key: `--lock-superseded-ok` turns only the former into exit 0.
 */
export function isSuperseded(err: unknown): err is HelmLockError {
  return typeof err === "object" && err !== null && SUPERSEDED.has(err);
}

/** "CI job <url>" when known, else the identity (and user). */
export function describeJob(info: HolderInfo): string {
  if (info.ciJobUrl) return `CI job ${info.ciJobUrl}`;
  return `"${info.identity}"${info.user ? ` (user ${info.user})` : ""}`;
}

/**
 * Takes the release's lock, waiting in its queue up to `timeoutMs` (see the module doc).
 *
 * @returns The held lock: call `release()` on every path, `recordDeploy()` after a deploy.
 * @throws {HelmLockError} exit 3 at the timeout (naming the holder, its CI job, since when and
 *   `--lock-timeout`), 8 when superseded or outdated, 7 or 6 when the API server refuses or
 *   cannot be reached at the start.
 * @throws {unknown} `signal.reason` when `signal` aborts; nothing is left behind.
 */
export async function takeLock(options: TakeOptions): Promise<QueuedLock> {
  return await new Taking(options).run();
}

class Taking {
  readonly #o: TakeOptions;
  readonly #ctx: HoldContext;
  readonly #cache: LeaseCache;
  readonly #lock: string;
  readonly #where: string;
  readonly #order: Order;
  #startedAt = 0;
  #deadline = 0;
  /** Our ticket, as last written, and its creation resourceVersion. */
  #mine: V1Lease | undefined;
  #position = "";
  #renewAt = Infinity;
  #failures = 0;
  #retryAt = -Infinity;
  /** The head we have seen not take the free lock, since when (local time). */
  #stuckHead: { name: string; since: number } | undefined;
  /** Deletes already sent, by name and resourceVersion. */
  readonly #deleting = new Set<string>();
  #noDeleteSaid = false;
  /** When a create of the lock found one our list and watch do not show (an older holder's). */
  #conflictAt: number | undefined;
  #wake: AbortController | undefined;

  constructor(o: TakeOptions) {
    this.#o = o;
    const timing: Timing = {
      clock: o.timing?.clock ?? { now: () => performance.now(), date: () => new Date() },
      sleep: o.timing?.sleep ?? ((ms, signal) => delay(ms, { signal })),
      random: o.timing?.random ?? Math.random,
    };
    const api = o.api ?? kubeLeaseApi(o.client, o.namespace);
    this.#cache = new LeaseCache(api, releaseSelector(o.release), timing);
    this.#ctx = {
      ...timing,
      api,
      cache: this.#cache,
      namespace: o.namespace,
      user: o.client.user,
      server: o.client.server,
      release: o.release,
      identity: o.identity,
      durationSeconds: o.leaseDurationSeconds ?? DEFAULT_LEASE_SECONDS,
      warn: o.warn ?? (() => {}),
    };
    this.#lock = lockName(o.release);
    this.#where = `release "${o.release}" in namespace "${o.namespace}"`;
    this.#order = o.order ?? { mode: "fifo" };
    this.#cache.changes.addEventListener("change", () => this.#wake?.abort());
  }

  async run(): Promise<QueuedLock> {
    const { clock } = this.#ctx;
    this.#o.signal?.throwIfAborted();
    this.#startedAt = clock.now();
    this.#deadline = this.#startedAt + this.#o.timeoutMs;
    try {
      await this.#firstList();
      await this.#readOlderRecord();
      this.#refuseOutdated();
      const tickets = this.#tickets();
      const lock = this.#cache.get(this.#lock);
      this.#collect(tickets);
      // Nobody holds it, nobody waits: the lock at once, without a ticket.
      if (
        !lock?.spec?.holderIdentity && tickets.every((t) => isStale(t, this.#cache.serverNow()))
      ) {
        const held = await this.#take(lock);
        if (held) return this.#checked(held);
      }
      await this.#join();
      this.#cache.start();
      return this.#checked(await this.#wait());
    } catch (err) {
      await this.#leave();
      this.#cache.stop();
      throw err;
    }
  }

  /**
   * The first request. A refusal ends the job (exit 7), and so does a server that cannot be
   * reached at all (refused, unresolvable, untrusted: exit 6); an overloaded one (no answer in
   * time, 429, 5xx) is asked again until `--lock-timeout`.
   */
  async #firstList(): Promise<void> {
    const selector = releaseSelector(this.#o.release);
    for (let attempt = 0;; attempt++) {
      this.#o.signal?.throwIfAborted();
      try {
        this.#cache.load(await within(this.#ctx, this.#ctx.api.list(selector)));
        return;
      } catch (err) {
        const timedOut = err instanceof DOMException && err.name === "TimeoutError";
        const answered = typeof (err as { code?: unknown })?.code === "number" && !timedOut;
        if (!isTransient(err) || (attempt === 0 && !timedOut && !answered)) {
          throw apiError(err, action(this.#ctx, "list"));
        }
        await this.#backoff(err);
      }
    }
  }

  /** A deploy record of a helm-lock older than the release label: read once, by name. */
  async #readOlderRecord(): Promise<void> {
    const name = stateName(this.#o.release);
    if (!this.#o.refuseOutdated || this.#cache.get(name)) return;
    const state = await within(this.#ctx, this.#ctx.api.get(name)).catch(() => undefined);
    if (state) this.#cache.put(state);
  }

  /** The lock is ours: unless a newer deploy landed meanwhile (`--lock-order-key`). */
  async #checked(held: QueuedLock): Promise<QueuedLock> {
    try {
      this.#refuseOutdated();
    } catch (err) {
      await held.release().catch(() => {});
      throw err;
    }
    return held;
  }

  /** Waits out a transient failure (the deadline still counts). */
  async #backoff(err: unknown): Promise<void> {
    const wait = Math.min(RETRY_FIRST_MS * 2 ** Math.min(this.#failures++, 16), RETRY_MAX_MS);
    const { clock, sleep, random } = this.#ctx;
    if (clock.now() >= this.#deadline) {
      const why = apiError(err, action(this.#ctx, "list")).message;
      throw this.#timeout(`the API server kept failing (last: ${why})`);
    }
    const until = Math.min(clock.now() + wait * (0.75 + 0.5 * random()), this.#deadline);
    await sleep(Math.max(0, until - clock.now()), this.#o.signal ?? new AbortController().signal);
  }

  #failed(): void {
    const wait = Math.min(RETRY_FIRST_MS * 2 ** Math.min(this.#failures++, 16), RETRY_MAX_MS);
    this.#retryAt = this.#ctx.clock.now() + wait * (0.75 + 0.5 * this.#ctx.random());
  }

  #refuseOutdated(): void {
    if (!this.#o.refuseOutdated) return;
    const refusal = outdated(
      this.#cache.get(stateName(this.#o.release)),
      this.#order.key,
      this.#where,
    );
    if (refusal) throw refusal;
  }

  #tickets(): Ticket[] {
    return this.#cache.values().flatMap((l) => readTicket(l, this.#o.release) ?? []);
  }

  /** Deletes a Lease (guarded by uid and resourceVersion), once per version; never waits. */
  #delete(lease: V1Lease): void {
    const { name = "", uid = "", resourceVersion = "" } = lease.metadata ?? {};
    const key = `${name}@${resourceVersion}`;
    if (this.#deleting.has(key)) return;
    this.#deleting.add(key);
    within(this.#ctx, this.#ctx.api.delete(name, { uid, resourceVersion })).then(
      () => this.#cache.drop(name),
      (err) => {
        if (isStatus(err, 403)) this.#warnNoDelete("tickets of jobs that are gone");
      },
    );
  }

  #warnNoDelete(what: string): void {
    if (this.#noDeleteSaid) return;
    this.#noDeleteSaid = true;
    this.#ctx.warn(
      `the Role of user "${this.#ctx.user}" lacks "delete" on leases in namespace ` +
        `"${this.#o.namespace}": cannot remove ${what}; grant "delete" (see the README's RBAC)`,
    );
  }

  /** Deletes the tickets the API server has not seen written for their lifetime, and our strays. */
  #collect(tickets: Ticket[]): void {
    const serverNow = this.#cache.serverNow();
    const mine = this.#mine?.metadata?.name;
    for (const t of tickets) {
      const stray = t.info.identity === this.#o.identity && t.name !== mine;
      if (stray || isStale(t, serverNow)) this.#delete(t.lease);
    }
  }

  /** A 404 on a create: the release's namespace does not exist. */
  #noNamespace(err: unknown): HelmLockError {
    return missingNamespace(this.#o.release, this.#o.namespace, !!this.#o.createNamespaceHint, err);
  }

  /** Creates the lock (`base` undefined) or takes it over; `undefined` when someone was first. */
  async #take(base: V1Lease | undefined): Promise<QueuedLock | undefined> {
    const { api, clock } = this.#ctx;
    const sentAt = clock.now();
    const body = holderLease(
      {
        release: this.#o.release,
        namespace: this.#o.namespace,
        identity: this.#o.identity,
        annotations: { ...this.#o.annotations, ...orderAnnotations(this.#order) },
        durationSeconds: this.#ctx.durationSeconds,
        ...(this.#position ? { position: this.#position } : {}),
      },
      base,
      clock.date(),
    );
    try {
      const written = await within(this.#ctx, base ? api.replace(body) : api.create(body));
      return this.#held(written, sentAt);
    } catch (err) {
      if (isStatus(err, 409)) {
        // Someone was first; if our watch does not show it soon, an older helm-lock holds it.
        if (!base && !this.#cache.get(this.#lock)) this.#conflictAt = clock.now();
        return undefined;
      }
      if (isStatus(err, 404) && base) return undefined;
      if (isStatus(err, 404)) {
        throw this.#noNamespace(err);
      }
      if (isTransient(err)) {
        this.#failed();
        return undefined;
      }
      throw apiError(err, action(this.#ctx, base ? "update" : "create"));
    }
  }

  /**
   * Labels the lock of a helm-lock older than the release label, so that our watch sees it
   * (older holders renew on past the new resourceVersion: they re-read on a conflict).
   */
  async #adopt(): Promise<void> {
    const { api } = this.#ctx;
    this.#conflictAt = undefined;
    try {
      const lock = await within(this.#ctx, api.get(this.#lock));
      if (!lock) return;
      if (lock.metadata?.labels?.[RELEASE_LABEL] === this.#o.release) return this.#cache.put(lock);
      const { managedFields: _m, ...meta } = lock.metadata ?? {};
      const labels = { ...meta.labels, ...releaseLabels(this.#o.release) };
      this.#cache.put(
        await within(this.#ctx, api.replace({ ...lock, metadata: { ...meta, labels } })),
      );
    } catch {
      this.#failed();
    }
  }

  #held(written: V1Lease, sentAt: number): QueuedLock {
    const held = new Held(this.#ctx, written, sentAt);
    const mine = this.#mine;
    this.#mine = undefined;
    if (mine) this.#delete(mine);
    this.#cache.start();
    const known = () => this.#cache.get(stateName(this.#o.release));
    const o = this.#o;
    const ctx = this.#ctx;
    const cache = this.#cache;
    let released: Promise<void> | undefined;
    const record = async () => {
      if (!o.refuseOutdated || this.#order.key === undefined) return;
      const job = o.annotations[Annotation.ciJobUrl];
      await recordDeploy(ctx.api, {
        release: o.release,
        namespace: o.namespace,
        key: this.#order.key,
        by: job ? `CI job ${job}` : `"${o.identity}"`,
        now: ctx.clock.date(),
      }, known());
    };
    const forget = async () => {
      const name = stateName(o.release);
      const record = cache.get(name) ?? await within(ctx, ctx.api.get(name));
      if (!record) return;
      const { uid = "", resourceVersion = "" } = record.metadata ?? {};
      await within(ctx, ctx.api.delete(name, { uid, resourceVersion })).catch((err) => {
        if (!isStatus(err, 404) && !isStatus(err, 409)) throw err;
      });
    };
    return {
      queued: mine !== undefined,
      forgetRelease: forget,
      get lost() {
        return held.lost;
      },
      get lease() {
        return held.lease;
      },
      validUntil: () => held.validUntil(),
      recordDeploy: record,
      release: () => released ??= held.release().finally(() => cache.stop()),
    };
  }

  /** Creates our ticket (again, at the back, when ours was judged dead and removed). */
  async #join(): Promise<void> {
    const { api, clock } = this.#ctx;
    for (;;) {
      this.#o.signal?.throwIfAborted();
      const body = ticketBody({
        release: this.#o.release,
        namespace: this.#o.namespace,
        identity: this.#o.identity,
        annotations: this.#o.annotations,
        ...this.#order,
      }, clock.date());
      try {
        const written = await within(this.#ctx, api.create(body));
        this.#mine = written;
        this.#position = written.metadata?.resourceVersion ?? "";
        this.#cache.put(written);
        this.#renewAt = clock.now() + TicketTimings.renewMs;
        this.#o.onQueued?.(written.metadata?.name ?? "");
        return;
      } catch (err) {
        if (isStatus(err, 404)) {
          throw this.#noNamespace(err);
        }
        if (!isTransient(err)) throw apiError(err, action(this.#ctx, "create"));
        await this.#backoff(err);
      }
    }
  }

  async #renew(): Promise<void> {
    const { api, clock } = this.#ctx;
    const mine = this.#mine;
    if (!mine) return;
    this.#renewAt = clock.now() + TicketTimings.renewMs;
    try {
      const written = await within(
        this.#ctx,
        api.replace(renewedTicket(mine, this.#position, clock.date())),
      );
      if (this.#mine === mine) this.#mine = written;
      this.#cache.put(written);
    } catch (err) {
      if (isStatus(err, 404)) this.#cache.drop(mine.metadata?.name ?? "");
      else if (isStatus(err, 409)) {
        const fresh = await within(this.#ctx, api.get(mine.metadata?.name ?? "")).catch(() =>
          undefined
        );
        if (fresh?.spec?.holderIdentity === this.#o.identity && this.#mine === mine) {
          this.#mine = fresh;
          this.#renewAt = clock.now();
        }
      } else {
        this.#renewAt = clock.now() + TicketTimings.renewMs / 4;
        if (!isTransient(err)) throw apiError(err, action(this.#ctx, "update"));
      }
    }
  }

  /** Our ticket, deleted (guarded) when we give up waiting; a failure leaves it to go stale. */
  async #leave(): Promise<void> {
    const mine = this.#mine;
    this.#mine = undefined;
    if (!mine) return;
    const { uid = "", resourceVersion = "", name = "" } = mine.metadata ?? {};
    await within(this.#ctx, this.#ctx.api.delete(name, { uid, resourceVersion })).catch(
      async (err) => {
        if (!isStatus(err, 409)) return;
        // Renewed in between: delete the version that is there, if it is still ours.
        const fresh = await this.#ctx.api.get(name).catch(() => undefined);
        if (fresh?.spec?.holderIdentity !== this.#o.identity) return;
        await this.#ctx.api.delete(name, {
          uid: fresh.metadata?.uid ?? "",
          resourceVersion: fresh.metadata?.resourceVersion ?? "",
        }).catch(() => {});
      },
    );
  }

  async #wait(): Promise<QueuedLock> {
    const { clock, sleep } = this.#ctx;
    let nextProgress = clock.now();
    for (;;) {
      this.#o.signal?.throwIfAborted();
      const now = clock.now();
      const view = this.#view(now);
      if (view.superseded) throw view.superseded;
      if (view.gone) {
        this.#ctx.warn(
          `this job's place in the queue of ${this.#where} was removed: it looked gone (stopped ` +
            `or disconnected too long); rejoining at the back`,
        );
        this.#mine = undefined;
        await this.#join();
        continue;
      }
      if (now >= this.#deadline) throw this.#timeout();
      this.#refuseOutdated();
      if (now >= this.#retryAt) {
        if (view.adopt) {
          await this.#adopt();
          continue;
        }
        if (view.confirm) {
          // Expired by what we knew, but without a watch renewals may have been missed: look.
          await this.#cache.list().catch(() => this.#failed());
          continue;
        }
        if (view.take) {
          const held = await this.#take(view.lock);
          if (held) return held;
          continue;
        }
        if (now >= this.#renewAt) {
          await this.#renew();
          continue;
        }
      }
      if (now >= nextProgress) {
        this.#progress(now, view);
        while (nextProgress <= now) nextProgress += PROGRESS_MS;
      }
      // Requests wait for the backoff; progress lines and the deadline do not.
      const due = view.take || view.confirm || view.adopt
        ? now
        : Math.min(this.#renewAt, view.wakeAt);
      const wakeAt = Math.min(this.#deadline, nextProgress, Math.max(due, this.#retryAt));
      this.#wake = new AbortController();
      const signals = [this.#wake.signal, ...(this.#o.signal ? [this.#o.signal] : [])];
      await sleep(Math.max(0, wakeAt - now), AbortSignal.any(signals)).catch(() => {});
      this.#wake = undefined;
    }
  }

  /** What the queue and the lock say now, and what to do about it. */
  #view(now: number) {
    const cache = this.#cache;
    const lock = cache.get(this.#lock);
    const tickets = this.#tickets();
    this.#collect(tickets);
    const serverNow = cache.serverNow();
    const mineName = this.#mine?.metadata?.name ?? "";
    const live = tickets.filter((t) => t.name === mineName || !isStale(t, serverNow));
    const order = queueOrder(live);
    const me = order.find((t) => t.name === mineName);
    const gone = !me && cache.deletedAt(mineName) !== undefined;
    const index = me ? order.indexOf(me) : 0;
    const holder = lock?.spec?.holderIdentity;
    const leaseEnds = lock && holder
      ? (cache.seenAt(this.#lock) ?? now) +
        leaseMs(lock, this.#ctx.durationSeconds, MAX_LEASE_SECONDS)
      : -Infinity;
    const free = !lock || !holder || holder === this.#o.identity || now >= leaseEnds;
    let superseded: HelmLockError | undefined;
    if (
      me && this.#order.mode === "newest" && lock && holder && holder !== this.#o.identity &&
      heldByNewer(lock, me)
    ) {
      superseded = this.#superseded(holderInfo(lock));
    }
    // The head does not take the free lock: after one lease duration it is judged gone.
    let wakeAt = Infinity;
    const head = order[0];
    if (free && head && head !== me) {
      if (this.#stuckHead?.name !== head.name) this.#stuckHead = { name: head.name, since: now };
      const goneAt = this.#stuckHead.since + this.#ctx.durationSeconds * 1000;
      if (now >= goneAt) this.#delete(head.lease);
      else wakeAt = goneAt;
    } else this.#stuckHead = undefined;
    if (!free) wakeAt = leaseEnds;
    const expired = !!holder && holder !== this.#o.identity && now >= leaseEnds;
    // A stale ticket ages out on the server's clock: look again when it would have.
    for (const t of live) {
      if (t.writtenAt === undefined || serverNow === undefined || t === me) continue;
      const at = now + t.writtenAt + TicketTimings.staleMs + TicketTimings.marginMs - serverNow;
      wakeAt = Math.min(wakeAt, Math.max(at, now + 1_000));
    }
    // A lock our create ran into but our watch has not shown within a second: an older one's.
    if (lock) this.#conflictAt = undefined;
    const unseen = this.#conflictAt !== undefined;
    const adopt = unseen && now >= this.#conflictAt! + 1_000;
    if (unseen) wakeAt = Math.min(wakeAt, this.#conflictAt! + 1_000);
    return {
      lock,
      adopt,
      take: free && index === 0 && !!me && !unseen,
      confirm: free && index === 0 && expired && !cache.watching && cache.syncedAt < leaseEnds,
      superseded,
      gone,
      wakeAt,
      place: index + 1,
      ahead: index > 0 ? order[index - 1]?.info : undefined,
    };
  }

  #superseded(by: HolderInfo): HelmLockError {
    const err = new HelmLockError(
      ExitCode.Superseded,
      `Cannot deploy ${this.#where} as this job is superseded: --lock-queue newest deploys only ` +
        `the newest waiting job, found a newer one, ${describeJob(by)}`,
    );
    SUPERSEDED.add(err);
    return err;
  }

  #progress(now: number, view: { place: number; ahead: HolderInfo | undefined }): void {
    const lock = this.#cache.get(this.#lock);
    const holder = lock?.spec?.holderIdentity ? holderInfo(lock) : undefined;
    const heldForMs = holder?.since
      ? Math.max(0, this.#ctx.clock.date().getTime() - holder.since.getTime())
      : undefined;
    this.#o.onProgress?.({
      waitedMs: now - this.#startedAt,
      ...(holder ? { holder } : {}),
      ...(heldForMs === undefined ? {} : { heldForMs }),
      queue: { place: view.place, ...(view.ahead ? { ahead: view.ahead } : {}) },
    });
  }

  #timeout(why?: string): HelmLockError {
    const lock = this.#cache.get(this.#lock);
    const holder = lock?.spec?.holderIdentity ? holderInfo(lock) : undefined;
    let who = why ?? "it is free, but jobs ahead in the queue took it first";
    if (holder && !why) {
      const details = [
        holder.ciJobUrl ? `CI job ${holder.ciJobUrl}` : "no CI job recorded",
        holder.user ? `user ${holder.user}` : undefined,
        holder.host ? `host ${holder.host}` : undefined,
      ].filter((d) => d).join(", ");
      const since = holder.since ? ` since ${holder.since.toISOString()}` : "";
      who = `it is held by "${holder.identity}" (${details})${since}`;
    }
    return new HelmLockError(
      ExitCode.LockTimeout,
      `Cannot acquire the lock on ${this.#where} (Lease "${this.#lock}") within ${
        roughDuration(this.#ctx.clock.now() - this.#startedAt)
      }: ${who}; raise --lock-timeout to wait longer`,
    );
  }
}
