/**
 * What the waiting (`wait.ts`) and the holding (`lock.ts`) side of the lock share:
 * injected time, the Lease API, request limits and the holder's Lease body.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { MicroTime } from "../kube/micro_time.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { Annotation, ANNOTATION_PREFIX } from "./identity.ts";
import type { ApiAction } from "../kube/api_error.ts";
import type { LeaseApi } from "./lease_api.ts";

/** A monotonic clock for durations and a wall clock for timestamps written to the Lease. */
export interface Clock {
  /** Monotonic milliseconds (like `performance.now()`). */
  now(): number;
  /** The current wall-clock time. */
  date(): Date;
}

/** Waits `ms` milliseconds; rejects with `signal.reason` when `signal` aborts. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Defaults shared by the waiting and the holding side. */
export const LockDefaults = {
  leaseDurationSeconds: 15,
  /** A single API request may not take longer than this. */
  requestTimeoutMs: 10_000,
} as const;

/** Everything the waiting and holding code share. */
export interface LockContext {
  api: LeaseApi;
  name: string;
  namespace: string;
  release: string;
  identity: string;
  annotations: Record<string, string>;
  durationSeconds: number;
  clock: Clock;
  sleep: Sleep;
  random: () => number;
  user: string;
  server: string;
  /** Says something the user should know once (a missing RBAC verb). */
  warn: (line: string) => void;
}

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
 * Bounds an API request on the injected clock: a stalled connection must not stall
 * renewals or the wait. Like `deadline()`, it does not cancel the request; it rejects with
 * a `DOMException` named `TimeoutError` whose message says how long it waited.
 */
export async function request<T>(
  ctx: LockContext,
  p: Promise<T>,
  limitMs: number = LockDefaults.requestTimeoutMs,
): Promise<T> {
  const settled = new AbortController();
  const ms = Math.min(limitMs, LockDefaults.requestTimeoutMs);
  const timeout = ctx.sleep(ms, settled.signal)
    .then(() => {
      throw new DOMException(noAnswer(ms), "TimeoutError");
    }, () => undefined as never);
  try {
    return await Promise.race([p, timeout]);
  } finally {
    settled.abort();
  }
}

/** The {@linkcode apiError} description of a request on our Lease. */
export function action(ctx: LockContext, verb: string): ApiAction {
  return { verb, resource: "leases", namespace: ctx.namespace, user: ctx.user, server: ctx.server };
}

/**
 * Whether an error is worth retrying: a network failure, a timeout, 429 or a 5xx. Only an
 * API server's answer can be a refusal: other errors carry numeric codes of their own
 * (a timeout's `DOMException` has code 23) that say nothing about the server.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof HelmLockError) return false;
  const code = (err as { code?: unknown } | undefined)?.code;
  // An answer is an Error with a numeric HTTP code (client-node's ApiException and the like).
  const answered = err instanceof Error && !(err instanceof DOMException) &&
    typeof code === "number";
  return !answered || code === 429 || (code as number) >= 500;
}

/**
 * A Lease body that makes us the holder, based on `base` (or a new Lease), stamped
 * `started-at` now. Renewals keep that stamp: they rewrite only `renewTime`.
 */
export function holderLease(ctx: LockContext, base: V1Lease | undefined): V1Lease {
  const date = ctx.clock.date();
  const now = new MicroTime(date.getTime());
  const { managedFields: _managed, ...meta } = base?.metadata ?? {};
  const others = Object.entries(meta.annotations ?? {}).filter(([k]) =>
    !k.startsWith(ANNOTATION_PREFIX)
  );
  const previous = base?.spec?.holderIdentity;
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      ...meta,
      name: ctx.name,
      namespace: ctx.namespace,
      labels: { ...meta.labels, "app.kubernetes.io/managed-by": "helm-lock" },
      annotations: {
        ...Object.fromEntries(others),
        ...ctx.annotations,
        // Now, not when we began waiting: waiters read it as "held since".
        [Annotation.startedAt]: date.toISOString(),
      },
    },
    spec: {
      holderIdentity: ctx.identity,
      leaseDurationSeconds: ctx.durationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (base?.spec?.leaseTransitions ?? 0) +
        (previous && previous !== ctx.identity ? 1 : 0),
    },
  };
}

/**
 * The error for a release namespace that does not exist: the lock is taken before helm
 * runs, so before helm could create it.
 *
 * @param hint Whether to suggest `--create-namespace` (helm's install and upgrade have it).
 */
export function missingNamespace(
  release: string,
  namespace: string,
  hint: boolean | undefined,
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
