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
}

/**
 * Bounds an API request on the injected clock: a stalled connection must not stall
 * renewals or the wait. Like `deadline()`, it does not cancel the request; it rejects with
 * a `DOMException` named `TimeoutError`.
 */
export async function request<T>(
  ctx: LockContext,
  p: Promise<T>,
  limitMs: number = LockDefaults.requestTimeoutMs,
): Promise<T> {
  const settled = new AbortController();
  const timeout = ctx.sleep(Math.min(limitMs, LockDefaults.requestTimeoutMs), settled.signal)
    .then(() => {
      throw new DOMException("The API server did not answer in time", "TimeoutError");
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

/** Whether an error is worth retrying: a network failure, a timeout, 429 or a 5xx. */
export function isTransient(err: unknown): boolean {
  if (err instanceof HelmLockError) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "number") return code === 429 || code >= 500;
  return true;
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
