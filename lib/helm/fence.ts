/**
 * The fence around helm's API traffic for a held lock (`lib/fence/`): opens the pass-through,
 * cuts it the moment the lock is lost, and gives the environment that points helm at it, or
 * says on one line why helm runs unfenced.
 *
 * @module
 */

import type { ClusterFlags } from "../kube/cluster_flags.ts";
import type { KubeConnection } from "../kube/connection.ts";
import type { HeldLock } from "../lock/hold.ts";
import { KubeCache } from "../fence/kube_cache.ts";
import { PassThrough } from "../fence/passthrough.ts";
import { planFence } from "../fence/plan.ts";
import type { Reporter } from "../report.ts";

/** What the fence needs of the lock: its validity, and the moment it is lost. */
export type FenceLock = Pick<HeldLock, "validUntil" | "lost">;

/** A fence around helm's traffic, or none. */
export interface Fenced extends AsyncDisposable {
  /** Environment for every helm helm-lock starts while it holds the lock; empty if unfenced. */
  readonly env: Record<string, string>;
}

/** No fence: helm reaches the API server directly. */
const unfenced: Fenced = { env: {}, [Symbol.asyncDispose]: () => Promise.resolve() };

/**
 * Fences helm's traffic to the API server behind the held lock. Disposing it (once every helm
 * started with its `env` has exited) cuts helm off, stops the pass-through, reports what went
 * through and removes helm's client-go cache directory.
 *
 * @param flags helm's connection flags (an explicit `--kube-apiserver` rules fencing out)
 *   and `--lock-no-fence`.
 * @param conn The connection helm will use.
 * @param held The lock; its `validUntil()` gates every forwarded chunk.
 * @param report Where the one-line notice and the debug statistics go.
 */
export function fenceHelm(
  flags: ClusterFlags & { fence: boolean },
  conn: KubeConnection,
  held: FenceLock,
  report: Pick<Reporter, "info" | "debug">,
): Fenced {
  if (!flags.fence) {
    report.info("not fencing helm's API traffic: --lock-no-fence");
    return unfenced;
  }
  const cluster = conn.cluster;
  const plan = planFence({
    server: cluster.server,
    tlsServerName: cluster.tlsServerName,
    proxyUrl: cluster.proxyUrl,
    inCluster: cluster.name === "in-cluster",
    apiserverOnArgv: flags.kubeApiserver !== undefined,
  }, conn.env);
  if ("off" in plan) {
    report.info(
      `not fencing helm's API traffic (a paused or lost holder's helm could still write): ${plan.off}`,
    );
    return unfenced;
  }
  const passThrough = PassThrough.open({
    upstream: plan.upstream,
    validUntil: () => held.validUntil(),
    onCut: (reason: string) => {
      if (reason !== "helm is done") report.info(`cut helm off the API server: ${reason}`);
    },
  });
  const port = passThrough.port;
  const onLost = () => passThrough.cut("the lock was lost");
  // Opened after the loss: nothing may pass at all.
  if (held.lost.aborted) onLost();
  else held.lost.addEventListener("abort", onLost, { once: true });
  const via = plan.upstream.proxy ? ` through proxy ${plan.upstream.proxy.host}` : "";
  report.debug(`fence: helm reaches the API server through 127.0.0.1:${port}${via}`);
  // client-go keys its caches by host and port: in the user's cache each run's port would
  // leave an entry no later run can hit (kube_cache.ts).
  const made = KubeCache.make();
  if ("off" in made) report.debug(`fence: helm keeps the user's client-go cache: ${made.off}`);
  const cache = "off" in made ? undefined : made;
  return {
    env: { ...plan.helmEnv(port), ...(cache ? { KUBECACHEDIR: cache.path } : {}) },
    async [Symbol.asyncDispose]() {
      held.lost.removeEventListener("abort", onLost);
      await passThrough.close();
      const s = passThrough.stats();
      const margin = s.minMarginMs === undefined
        ? ""
        : `, each with at least ${Math.floor(s.minMarginMs)} ms of the lock's validity left`;
      report.debug(
        `fence: forwarded ${s.forwardedBytes} bytes on ${s.connections} connections${margin}; ` +
          `after the cut-off ${s.forwardedAfterCut} bytes forwarded, ${s.refusedBytes} bytes ` +
          `and ${s.refusedConnections} connections refused`,
      );
      await cache?.remove();
    },
  };
}
