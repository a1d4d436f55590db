/**
 * The deploy queue in front of the lock (DESIGN §2 "Order"): waiters take the lock in the
 * order they came (FIFO), or only the newest one does (`newest`), or in the order of a
 * number the CI system gives (`--lock-order-key`), and a deploy older than the last
 * successful one is refused.
 *
 * Objects, all Leases in the release namespace (so the one Role on `leases` covers them):
 * - `helm-lock.state.<release>`: never deleted. Its annotations hold the ticket counter
 *   (`next-ticket`, handed out by compare-and-swap on its resourceVersion) and what the last
 *   successful deploy was (`deployed-order-key`, `deployed-ticket`, `deployed-by`). It must
 *   outlive the lock, whose Lease is deleted on every release.
 * - `helm-lock.ticket-<n>.<release>`: one per waiting job, labelled
 *   `helm-lock.dev/queue=<release>` so that one list + watch sees the whole queue; it carries
 *   the job's annotations (CI job URL, user, ...), its order key and mode. The waiter renews
 *   it every 20 s; a ticket not seen to change for its 60 s duration (judged by local
 *   observation time, as the lock's expiry) is dead, ignored and deleted by whoever sees it.
 *   On taking the lock the job marks its ticket `holding`; it deletes it when it lets go.
 * - The names start `helm-lock.`, never `helm-lock-`, so no release's lock can share them.
 *
 * The lock itself is unchanged (`lock.ts`); the queue only tells the waiter when it may take
 * a free lock (`LockTurn`): the head of the queue at once (the handoff stays a watch event),
 * the k-th waiter behind it only after the lock has been seen free for k lease durations. So
 * a waiter that died in the queue delays the others by at most one lease duration, long
 * before its ticket expires, and an idle waiter stays within 6 requests a minute (lock
 * watch and poll, one ticket renewal every 20 s, one ticket watch).
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { MicroTime } from "../kube/micro_time.ts";
import { delay } from "../async.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { type ApiAction, apiError, isStatus } from "../kube/api_error.ts";
import { ANNOTATION_PREFIX } from "./identity.ts";
import { acquireLock, createLock, type HeldLock, holderInfo, LockDefaults } from "./lock.ts";
import { type Clock, missingNamespace, type Sleep } from "./context.ts";
import type { LockHolderInfo, LockOptions, LockTurn } from "./options.ts";
import { kubeQueueApi, type QueueApi } from "./queue_api.ts";
import type { LeaseEvent } from "./lease_api.ts";

/** `--lock-queue`: who gets the lock when it frees. */
export type QueueMode = "fifo" | "newest";

/** Annotation keys of the queue's Leases. */
export const QueueAnnotation = {
  ticket: `${ANNOTATION_PREFIX}ticket`,
  orderKey: `${ANNOTATION_PREFIX}order-key`,
  mode: `${ANNOTATION_PREFIX}queue`,
  /** `waiting` or `holding`. */
  state: `${ANNOTATION_PREFIX}state`,
  nextTicket: `${ANNOTATION_PREFIX}next-ticket`,
  deployedKey: `${ANNOTATION_PREFIX}deployed-order-key`,
  deployedTicket: `${ANNOTATION_PREFIX}deployed-ticket`,
  deployedBy: `${ANNOTATION_PREFIX}deployed-by`,
  deployedAt: `${ANNOTATION_PREFIX}deployed-at`,
} as const;

/** The label that puts a ticket in a release's queue; its value is the release. */
export const QUEUE_LABEL = `${ANNOTATION_PREFIX}queue`;

/** Queue tunables. */
export const QueueTimings = {
  /** Ticket renewal: 3 requests a minute, within an idle waiter's budget of 6. */
  renewMs: 20_000,
  /** A ticket not seen to change for this long is dead: three renewals missed. */
  ticketSeconds: 60,
  /** After a failed renewal, try again this much sooner. */
  retryMs: 5_000,
  /** Waits before re-opening a failed ticket watch, then the last one over and over. */
  watchRetryMs: [2_000, 10_000, 30_000],
} as const;

/** The persistent record of a release's queue. */
export function stateLeaseName(release: string): string {
  return `helm-lock.state.${release}`;
}

/** The ticket Lease of waiter `n`. */
export function ticketLeaseName(release: string, n: number): string {
  return `helm-lock.ticket-${n}.${release}`;
}

/** A ticket as the queue logic sees it. */
export interface Ticket {
  n: number;
  key?: number;
  mode: QueueMode;
  holding: boolean;
  info: LockHolderInfo;
}

function intOf(value: string | undefined): number | undefined {
  if (value === undefined || !/^-?\d+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Reads a ticket Lease; `undefined` when it is not one. */
export function readTicket(lease: V1Lease): Ticket | undefined {
  const a = lease.metadata?.annotations ?? {};
  const n = intOf(a[QueueAnnotation.ticket]);
  if (n === undefined) return undefined;
  const key = intOf(a[QueueAnnotation.orderKey]);
  return {
    n,
    ...(key === undefined ? {} : { key }),
    mode: a[QueueAnnotation.mode] === "newest" ? "newest" : "fifo",
    holding: a[QueueAnnotation.state] === "holding",
    info: holderInfo(lease),
  };
}

/**
 * Sort keys: by order key, else by arrival. A ticket without a key takes the highest key of
 * the tickets that came before it, so it stays behind them but keyed jobs with lower keys
 * still go first.
 */
function sortKeys(tickets: readonly Ticket[]): Map<Ticket, [number, number]> {
  const keys = new Map<Ticket, [number, number]>();
  let highest = -Infinity;
  for (const t of [...tickets].sort((a, b) => a.n - b.n)) {
    if (t.key !== undefined) highest = Math.max(highest, t.key);
    keys.set(t, [t.key ?? highest, t.n]);
  }
  return keys;
}

const before = (a: [number, number], b: [number, number]) => a[0] - b[0] || a[1] - b[1];

/**
 * The waiting tickets in the order they may take the lock. A `newest` ticket with any ticket
 * behind it yields: it goes after all others (newest first), waiting to be superseded.
 *
 * @param tickets The live tickets (holding ones included: they count for the keys).
 */
export function queueOrder(tickets: readonly Ticket[]): Ticket[] {
  const keys = sortKeys(tickets);
  const waiting = tickets.filter((t) => !t.holding)
    .sort((a, b) => before(keys.get(a)!, keys.get(b)!));
  const yields = (t: Ticket, i: number) => t.mode === "newest" && i < waiting.length - 1;
  const contenders = waiting.filter((t, i) => !yields(t, i));
  const yielding = waiting.filter((t, i) => yields(t, i)).reverse();
  return [...contenders, ...yielding];
}

/** The holding ticket that supersedes `me` (a `newest` ticket), if one does. */
export function supersededBy(tickets: readonly Ticket[], me: Ticket): Ticket | undefined {
  if (me.mode !== "newest") return undefined;
  const keys = sortKeys(tickets);
  const mine = keys.get(me)!;
  return tickets.find((t) => t.holding && t !== me && before(keys.get(t)!, mine) > 0);
}

/** "CI job <url>" when known, else the identity (and user). */
export function describeJob(info: LockHolderInfo): string {
  if (info.ciJobUrl) return `CI job ${info.ciJobUrl}`;
  return `"${info.identity}"${info.user ? ` (user ${info.user})` : ""}`;
}

/** 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st. */
export function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

const SUPERSEDED = new WeakSet<object>();

function superseded(err: HelmLockError): HelmLockError {
  SUPERSEDED.add(err);
  return err;
}

/**
 * Whether `err` says a newer job superseded this one (`--lock-queue newest`), as opposed to
 * an outdated order key: `--lock-superseded-ok` turns only the former into exit 0.
 */
export function isSuperseded(err: unknown): err is HelmLockError {
  return typeof err === "object" && err !== null && SUPERSEDED.has(err);
}

/** Options for {@linkcode acquireInOrder}: the lock's, and how to queue. */
export interface QueueOptions extends LockOptions {
  /** `--lock-queue`. @default {"fifo"} */
  mode?: QueueMode;
  /** `--lock-order-key`: orders the queue and refuses a deploy older than the last one. */
  orderKey?: number;
  /** The queue's Lease operations (tests put a fake API server here). */
  queueApi?: QueueApi;
  /** Called once we hold a ticket, with its number. */
  onQueued?: (ticket: number) => void;
}

/** A lock taken through the queue. */
export interface QueuedLock extends HeldLock {
  /** Our ticket number; none when the lock was free and nobody queued (the fast path). */
  readonly ticket: number | undefined;
  /**
   * Records a successful deploy on the release's persistent state: our ticket and order
   * key, so that older deploys are refused from now on. Call it while holding the lock.
   */
  recordDeploy(): Promise<void>;
}

interface Seen {
  lease: V1Lease;
  ticket: Ticket;
  observedAt: number;
  /** The resourceVersion we already asked to delete, when expired. */
  deleting?: string;
}

const WAITING = "waiting";
const HOLDING = "holding";

/**
 * Takes the lock through the release's deploy queue (see the module documentation).
 *
 * @returns The held lock; call `recordDeploy()` after a successful deploy and `release()`
 * on every exit path.
 * @throws {HelmLockError} {@linkcode ExitCode.Superseded} when this job is outdated (its
 * order key is lower than the last deploy's) or superseded (`newest`: a newer job took the
 * lock); helm must not run. Everything {@linkcode acquireLock} throws.
 */
export async function acquireInOrder(options: QueueOptions): Promise<QueuedLock> {
  const queue = new Queue(options);
  return await queue.run();
}

class Queue {
  readonly #opts: QueueOptions;
  readonly #api: QueueApi;
  readonly #clock: Clock;
  readonly #sleep: Sleep;
  readonly #mode: QueueMode;
  readonly #graceUnitMs: number;
  readonly #seen = new Map<string, Seen>();
  readonly #turn: LockTurn & { grace: number } = {
    grace: 0,
    graceMs: () => this.#turn.grace,
    changes: new EventTarget(),
  };
  readonly #stop = new AbortController();
  readonly #superseded = new AbortController();
  #wake: AbortController | undefined;
  #place: { place: number; ahead?: LockHolderInfo } = { place: 1 };
  #mine: V1Lease | undefined;
  #n = 0;
  #rv = "";

  constructor(opts: QueueOptions) {
    this.#opts = opts;
    this.#api = opts.queueApi ?? kubeQueueApi(opts.client, opts.namespace);
    this.#clock = opts.clock ?? { now: () => performance.now(), date: () => new Date() };
    this.#sleep = opts.sleep ?? ((ms, signal) => delay(ms, { signal }));
    this.#mode = opts.mode ?? "fifo";
    this.#graceUnitMs = (opts.leaseDurationSeconds ?? LockDefaults.leaseDurationSeconds) * 1000;
  }

  #action(verb: string): ApiAction {
    return {
      verb,
      resource: "leases",
      namespace: this.#opts.namespace,
      user: this.#opts.user ?? this.#opts.client.user,
      server: this.#opts.server ?? this.#opts.client.server,
    };
  }

  /** Bounds a request like the lock does: a stalled connection must not stall the queue. */
  async #request<T>(verb: string, p: Promise<T>): Promise<T> {
    const settled = new AbortController();
    const timeout = this.#sleep(LockDefaults.requestTimeoutMs, settled.signal).then(() => {
      throw new DOMException("The API server did not answer in time", "TimeoutError");
    }, () => undefined as never);
    try {
      return await Promise.race([p, timeout]);
    } catch (err) {
      if (err instanceof HelmLockError) throw err;
      if (isStatus(err, 409) || isStatus(err, 404)) throw err;
      throw apiError(err, this.#action(verb));
    } finally {
      settled.abort();
    }
  }

  get #where(): string {
    return `release "${this.#opts.release}" in namespace "${this.#opts.namespace}"`;
  }

  #outdated(state: V1Lease | undefined): HelmLockError | undefined {
    const key = this.#opts.orderKey;
    const a = state?.metadata?.annotations ?? {};
    const deployed = intOf(a[QueueAnnotation.deployedKey]);
    if (key === undefined || deployed === undefined || key >= deployed) return undefined;
    const by = a[QueueAnnotation.deployedBy];
    const at = a[QueueAnnotation.deployedAt];
    return new HelmLockError(
      ExitCode.Superseded,
      `Cannot deploy ${this.#where} as order key ${key} is outdated: expected at least ${deployed}, ` +
        `the key of the last successful deploy${by ? ` by ${by}` : ""}${at ? ` at ${at}` : ""}`,
    );
  }

  #supersededError(by: { description: string; ticket?: number }): HelmLockError {
    return superseded(
      new HelmLockError(
        ExitCode.Superseded,
        `Cannot deploy ${this.#where} as this job is superseded: --lock-queue newest deploys only ` +
          `the newest waiting job, found a newer one, ${by.description}${
            by.ticket === undefined ? "" : ` (ticket ${by.ticket})`
          }`,
      ),
    );
  }

  /** Takes a ticket number (compare-and-swap on the state Lease) and creates the ticket. */
  async #join(): Promise<void> {
    const { release, namespace } = this.#opts;
    const name = stateLeaseName(release);
    for (;;) {
      this.#opts.signal?.throwIfAborted();
      const state = await this.#request("get", this.#api.get(name));
      const outdated = this.#outdated(state);
      if (outdated) throw outdated;
      let n: number;
      try {
        if (!state) {
          n = 1;
          await this.#request(
            "create",
            this.#api.create(this.#stateBody({ [QueueAnnotation.nextTicket]: "2" })),
          );
        } else {
          const { managedFields: _m, ...meta } = state.metadata ?? {};
          n = intOf(meta.annotations?.[QueueAnnotation.nextTicket]) ?? 1;
          await this.#request(
            "update",
            this.#api.replace({
              ...state,
              metadata: {
                ...meta,
                annotations: { ...meta.annotations, [QueueAnnotation.nextTicket]: String(n + 1) },
              },
            }),
          );
        }
      } catch (err) {
        if (isStatus(err, 409)) continue; // Someone took a number first: take the next.
        if (isStatus(err, 404)) {
          throw missingNamespace(release, namespace, this.#opts.createNamespaceHint, err);
        }
        throw err;
      }
      this.#n = n;
      try {
        await this.#create();
        return;
      } catch (err) {
        if (isStatus(err, 409)) continue; // A stale ticket of that number: take another.
        throw err;
      }
    }
  }

  /** A new state Lease of the release with these annotations. */
  #stateBody(annotations: Record<string, string>): V1Lease {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: stateLeaseName(this.#opts.release),
        namespace: this.#opts.namespace,
        labels: { "app.kubernetes.io/managed-by": "helm-lock" },
        annotations,
      },
      spec: {},
    };
  }

  #ticketBody(state: string, base?: V1Lease): V1Lease {
    const { release, namespace, identity, annotations, orderKey } = this.#opts;
    const now = new MicroTime(this.#clock.date().getTime());
    const { managedFields: _m, ...meta } = base?.metadata ?? {};
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        ...meta,
        name: ticketLeaseName(release, this.#n),
        namespace,
        labels: { "app.kubernetes.io/managed-by": "helm-lock", [QUEUE_LABEL]: release },
        annotations: {
          ...annotations,
          [QueueAnnotation.ticket]: String(this.#n),
          [QueueAnnotation.mode]: this.#mode,
          [QueueAnnotation.state]: state,
          ...(orderKey === undefined ? {} : { [QueueAnnotation.orderKey]: String(orderKey) }),
        },
      },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: QueueTimings.ticketSeconds,
        acquireTime: base?.spec?.acquireTime ?? now,
        renewTime: now,
      },
    };
  }

  async #create(): Promise<void> {
    const written = await this.#request("create", this.#api.create(this.#ticketBody(WAITING)));
    this.#mine = written;
    this.#observe(written);
  }

  /** Renews our ticket; re-creates it (same number, same place) if someone deleted it. */
  async #renew(state = WAITING): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const written = await this.#request(
          "update",
          this.#api.replace(this.#ticketBody(state, this.#mine)),
        );
        this.#mine = written;
        this.#observe(written);
        return;
      } catch (err) {
        if (isStatus(err, 404)) {
          const { resourceVersion: _rv, uid: _uid, ...meta } = this.#mine?.metadata ?? {};
          this.#mine = { ...this.#mine, metadata: meta };
          const written = await this.#request(
            "create",
            this.#api.create(this.#ticketBody(state, this.#mine)),
          );
          this.#mine = written;
          this.#observe(written);
          return;
        }
        if (!isStatus(err, 409)) throw err;
        this.#mine = await this.#request(
          "get",
          this.#api.get(ticketLeaseName(this.#opts.release, this.#n)),
        ) ?? this.#mine;
      }
    }
  }

  #observe(lease: V1Lease): void {
    const name = lease.metadata?.name ?? "";
    const ticket = readTicket(lease);
    if (!ticket || lease.metadata?.labels?.[QUEUE_LABEL] !== this.#opts.release) return;
    const old = this.#seen.get(name);
    const changed = old?.lease.metadata?.resourceVersion !== lease.metadata?.resourceVersion;
    this.#seen.set(name, {
      lease,
      ticket,
      observedAt: changed || !old ? this.#clock.now() : old.observedAt,
    });
  }

  #onEvent = (event: LeaseEvent): void => {
    const rv = event.object?.metadata?.resourceVersion;
    switch (event.type) {
      case "ADDED":
      case "MODIFIED":
        this.#observe(event.object);
        break;
      case "DELETED":
        this.#seen.delete(event.object?.metadata?.name ?? "");
        break;
      case "BOOKMARK":
        if (rv) this.#rv = rv;
        return;
      default:
        return;
    }
    if (rv) this.#rv = rv;
    this.#wake?.abort();
  };

  async #list(): Promise<void> {
    const { items, resourceVersion } = await this.#request(
      "list",
      this.#api.list(`${QUEUE_LABEL}=${this.#opts.release}`),
    );
    const names = new Set(items.map((l) => l.metadata?.name ?? ""));
    for (const name of [...this.#seen.keys()]) if (!names.has(name)) this.#seen.delete(name);
    for (const lease of items) this.#observe(lease);
    this.#rv = resourceVersion;
  }

  async #watchLoop(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    let relist = false;
    while (!signal.aborted) {
      const openedAt = this.#clock.now();
      let events = 0;
      try {
        if (relist) await this.#list();
        relist = false;
        const { ended } = await this.#api.watch(
          `${QUEUE_LABEL}=${this.#opts.release}`,
          this.#rv,
          (e) => {
            events++;
            // 410 Gone: too old to resume from; list afresh.
            if (e.type === "ERROR") relist = true;
            else this.#onEvent(e);
          },
          signal,
        );
        await ended;
      } catch {
        relist = true;
      }
      if (signal.aborted) return;
      this.#wake?.abort();
      if (!relist && (events > 0 || this.#clock.now() - openedAt >= 5_000)) {
        failures = 0;
        continue;
      }
      const retries = QueueTimings.watchRetryMs;
      relist = true;
      const wait = retries[Math.min(failures++, retries.length - 1)] ?? 30_000;
      await this.#sleep(wait, signal).catch(() => {});
    }
  }

  /** Live tickets; dead ones are deleted (guarded, once each). */
  #live(now: number): { tickets: Ticket[]; nextExpiry: number } {
    const tickets: Ticket[] = [];
    let nextExpiry = Infinity;
    const mine = this.#mine?.metadata?.name;
    for (const [name, seen] of this.#seen) {
      const seconds = seen.lease.spec?.leaseDurationSeconds ?? QueueTimings.ticketSeconds;
      const expiresAt = seen.observedAt + seconds * 1000;
      if (name === mine || now < expiresAt) {
        tickets.push(seen.ticket);
        if (name !== mine) nextExpiry = Math.min(nextExpiry, expiresAt);
        continue;
      }
      const { uid = "", resourceVersion = "" } = seen.lease.metadata ?? {};
      if (seen.deleting !== resourceVersion) {
        seen.deleting = resourceVersion;
        this.#api.delete(name, { uid, resourceVersion }).catch(() => {});
      }
    }
    return { tickets, nextExpiry };
  }

  /** Recomputes our turn; aborts the wait when a newer job has superseded us. */
  #evaluate(now: number): number {
    const { tickets, nextExpiry } = this.#live(now);
    const me = tickets.find((t) => t.n === this.#n && t.info.identity === this.#opts.identity);
    if (!me) return nextExpiry;
    const by = supersededBy(tickets, me);
    if (by && !this.#superseded.signal.aborted) {
      this.#superseded.abort(
        this.#supersededError({ description: describeJob(by.info), ticket: by.n }),
      );
    }
    const order = queueOrder(tickets);
    const index = Math.max(0, order.indexOf(me));
    const ahead = order[index - 1];
    this.#place = { place: index + 1, ...(ahead ? { ahead: ahead.info } : {}) };
    const grace = index * this.#graceUnitMs;
    if (grace !== this.#turn.grace) {
      this.#turn.grace = grace;
      this.#turn.changes.dispatchEvent(new Event("change"));
    }
    return nextExpiry;
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    let renewAt = this.#clock.now() + QueueTimings.renewMs;
    while (!signal.aborted) {
      let now = this.#clock.now();
      if (now >= renewAt) {
        try {
          await this.#renew();
          renewAt = now + QueueTimings.renewMs;
        } catch {
          renewAt = now + QueueTimings.retryMs;
        }
        if (signal.aborted) return;
        now = this.#clock.now();
      }
      const nextExpiry = this.#evaluate(now);
      this.#wake = new AbortController();
      const wakeAt = Math.min(renewAt, nextExpiry);
      await this.#sleep(Math.max(0, wakeAt - now), AbortSignal.any([signal, this.#wake.signal]))
        .catch(() => {});
      this.#wake = undefined;
    }
  }

  /** Deletes our ticket, guarded; a failure only leaves it to expire. */
  async #leave(): Promise<void> {
    const mine = this.#mine;
    if (!mine) return;
    this.#mine = undefined;
    const { uid = "", resourceVersion = "" } = mine.metadata ?? {};
    await this.#request(
      "delete",
      this.#api.delete(mine.metadata?.name ?? "", { uid, resourceVersion }),
    )
      .catch(async (err) => {
        if (!isStatus(err, 409)) return;
        // Renewed in between: delete the version that is there, if it is still ours.
        const fresh = await this.#api.get(mine.metadata?.name ?? "").catch(() => undefined);
        if (fresh?.spec?.holderIdentity !== this.#opts.identity) return;
        await this.#api.delete(fresh.metadata?.name ?? "", {
          uid: fresh.metadata?.uid ?? "",
          resourceVersion: fresh.metadata?.resourceVersion ?? "",
        }).catch(() => {});
      });
  }

  async run(): Promise<QueuedLock> {
    const startedAt = this.#clock.now();
    const fast = await this.#fastPath();
    if (fast) return fast;
    await this.#join();
    this.#opts.onQueued?.(this.#n);
    let loops: Promise<unknown> | undefined;
    let held: HeldLock | undefined;
    try {
      await this.#list();
      this.#evaluate(this.#clock.now());
      loops = Promise.all([this.#loop(), this.#watchLoop()]);
      const userSignal = this.#opts.signal;
      const onProgress = this.#opts.onProgress;
      held = await acquireLock({
        ...this.#opts,
        timeoutMs: Math.max(0, this.#opts.timeoutMs - (this.#clock.now() - startedAt)),
        signal: userSignal
          ? AbortSignal.any([userSignal, this.#superseded.signal])
          : this.#superseded.signal,
        turn: this.#turn,
        ...(onProgress ? { onProgress: (p) => onProgress({ ...p, queue: this.#place }) } : {}),
      });
      this.#stop.abort();
      this.#dropDeadHolders();
      // Tell the queue (a `newest` waiter behind us is superseded now), then check that no
      // newer deploy happened while we waited.
      const [, state] = await Promise.all([
        this.#renew(HOLDING).catch(() => {}),
        this.#request("get", this.#api.get(stateLeaseName(this.#opts.release))),
      ]);
      const refusal = this.#outdated(state) ?? this.#newerDeployed(state);
      if (refusal) throw refusal;
      return this.#queued(held, state);
    } catch (err) {
      this.#stop.abort();
      if (held) await held.release().catch(() => {});
      await this.#leave();
      throw err;
    } finally {
      this.#stop.abort();
      loops?.catch(() => {});
    }
  }

  /**
   * The uncontended path, most deploys: when the release's queue holds no ticket at all, the
   * lock is created at once, without a ticket (two requests instead of seven). A job that
   * finds the queue empty has come before every job that queues later, so FIFO holds; one
   * that finds any ticket (waiting, holding, or dead and not yet collected) queues behind it.
   * An order key is checked against the state before anything is written, and again once
   * the lock is held (a deploy may have landed in between).
   *
   * @returns The held lock, or `undefined` when the queue decides (tickets, a held lock, no
   * answer).
   */
  async #fastPath(): Promise<QueuedLock | undefined> {
    const { release, orderKey } = this.#opts;
    const stateName = stateLeaseName(release);
    const readState = () =>
      orderKey === undefined ? undefined : this.#request("get", this.#api.get(stateName));
    let queued: boolean;
    try {
      const [{ items }, state] = await Promise.all([
        this.#request("list", this.#api.list(`${QUEUE_LABEL}=${release}`)),
        readState(),
      ]);
      const outdated = this.#outdated(state);
      if (outdated) throw outdated;
      queued = items.some((lease) => readTicket(lease) !== undefined);
    } catch (err) {
      if (err instanceof HelmLockError) throw err;
      return undefined; // 404 or 409 from a read: let the queue's own requests say it.
    }
    if (queued) return undefined;
    const held = await createLock(this.#opts);
    if (!held) return undefined;
    try {
      const state = await readState();
      const outdated = this.#outdated(state);
      if (outdated) throw outdated;
      return this.#queued(held, state);
    } catch (err) {
      await held.release().catch(() => {});
      throw err;
    }
  }

  /**
   * We hold the lock, so any other ticket still marked holding is a dead holder's (killed
   * before it could leave): removed now (guarded) rather than after it expires.
   */
  #dropDeadHolders(): void {
    const mine = this.#mine?.metadata?.name;
    for (const [name, seen] of this.#seen) {
      if (name === mine || !seen.ticket.holding) continue;
      const { uid = "", resourceVersion = "" } = seen.lease.metadata ?? {};
      seen.deleting = resourceVersion;
      this.#api.delete(name, { uid, resourceVersion }).catch(() => {});
    }
  }

  /** `newest`: a job that came after us deployed while we waited (we missed its turn). */
  #newerDeployed(state: V1Lease | undefined): HelmLockError | undefined {
    if (this.#mode !== "newest" || this.#opts.orderKey !== undefined) return undefined;
    const a = state?.metadata?.annotations ?? {};
    const ticket = intOf(a[QueueAnnotation.deployedTicket]);
    if (ticket === undefined || ticket <= this.#n) return undefined;
    return this.#supersededError({ description: a[QueueAnnotation.deployedBy] ?? "", ticket });
  }

  #queued(held: HeldLock, known: V1Lease | undefined): QueuedLock {
    const name = stateLeaseName(this.#opts.release);
    const record = async () => {
      const { orderKey, annotations, identity } = this.#opts;
      // Without a ticket (the fast path) and an order key, no later job checks anything.
      if (this.#n === 0 && orderKey === undefined) return;
      const job = annotations[`${ANNOTATION_PREFIX}ci-job-url`];
      // The state as read when the lock was taken: usually still current, saving a read.
      let state = known;
      for (let attempt = 0; attempt < 5; attempt++) {
        if (attempt > 0) state = await this.#request("get", this.#api.get(name));
        const { managedFields: _m, ...meta } = state?.metadata ?? {};
        const a = meta.annotations ?? {};
        const deployedKey = intOf(a[QueueAnnotation.deployedKey]);
        const deployedTicket = intOf(a[QueueAnnotation.deployedTicket]) ?? 0;
        const next: Record<string, string> = {
          ...a,
          [QueueAnnotation.deployedBy]: job ? `CI job ${job}` : `"${identity}"`,
          [QueueAnnotation.deployedAt]: this.#clock.date().toISOString(),
        };
        if (this.#n > 0) {
          next[QueueAnnotation.deployedTicket] = String(Math.max(deployedTicket, this.#n));
        }
        if (orderKey !== undefined) {
          next[QueueAnnotation.deployedKey] = String(Math.max(deployedKey ?? orderKey, orderKey));
        }
        try {
          await this.#request(
            state ? "update" : "create",
            state
              ? this.#api.replace({ ...state, metadata: { ...meta, annotations: next } })
              // Never made (only fast-path deploys so far) or deleted by an admin.
              : this.#api.create(this.#stateBody(next)),
          );
          return;
        } catch (err) {
          if (!isStatus(err, 409)) throw err;
        }
      }
    };
    let released: Promise<void> | undefined;
    return {
      ticket: this.#n || undefined,
      get lost() {
        return held.lost;
      },
      validUntil: () => held.validUntil(),
      recordDeploy: record,
      release: () =>
        released ??= (async () => {
          // The ticket is no longer waiting: its delete need not hold up the handoff.
          const leaving = this.#leave();
          try {
            await held.release();
          } finally {
            await leaving;
          }
        })(),
    };
  }
}
