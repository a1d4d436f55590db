/**
 * The lock Lease itself (DESIGN §2): the body a holder writes, what a reader may take from it
 * (untrusted: any tenant who may write Leases can write this one), the holder's timing scaled
 * from the lease duration, and what the waiting and holding sides share (injected time,
 * bounded requests, which failures are worth retrying).
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { MicroTime } from "../kube/micro_time.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import type { ApiAction } from "../kube/api_error.ts";
import { Annotation } from "./identity.ts";
import type { LeaseApi } from "./api.ts";
import { lockName, PREFIX, RELEASE_LABEL, releaseLabels } from "./names.ts";

/** A monotonic clock for durations and a wall clock for timestamps written to Leases. */
export interface Clock {
  /** Monotonic milliseconds (like `performance.now()`). */
  now(): number;
  /** The current wall-clock time. */
  date(): Date;
}

/** Waits `ms` milliseconds; rejects with `signal.reason` when `signal` aborts. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Time and chance, injected so that unit tests need no real waiting. */
export interface Timing {
  clock: Clock;
  sleep: Sleep;
  /** Source of jitter, in [0, 1). */
  random: () => number;
}

/** `--lock-lease-duration` when not given: client-go's leader-election default. */
export const DEFAULT_LEASE_SECONDS = 15;

/**
 * The longest `--lock-lease-duration`: 1 hour. The Lease's `leaseDurationSeconds` is an
 * int32 (up to 68 years), but the duration is how long a killed job's lock blocks every
 * other deploy of the release and how long `lock-unlock` watches it for renewals; renewals
 * go every 2/15 of it (8 min at 1 h) and loss is declared after 2/3 of it. Leader election
 * uses seconds (client-go's default is 15 s); an hour is already far past any use.
 */
export const MAX_LEASE_DURATION_MS = 3_600_000;

/** A single request may not take longer than this (then it counts as "no answer"). */
export const REQUEST_LIMIT_MS = 10_000;

/**
 * The holder's timing, scaled from the lease duration like client-go's leader election
 * (15 s lease, 10 s renew deadline, 2 s retry period).
 */
export interface HoldTimings {
  /** A lease duration after its last renewal, a waiter may take the Lease over. */
  durationMs: number;
  /**
   * Loss is declared when no renewal sent later than this long ago succeeded: before anyone
   * may take over, so helm has the rest of the lease to stop.
   */
  renewDeadlineMs: number;
  /**
   * Renewals are sent this often (and retried this soon after a failure): any API server
   * stall shorter than `renewDeadlineMs - retryPeriodMs` loses nothing.
   */
  retryPeriodMs: number;
  /** One renewal waits this long for an answer before another is sent. */
  renewRequestTimeoutMs: number;
}

/** {@linkcode HoldTimings} for a lease of `durationSeconds`. */
export function holdTimings(durationSeconds: number): HoldTimings {
  const durationMs = durationSeconds * 1000;
  const renewDeadlineMs = (durationMs * 2) / 3;
  return {
    durationMs,
    renewDeadlineMs,
    retryPeriodMs: (durationMs * 2) / 15,
    renewRequestTimeoutMs: renewDeadlineMs / 2,
  };
}

/** "no answer within 10 s": what a request that timed out says, never "refused". */
export function noAnswer(limitMs: number): string {
  const s = limitMs / 1000;
  return `no answer within ${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/**
 * Bounds a request on the injected clock: a stalled connection must not stall renewals or the
 * wait. Like std's `deadline()`, it does not cancel the request; it rejects with a
 * `DOMException` named `TimeoutError` whose message says how long it waited.
 */
export async function within<T>(t: Timing, p: Promise<T>, limitMs = REQUEST_LIMIT_MS): Promise<T> {
  const settled = new AbortController();
  const ms = Math.min(limitMs, REQUEST_LIMIT_MS);
  const timeout = t.sleep(ms, settled.signal).then(() => {
    throw new DOMException(noAnswer(ms), "TimeoutError");
  }, () => undefined as never);
  try {
    return await Promise.race([p, timeout]);
  } finally {
    settled.abort();
  }
}

/**
 * Whether an error is worth retrying: a network failure, a timeout, 429 or a 5xx. Only an API
 * server's answer can be a refusal: other errors carry numeric codes of their own (a timeout's
 * `DOMException` has code 23) that say nothing about the server.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof HelmLockError) return false;
  const code = (err as { code?: unknown } | undefined)?.code;
  const answered = err instanceof Error && !(err instanceof DOMException) &&
    typeof code === "number";
  return !answered || code === 429 || (code as number) >= 500;
}

/** Who a lock's request acts as, for messages. */
export interface Actor {
  namespace: string;
  user: string;
  server: string;
}

/** The {@linkcode apiError} description of a request on Leases. */
export function action(who: Actor, verb: string): ApiAction {
  return { verb, resource: "leases", ...who };
}

/**
 * The error for a release namespace that does not exist: the lock is taken before helm runs,
 * so before helm could create it.
 *
 * @param hint Whether to suggest `--create-namespace` (helm's install and upgrade have it).
 */
export function missingNamespace(
  release: string,
  namespace: string,
  hint: boolean,
  cause: unknown,
): HelmLockError {
  return new HelmLockError(
    ExitCode.Internal,
    `Cannot lock release "${release}" as namespace "${namespace}" does not exist${
      hint ? "; pass --create-namespace to create it" : ""
    }`,
    { cause },
  );
}

/** Who holds a lock (or waits in a ticket), from its Lease: bounded, as anyone may write it. */
export interface HolderInfo {
  identity: string;
  ciJobUrl?: string;
  user?: string;
  host?: string;
  command?: string;
  /** When the holder took the lock (by its own clock). */
  since?: Date;
}

/** The longest text taken from a Lease field for messages (an identity is ~60 characters). */
const MAX_FIELD = 256;

/** A field of another party's Lease, cut to a sane length (printing escapes the rest). */
export function bounded(value: unknown, max = MAX_FIELD): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

/** A date from a Lease field; `undefined` when absent or not a date. */
export function dateOf(value: unknown): Date | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const date = value instanceof Date ? value : new Date(String(value).slice(0, 64));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * When the API server last wrote a Lease, by its own clock (epoch ms): its creation or its
 * newest `managedFields` entry (whole seconds).
 */
export function writtenAt(lease: V1Lease): number | undefined {
  const times = [
    lease.metadata?.creationTimestamp,
    ...(lease.metadata?.managedFields ?? [])
      .map((f) => f.time),
  ].map((t) => dateOf(t)?.getTime()).filter((t): t is number => !!t);
  return times.length > 0 ? Math.max(...times) : undefined;
}

/** Reads the holder and its annotations from a lock or ticket Lease. */
export function holderInfo(lease: V1Lease): HolderInfo {
  const a = lease.metadata?.annotations ?? {};
  const info: HolderInfo = { identity: bounded(lease.spec?.holderIdentity) ?? "" };
  const set = (key: "ciJobUrl" | "user" | "host" | "command", value: string | undefined) => {
    const text = bounded(value, key === "command" ? 1024 : MAX_FIELD);
    if (text) info[key] = text;
  };
  set("ciJobUrl", a[Annotation.ciJobUrl]);
  set("user", a[Annotation.user]);
  set("host", a[Annotation.host]);
  set("command", a[Annotation.command]);
  const since = dateOf(a[Annotation.startedAt]) ?? dateOf(lease.spec?.acquireTime);
  if (since) info.since = since;
  return info;
}

/**
 * The lease duration a Lease asks for, in ms. Anyone may write it: a value that is not a
 * positive whole number counts as ours, and one past `capSeconds` as that (a tampered Lease
 * asking for decades must not hold a waiter that long).
 */
export function leaseMs(lease: V1Lease, fallbackSeconds: number, capSeconds: number): number {
  const s = lease.spec?.leaseDurationSeconds;
  const seconds = typeof s === "number" && Number.isInteger(s) && s > 0 ? s : fallbackSeconds;
  return Math.min(seconds, capSeconds) * 1000;
}

/** What a lock holder writes. */
export interface HolderSpec {
  release: string;
  namespace: string;
  identity: string;
  /** Who we are, for waiters (`lockAnnotations()`). */
  annotations: Record<string, string>;
  durationSeconds: number;
  /** Our place in the queue (our ticket's), so that `newest` waiters ahead of it know. */
  position?: string;
}

/** Annotation: the queue position (a ticket's creation resourceVersion) the holder came from. */
export const POSITION = `${PREFIX}position`;

/**
 * A lock Lease that makes us the holder, based on `base` (a released or expired lock) or new,
 * stamped `started-at` now. Renewals keep that stamp: they rewrite only `renewTime`.
 */
export function holderLease(spec: HolderSpec, base: V1Lease | undefined, now: Date): V1Lease {
  const time = new MicroTime(now.getTime());
  const { managedFields: _m, ...meta } = base?.metadata ?? {};
  // Another tool's annotations stay; ours are all rewritten.
  const others = Object.entries(meta.annotations ?? {}).filter(([k]) => !k.startsWith(PREFIX));
  const previous = base?.spec?.holderIdentity;
  const transitions = base?.spec?.leaseTransitions;
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      ...meta,
      name: lockName(spec.release),
      namespace: spec.namespace,
      labels: { ...meta.labels, ...releaseLabels(spec.release) },
      annotations: {
        ...Object.fromEntries(others),
        ...spec.annotations,
        ...(spec.position ? { [POSITION]: spec.position } : {}),
        // Now, not when we began waiting: waiters read it as "held since".
        [Annotation.startedAt]: now.toISOString(),
      },
    },
    spec: {
      holderIdentity: spec.identity,
      leaseDurationSeconds: spec.durationSeconds,
      acquireTime: time,
      renewTime: time,
      // An int32: a tampered count is not carried on into one the API server refuses.
      leaseTransitions: (Number.isInteger(transitions) && transitions! >= 0 &&
          transitions! < 2 ** 31 - 1
        ? transitions!
        : 0) + (previous && previous !== spec.identity ? 1 : 0),
    },
  };
}

/**
 * Waits after failed requests: 1 s, doubling up to 15 s, each jittered by ±25 % so that a
 * burst of jobs that failed together does not retry together.
 */
export class Backoff {
  readonly #random: () => number;
  #failures = 0;

  constructor(timing: Pick<Timing, "random">) {
    this.#random = timing.random;
  }

  /** How long to wait after one more failure (ms). */
  next(): number {
    const wait = Math.min(1_000 * 2 ** Math.min(this.#failures++, 16), 15_000);
    return wait * (0.75 + 0.5 * this.#random());
  }
}

/**
 * Labels the lock of a helm-lock older than the release label, so that a watch by label sees
 * it (older holders renew on past the new resourceVersion: they re-read on a conflict).
 *
 * @throws {unknown} the API server's error.
 */
export async function adoptOlderLock(
  ctx: Timing & { api: LeaseApi; cache: { put(lease: V1Lease): void }; release: string },
): Promise<void> {
  const lock = await within(ctx, ctx.api.get(lockName(ctx.release)));
  if (!lock) return;
  if (lock.metadata?.labels?.[RELEASE_LABEL] === ctx.release) return ctx.cache.put(lock);
  const { managedFields: _m, ...meta } = lock.metadata ?? {};
  const labels = { ...meta.labels, ...releaseLabels(ctx.release) };
  ctx.cache.put(await within(ctx, ctx.api.replace({ ...lock, metadata: { ...meta, labels } })));
}
