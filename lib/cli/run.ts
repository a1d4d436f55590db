/**
 * One locked helm command, top to bottom (DESIGN §7): find helm, connect like helm, take the
 * lock through the queue, check and recover the release, run helm fenced and watched, release.
 * Each stage is one call; what must be undone is undone in one place (`using`).
 *
 * @module
 */

import type { Invocation } from "./args.ts";
import { connect } from "../kube/connection.ts";
import { findHelm, guardHelm, runHelm, runHelmDirectly } from "../helm/exec.ts";
import { fenceHelm } from "../helm/fence.ts";
import { heldByAncestor } from "../helm/nesting.ts";
import { recover } from "../helm/recover.ts";
import { listenForSignals } from "../helm/signals.ts";
import { lockName } from "../lock/names.ts";
import { release, take } from "../lock/run_lock.ts";
import type { Reporter } from "../report.ts";

/**
 * Runs the invocation under the lock and returns the exit code to end with: helm's own, or
 * 128 + signal.
 *
 * @throws {HelmLockError} for a missing helm, a lock timeout, a lost lock, a failed recovery, an
 *   unreachable or refusing API server; the lock is released before it is thrown.
 */
export async function run(inv: Invocation, say: Omit<Reporter, "event">): Promise<number> {
  const helm = findHelm();
  const conn = connect(inv.cluster);
  say.debug(`API server ${conn.server} as ${conn.user}`);
  const ancestor = heldByAncestor(conn.namespace, inv.release);
  if (ancestor) {
    // Run as helm by the helm-lock that holds this very lock: waiting would wait for ourselves.
    say.debug(
      `running helm directly: the lock ${lockName(inv.release)} in namespace ` +
        `"${conn.namespace}" is held by ${ancestor.identity}, the helm-lock that started this one`,
    );
    return await runHelmDirectly(inv.helmArgs);
  }
  using signals = listenForSignals(say.info);
  await using guard = guardHelm();
  const lock = await take(conn, inv, signals, say);
  if (typeof lock === "number") return lock;
  let code: number | undefined;
  try {
    await using fence = fenceHelm({ ...inv.cluster, fence: inv.fence }, conn, lock.held, say);
    await recover(inv, lock, fence.env, signals);
    return code = await runHelm(helm, inv, lock, fence.env, signals);
  } catch (err) {
    if (lock.held.lost.aborted) {
      lock.report.event("Lost", String((err as Error)?.message ?? err), "Warning");
    }
    throw err;
  } finally {
    // helm is done: the watchdog ends now, while the lock is released, not at our exit. Whoever
    // reads our stderr (a CI runner, a pipe) waits for the watchdog, which shares it, to exit.
    await guard[Symbol.asyncDispose]();
    await release(lock, inv, code);
  }
}
