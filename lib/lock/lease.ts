/**
 * The lock Lease (docs/design.md §2): what a holder writes, what a reader may trust of it, and
 * the timing and request helpers the waiting and holding sides share.
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { statusCode } from "../kube/api_error.ts";
import { MicroTime } from "../kube/micro_time.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { Annotation } from "./identity.ts";
import { type LeaseApi, REQUEST_LIMIT_MS, type Timing } from "./cache.ts";
import { lockName, PREFIX, RELEASE_LABEL, releaseLabels } from "./names.ts";

/** `--lock-lease-duration` when not given: client-go's leader-election default. */
export const DEFAULT_LEASE_SECONDS = 15;

/**
 * The longest `--lock-lease-duration`, and the longest lease a waiter waits out or `lock-unlock`
 * watches: a tampered Lease asking for decades must not block the release that long.
 */
export const MAX_LEASE_DURATION_MS = 3_600_000;

/** The holder's timing, scaled like client-go's leader election (docs/design.md). */
export function holdTimings(durationSeconds: number) {
  const durationMs = durationSeconds * 1000;
  const renewDeadlineMs = (durationMs * 2) / 3;
  return {
    durationMs,
    renewDeadlineMs,
    retryPeriodMs: (durationMs * 2) / 15,
    renewRequestTimeoutMs: renewDeadlineMs / 2,
  };
}

/**
 * Bounds a request on the injected clock; like std's `deadline()`, it does not cancel it.
 * @throws {DOMException} named `TimeoutError` ("no answer within 10 s") after `limitMs`.
 */
export async function within<T>(t: Timing, p: Promise<T>, limitMs = REQUEST_LIMIT_MS): Promise<T> {
  const settled = new AbortController();
  const ms = Math.min(limitMs, REQUEST_LIMIT_MS);
  const timeout = t.sleep(ms, settled.signal).then(() => {
    const s = ms / 1000;
    throw new DOMException(
      `no answer within ${Number.isInteger(s) ? s : s.toFixed(1)} s`,
      "TimeoutError",
    );
  }, () => undefined as never);
  try {
    return await Promise.race([p, timeout]);
  } finally {
    settled.abort();
  }
}

/** A network failure, a timeout, 429 or a 5xx: anything but the API server's refusal. */
export function isTransient(err: unknown): boolean {
  if (err instanceof HelmLockError) return false;
  const code = statusCode(err);
  return code === undefined || code === 429 || code >= 500;
}

/** The lock is taken before helm could create the namespace; `hint`: `--create-namespace`. */
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

/** Who holds a lock (or waits in a ticket): bounded, as anyone may write its Lease. */
export interface HolderInfo {
  identity: string;
  ciJobUrl?: string;
  user?: string;
  host?: string;
  command?: string;
  /** When the holder took the lock (by its own clock). */
  since?: Date;
}

/** A field of another party's Lease, cut to a sane length (printing escapes the rest). */
export function bounded(value: unknown, max = 256): string | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

export function dateOf(value: unknown): Date | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const date = value instanceof Date ? value : new Date(String(value).slice(0, 64));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** When the API server last wrote a Lease, by its clock (epoch ms; `managedFields` times). */
export function writtenAt(lease: V1Lease): number | undefined {
  const { creationTimestamp, managedFields = [] } = lease.metadata ?? {};
  const times = [creationTimestamp, ...managedFields.map((f) => f.time)]
    .map((t) => dateOf(t)?.getTime()).filter((t) => t !== undefined);
  return times.length > 0 ? Math.max(...times) : undefined;
}

export function holderInfo(lease: V1Lease): HolderInfo {
  const a = lease.metadata?.annotations ?? {};
  const info: HolderInfo = { identity: bounded(lease.spec?.holderIdentity) ?? "" };
  for (const key of ["ciJobUrl", "user", "host", "command"] as const) {
    const text = bounded(a[Annotation[key]], key === "command" ? 1024 : 256);
    if (text) info[key] = text;
  }
  const since = dateOf(a[Annotation.startedAt]) ?? dateOf(lease.spec?.acquireTime);
  if (since) info.since = since;
  return info;
}

/** A Lease's duration (ms), sanitized: ours (`fallbackSeconds`) when invalid, capped. */
export function leaseMs(lease: V1Lease, fallbackSeconds: number): number {
  const s = lease.spec?.leaseDurationSeconds;
  const seconds = typeof s === "number" && Number.isInteger(s) && s > 0 ? s : fallbackSeconds;
  return Math.min(seconds * 1000, MAX_LEASE_DURATION_MS);
}

/** What a lock holder writes; `position`: our ticket's, so `newest` waiters ahead of it know. */
interface HolderSpec {
  release: string;
  namespace: string;
  identity: string;
  annotations: Record<string, string>;
  durationSeconds: number;
  position?: string;
}

/** The queue position (a ticket's creation resourceVersion) the holder came from. */
export const POSITION = `${PREFIX}position`;

/** A lock Lease that makes us the holder, from `base` (a released or expired lock) or new. */
export function holderLease(spec: HolderSpec, base: V1Lease | undefined, now: Date): V1Lease {
  const time = new MicroTime(now.getTime());
  const { managedFields: _m, ...meta } = base?.metadata ?? {};
  // Another tool's annotations stay; ours are all rewritten.
  const others = Object.entries(meta.annotations ?? {}).filter(([k]) => !k.startsWith(PREFIX));
  const previous = base?.spec?.holderIdentity;
  // An int32: a tampered count is not carried on into one the API server refuses.
  const n = base?.spec?.leaseTransitions;
  const transitions = Number.isInteger(n) && n! >= 0 && n! < 2 ** 31 - 1 ? n! : 0;
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
      leaseTransitions: transitions + (previous && previous !== spec.identity ? 1 : 0),
    },
  };
}

/** Waits after failed requests (ms): 1 s doubling to 15 s, ±25 % so a burst spreads out. */
export function backoff(random: () => number): () => number {
  let failures = 0;
  return () => Math.min(1_000 * 2 ** Math.min(failures++, 16), 15_000) * (0.75 + 0.5 * random());
}

/** Labels an older helm-lock's lock so our watch sees it (its holder re-reads on conflict). */
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
