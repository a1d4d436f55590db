/**
 * The lock: a `coordination.k8s.io/v1` Lease named `helm-lock-<release>` in the release
 * namespace (shared/DESIGN.md §2).
 *
 * - Acquire: create the Lease, or take it over when its holder is empty or it expired.
 *   Expiry is judged like client-go's leader election: from the local (monotonic) time at
 *   which this process last saw the record change, plus the record's own
 *   `leaseDurationSeconds` — never by comparing our clock with the holder's `renewTime`.
 * - Every write carries the resourceVersion it was based on; a 409 means someone else
 *   moved first: re-read and carry on.
 * - Wait: a watch on the single Lease wakes the waiter as soon as it is released or
 *   deleted; a jittered poll covers a broken watch; failed requests back off (1 s doubling
 *   to 15 s, jittered).
 * - Hold and release: `hold.ts` (renew every retry period, loss at the renew deadline or
 *   at once when the Lease is deleted or taken over, release on every path).
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { delay } from "../async.ts";
import { apiError, isStatus } from "../kube/api_error.ts";
import { kubeLeaseApi } from "./lease_api.ts";
import {
  action,
  type Clock,
  holderLease,
  isTransient,
  type LockContext,
  LockDefaults,
  missingNamespace,
  request,
  type Sleep,
} from "./context.ts";
import { Held, type HeldLock } from "./hold.ts";
import { holderInfo, Waiter } from "./wait.ts";
import type { LockHolderInfo, LockOptions, WaitProgress } from "./options.ts";

export { holderInfo, LockDefaults };
export type { Clock, HeldLock, LockHolderInfo, LockOptions, Sleep, WaitProgress };

/**
 * Acquires the lock for a release, waiting up to `timeoutMs`.
 *
 * @param options What to lock and how long to wait.
 * @returns The held lock; call `release()` on every exit path.
 * @throws {HelmLockError} {@linkcode ExitCode.LockTimeout} when the wait times out (the
 * message names the holder, its CI job, since when, and `--lock-timeout`);
 * {@linkcode ExitCode.Forbidden} or {@linkcode ExitCode.Unreachable} when the API server
 * refuses or cannot be reached.
 * @throws {unknown} `signal.reason` when `signal` aborts; nothing is left held.
 */
export async function acquireLock(options: LockOptions): Promise<HeldLock> {
  const ctx = lockContext(options);
  const waiter = new Waiter(ctx, options);
  const { lease, sentAt } = await waiter.run();
  return await holding(ctx, lease, sentAt, options.signal);
}

/**
 * Takes the lock only if its Lease does not exist: one create, no waiting. The deploy
 * queue's fast path (`queue.ts`), for when nobody queues.
 *
 * @param options What to lock (`timeoutMs`, `onProgress` and `turn` are not used).
 * @returns The held lock; `undefined` when the Lease exists, or when the create got no
 * answer (it may have landed: {@linkcode acquireLock} then finds it ours and takes it).
 * @throws {HelmLockError} when the namespace does not exist, or the API server refuses.
 * @throws {unknown} `signal.reason` when `signal` aborts; nothing is left held.
 */
export async function createLock(options: LockOptions): Promise<HeldLock | undefined> {
  const ctx = lockContext(options);
  options.signal?.throwIfAborted();
  const sentAt = ctx.clock.now();
  let lease;
  try {
    lease = await request(ctx, ctx.api.create(holderLease(ctx, undefined)));
  } catch (err) {
    if (isStatus(err, 409) || isTransient(err)) return undefined;
    if (isStatus(err, 404)) {
      throw missingNamespace(ctx.release, ctx.namespace, options.createNamespaceHint, err);
    }
    throw apiError(err, action(ctx, "create"));
  }
  return await holding(ctx, lease, sentAt, options.signal);
}

function lockContext(options: LockOptions): LockContext {
  const name = `helm-lock-${options.release}`;
  const client = options.client;
  const ctx: LockContext = {
    api: options.api ?? kubeLeaseApi(client, options.namespace, name),
    name,
    namespace: options.namespace,
    release: options.release,
    identity: options.identity,
    annotations: options.annotations,
    durationSeconds: options.leaseDurationSeconds ?? LockDefaults.leaseDurationSeconds,
    clock: options.clock ?? { now: () => performance.now(), date: () => new Date() },
    sleep: options.sleep ?? ((ms, signal) => delay(ms, { signal })),
    random: options.random ?? Math.random,
    user: options.user ?? client.user,
    server: options.server ?? client.server,
    warn: options.warn ?? (() => {}),
  };
  if (!(ctx.durationSeconds >= 1) || !Number.isInteger(ctx.durationSeconds)) {
    throw new RangeError(
      `Cannot lock as 'leaseDurationSeconds' must be a positive integer: current value is ${ctx.durationSeconds}`,
    );
  }
  return ctx;
}

/** Holds the Lease just written; hands it straight back if `signal` aborted meanwhile. */
async function holding(
  ctx: LockContext,
  lease: V1Lease,
  sentAt: number,
  signal: AbortSignal | undefined,
): Promise<HeldLock> {
  const held = new Held(ctx, lease, sentAt);
  if (signal?.aborted) {
    // Aborted while our create/takeover was in flight: hand the lock straight back.
    await held.release();
    throw signal.reason;
  }
  return held;
}
