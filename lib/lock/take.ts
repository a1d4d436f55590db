/**
 * Taking the lock through the release's queue (docs/design.md §2).
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { delay } from "../async.ts";
import type { HelmLockError } from "../errors.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import type { KubeClient } from "../kube/rest.ts";
import { action, kubeLeaseApi, type LeaseApi, LeaseCache, type Timing } from "./cache.ts";
import { Held, type HeldLock, type HoldContext } from "./hold.ts";
import { Annotation } from "./identity.ts";
import {
  adoptOlderLock,
  backoff,
  DEFAULT_LEASE_SECONDS,
  holderInfo,
  holderLease,
  isTransient,
  missingNamespace,
  within,
} from "./lease.ts";
import { lockName, releaseSelector, stateName } from "./names.ts";
import {
  type QueueView,
  queueView,
  type StuckHead,
  supersededError,
  timeoutError,
  type WaitProgress,
  waitProgress,
} from "./queue_view.ts";
import { OwnTicket, Sweeper } from "./queue_writes.ts";
import { deployRecord, outdated } from "./record.ts";
import { isStale, type Order, orderAnnotations, readTicket, type Ticket } from "./tickets.ts";

export interface TakeOptions {
  client: KubeClient;
  namespace: string;
  release: string;
  /** `holderIdentity()` */
  identity: string;
  /** `lockAnnotations()` */
  annotations: Record<string, string>;
  timeoutMs: number;
  /** `--lock-lease-duration`. @default {15} */
  leaseDurationSeconds?: number;
  /** `--lock-queue`, and the order key (`--lock-order-key`, else the CI pipeline's). */
  order?: Order;
  /** `--lock-order-key` was given: refuse a deploy older than the last one. */
  refuseOutdated?: boolean;
  /** Whether a missing namespace's message suggests `--create-namespace`. */
  createNamespaceHint?: boolean;
  /** Aborts the wait; rejects with its reason, leaving nothing behind. */
  signal?: AbortSignal;
  onProgress?: (progress: WaitProgress) => void;
  onQueued?: (ticket: string) => void;
  /** Says once what the user should fix or know (a missing RBAC verb, a lost place). */
  warn?: (line: string) => void;
  /** The Lease requests (unit tests put a fake API server here). */
  api?: LeaseApi;
  timing?: Partial<Timing>;
}

/** A lock taken through the queue; `record.ts` tells what its deploy record methods do. */
export interface QueuedLock extends HeldLock {
  recordDeploy(): Promise<void>;
  forgetRelease(): Promise<void>;
}

const PROGRESS_MS = 10_000; // How often a waiter reports.

/**
 * Takes the release's lock, waiting in its queue up to `timeoutMs`.
 *
 * @returns The held lock: call `release()` on every path, `recordDeploy()` after a deploy.
 * @throws {HelmLockError} exit 3 at the timeout, 8 when superseded or outdated, 7 or 6 when
 *   the API server refuses or cannot be reached at the start.
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
  readonly #mine: OwnTicket;
  /** When a failed request may be sent again (local ms). */
  #retryAt = -Infinity;
  readonly #nextBackoff: () => number;
  #stuckHead: StuckHead | undefined;
  readonly #sweeper: Sweeper;
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
    this.#sweeper = new Sweeper(this.#ctx);
    this.#nextBackoff = backoff(timing.random);
    this.#mine = new OwnTicket(this.#ctx, { annotations: o.annotations, ...this.#order });
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
      this.#sweeper.collect(tickets, this.#mine.name);
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
      await this.#mine.leave();
      this.#cache.stop();
      throw err;
    }
  }

  /**
   * The first request: a refusal (exit 7) or a server that cannot be reached at all (refused,
   * unresolvable, untrusted: exit 6) ends the job; an overloaded one is asked again.
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
    const { clock, sleep } = this.#ctx;
    if (clock.now() >= this.#deadline) {
      const why = apiError(err, action(this.#ctx, "list")).message;
      throw this.#timeout(`the API server kept failing (last: ${why})`);
    }
    const until = Math.min(clock.now() + this.#nextBackoff(), this.#deadline);
    await sleep(Math.max(0, until - clock.now()), this.#o.signal ?? new AbortController().signal);
  }

  #failed(): void {
    this.#retryAt = this.#ctx.clock.now() + this.#nextBackoff();
  }

  #refuseOutdated(): void {
    if (!this.#o.refuseOutdated) return;
    const record = this.#cache.get(stateName(this.#o.release));
    const refusal = outdated(record, this.#order.key, this.#where);
    if (refusal) throw refusal;
  }

  #tickets(): Ticket[] {
    return this.#cache.values().flatMap((l) => readTicket(l, this.#o.release) ?? []);
  }

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
        ...(this.#mine.position ? { position: this.#mine.position } : {}),
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
      if (isStatus(err, 404)) {
        if (base) return undefined;
        throw this.#noNamespace(err);
      }
      if (isTransient(err)) {
        this.#failed();
        return undefined;
      }
      throw apiError(err, action(this.#ctx, base ? "update" : "create"));
    }
  }

  #held(written: V1Lease, sentAt: number): QueuedLock {
    const mine = this.#mine.drop();
    if (mine) this.#sweeper.delete(mine);
    this.#cache.start();
    const record = deployRecord(this.#ctx, {
      refuseOutdated: !!this.#o.refuseOutdated,
      key: this.#order.key,
      jobUrl: this.#o.annotations[Annotation.ciJobUrl],
    });
    return Object.assign(new Held(this.#ctx, written, sentAt), {
      recordDeploy: record.record,
      forgetRelease: record.forget,
    });
  }

  /** Creates our ticket (again, at the back, when ours was judged dead and removed). */
  async #join(): Promise<void> {
    for (;;) {
      this.#o.signal?.throwIfAborted();
      const spare = this.#mine.spare();
      try {
        const written = await this.#mine.create(spare);
        this.#o.onQueued?.(written.metadata?.name ?? "");
        return;
      } catch (err) {
        if (spare && (isStatus(err, 409) || isStatus(err, 404))) {
          this.#cache.drop(spare.metadata?.name ?? "");
          continue;
        }
        if (isStatus(err, 404)) throw this.#noNamespace(err);
        if (!isTransient(err)) throw apiError(err, action(this.#ctx, "create"));
        await this.#backoff(err);
      }
    }
  }

  async #wait(): Promise<QueuedLock> {
    const { clock, sleep } = this.#ctx;
    let nextProgress = clock.now();
    for (;;) {
      this.#o.signal?.throwIfAborted();
      const now = clock.now();
      const view = this.#view(now);
      if (view.gone) {
        this.#ctx.warn(
          `this job's place in the queue of ${this.#where} was removed: it looked gone (stopped ` +
            `or disconnected too long); rejoining at the back`,
        );
        this.#mine.drop();
        await this.#join();
        continue;
      }
      if (now >= this.#deadline) throw this.#timeout();
      this.#refuseOutdated();
      if (now >= this.#retryAt) {
        if (view.adopt) {
          this.#conflictAt = undefined;
          await adoptOlderLock(this.#ctx).catch(() => this.#failed());
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
        if (now >= this.#mine.renewAt) {
          await this.#mine.renew();
          continue;
        }
      }
      const quiet = view.conflictAt !== undefined; // adopting an unseen lock: no line says "free"
      if (now >= nextProgress && !quiet) {
        const waited = now - this.#startedAt;
        this.#o.onProgress?.(waitProgress(view, waited, this.#ctx.clock.date()));
        while (nextProgress <= now) nextProgress += PROGRESS_MS;
      }
      // Requests wait for the backoff; progress lines and the deadline do not.
      const due = view.take || view.confirm || view.adopt
        ? now
        : Math.min(this.#mine.renewAt, view.wakeAt);
      const progressAt = quiet ? Infinity : nextProgress;
      const wakeAt = Math.min(this.#deadline, progressAt, Math.max(due, this.#retryAt));
      this.#wake = new AbortController();
      const signals = [this.#wake.signal, ...(this.#o.signal ? [this.#o.signal] : [])];
      await sleep(Math.max(0, wakeAt - now), AbortSignal.any(signals)).catch(() => {});
      this.#wake = undefined;
    }
  }

  #view(now: number): QueueView {
    const cache = this.#cache;
    const [tickets, mine] = [this.#tickets(), this.#mine.name];
    this.#sweeper.collect(tickets, mine);
    const view = queueView({
      now,
      lock: cache.get(this.#lock),
      tickets,
      mine,
      mineDeleted: cache.deletedAt(mine) !== undefined,
      identity: this.#o.identity,
      mode: this.#order.mode,
      durationSeconds: this.#ctx.durationSeconds,
      lockSeenAt: cache.seenAt(this.#lock),
      serverNow: cache.serverNow(),
      watching: cache.watching,
      syncedAt: cache.syncedAt,
      stuckHead: this.#stuckHead,
      conflictAt: this.#conflictAt,
    });
    this.#stuckHead = view.stuckHead;
    this.#conflictAt = view.conflictAt;
    if (view.headGone) this.#sweeper.delete(view.headGone.lease);
    if (view.newerHolder) throw supersededError(this.#where, view.newerHolder);
    return view;
  }

  #timeout(why?: string): HelmLockError {
    const lock = this.#cache.get(this.#lock);
    const holder = lock?.spec?.holderIdentity ? holderInfo(lock) : undefined;
    const waited = this.#ctx.clock.now() - this.#startedAt;
    return timeoutError(this.#where, this.#lock, waited, holder, why);
  }
}

/**
 * Creates `namespace` when it does not exist, as `helm --create-namespace` would; whether it did.
 * Without `get` on namespaces it does nothing: taking the lock says if the namespace is missing.
 */
export async function ensureNamespace(client: KubeClient, namespace: string): Promise<boolean> {
  try {
    await client.request("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
    return false;
  } catch (err) {
    if (!isStatus(err, 404)) return false;
  }
  try {
    // helm labels the namespaces it creates with their name; do the same.
    await client.request("POST", "/api/v1/namespaces", {
      body: {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: namespace, labels: { name: namespace } },
      },
    });
    return true;
  } catch (err) {
    if (isStatus(err, 409)) return false; // a concurrent job created it first
    throw err;
  }
}
