/**
 * Sets up the fence (`lib/fence/`) for a held lock: opens the pass-through, cuts it the
 * moment the lock is lost, and gives the environment that points helm at it, or says on
 * one line why helm runs unfenced.
 *
 * @module
 */

import type { ClusterFlags } from "../kube/cluster_flags.ts";
import type { KubeConnection } from "../kube/connection.ts";
import type { HeldLock } from "../lock/lock.ts";
import { KubeCache, PassThrough, planFence } from "../fence/mod.ts";

/** Where the notice and statistics go (`locked_run.ts`'s Reporter). */
interface Reporter {
  info(line: string): void;
  debug(line: string): void;
}

/** What the fence needs of the lock: its validity, and the moment it is lost. */
export type FenceLock = Pick<HeldLock, "validUntil" | "lost">;

/** A fence around helm's traffic, or none. */
export interface Fenced {
  /** Environment for every helm helm-lock starts while it holds the lock; empty if unfenced. */
  readonly env: Record<string, string>;
  /**
   * Cuts helm off (if not yet), stops the pass-through, reports what went through and starts
   * removing helm's cache directory: call it once every helm started with `env` has exited.
   */
  close(): Promise<void>;
  /** Settles once `close()` has removed helm's cache directory (off the release's path). */
  removed(): Promise<void>;
}

/**
 * Fences helm's traffic to the API server behind the held lock.
 *
 * @param flags helm's connection flags (an explicit `--kube-apiserver` rules fencing out)
 *   and `--lock-no-fence`.
 * @param conn The connection helm will use.
 * @param held The lock; its `validUntil()` gates every forwarded chunk.
 * @param report Where the one-line notice and the debug statistics go.
 * @param opts `env`: the environment helm inherits (default `Deno.env.toObject()`); `gate`:
 *   connections wait until it resolves (`PassThrough`'s `gate`, and `onHeld`); `quiet`: no notice when
 *   helm cannot be fenced (the caller says it).
 */
export function fenceHelm(
  flags: ClusterFlags & { fence: boolean },
  conn: KubeConnection,
  held: FenceLock,
  report: Reporter,
  opts: {
    env?: Record<string, string | undefined>;
    gate?: Promise<void>;
    onHeld?: () => void;
    quiet?: boolean;
  } = {},
): Fenced {
  const { env = Deno.env.toObject(), gate, onHeld, quiet = false } = opts;
  if (!flags.fence) {
    if (!quiet) report.info("not fencing helm's API traffic: --lock-no-fence");
    return { env: {}, close: () => Promise.resolve(), removed: () => Promise.resolve() };
  }
  const cluster = conn.cluster;
  const plan = planFence({
    server: cluster.server,
    tlsServerName: cluster.tlsServerName,
    proxyUrl: cluster.proxyUrl,
    inCluster: cluster.name === "in-cluster",
    apiserverOnArgv: flags.kubeApiserver !== undefined,
  }, env);
  if ("off" in plan) {
    if (!quiet) {
      report.info(
        `not fencing helm's API traffic (a paused or lost holder's helm could still write): ${plan.off}`,
      );
    }
    return { env: {}, close: () => Promise.resolve(), removed: () => Promise.resolve() };
  }
  const passThrough = PassThrough.open({
    upstream: plan.upstream,
    ...(gate ? { gate } : {}),
    ...(onHeld ? { onHeld } : {}),
    validUntil: () => held.validUntil(),
    onCut: (reason) => {
      if (reason !== "helm is done") report.info(`cut helm off the API server: ${reason}`);
    },
  });
  const onLost = () => passThrough.cut("the lock was lost");
  // Opened after the loss (a fence opened when first needed): nothing may pass at all.
  if (held.lost.aborted) onLost();
  else held.lost.addEventListener("abort", onLost, { once: true });
  const via = plan.upstream.proxy ? ` through proxy ${plan.upstream.proxy.host}` : "";
  report.debug(`fence: helm reaches the API server through 127.0.0.1:${passThrough.port}${via}`);
  // client-go's caches are keyed by host and port: in the user's cache this run's port would
  // leave an entry no later run can hit (kube_cache.ts).
  const made = KubeCache.make();
  report.debug(
    "off" in made
      ? `fence: helm keeps the user's client-go cache: ${made.off}`
      : `fence: helm's client-go cache is ${made.path}, removed when helm is done`,
  );
  const cache = "off" in made ? undefined : made;
  let closed: Promise<void> | undefined;
  return {
    env: { ...plan.helmEnv(passThrough.port), ...(cache ? { KUBECACHEDIR: cache.path } : {}) },
    close() {
      return closed ??= (async () => {
        held.lost.removeEventListener("abort", onLost);
        // Called once helm has exited: its cache goes while the lock is released.
        cache?.remove();
        await passThrough.close();
        const s = passThrough.stats();
        const margin = s.minMarginMs === undefined
          ? ""
          : `, each with at least ${Math.floor(s.minMarginMs)} ms of the lock's validity left`;
        const waited = s.heldConnections > 0
          ? `, ${s.heldConnections} of them held at the gate until the lock was ready`
          : "";
        report.debug(
          `fence: forwarded ${s.forwardedBytes} bytes on ${s.connections} connections${waited}${margin}; ` +
            `after the cut-off ${s.forwardedAfterCut} bytes forwarded, ${s.refusedBytes} bytes ` +
            `and ${s.refusedConnections} connections refused`,
        );
      })();
    },
    // KubeCache.remove() is once-only: this is the removal close() started.
    removed: () => closed && cache ? cache.remove() : Promise.resolve(),
  };
}
