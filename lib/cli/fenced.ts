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
   * removing helm's cache directory (or keeping it, after {@linkcode Fenced.helmDone}): call it
   * once every helm started with `env` has exited.
   */
  close(): Promise<void>;
  /** Settles once `close()` has removed helm's cache directory (off the release's path). */
  removed(): Promise<void>;
  /**
   * Every helm started with `env` has exited: `close()` keeps the cache directory and the port
   * for the next run against this server (kube_cache.ts) instead of removing them.
   */
  helmDone(): void;
}

/** No fence: helm reaches the API server directly. */
const unfenced: Fenced = {
  env: {},
  close: () => Promise.resolve(),
  removed: () => Promise.resolve(),
  helmDone: () => {},
};

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
    return unfenced;
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
    return unfenced;
  }
  const options = {
    upstream: plan.upstream,
    ...(gate ? { gate } : {}),
    ...(onHeld ? { onHeld } : {}),
    validUntil: () => held.validUntil(),
    onCut: (reason: string) => {
      if (reason !== "helm is done") report.info(`cut helm off the API server: ${reason}`);
    },
  };
  // A clean earlier run's cache, on its port (kube_cache.ts); else a new port and directory.
  const claimed = reuse(KubeCache.claim(cluster.server), options, report);
  const passThrough = claimed?.passThrough ?? PassThrough.open(options);
  const port = passThrough.port;
  const onLost = () => passThrough.cut("the lock was lost");
  // Opened after the loss (a fence opened when first needed): nothing may pass at all.
  if (held.lost.aborted) onLost();
  else held.lost.addEventListener("abort", onLost, { once: true });
  const via = plan.upstream.proxy ? ` through proxy ${plan.upstream.proxy.host}` : "";
  report.debug(`fence: helm reaches the API server through 127.0.0.1:${port}${via}`);
  // client-go's caches are keyed by host and port: in the user's cache this run's port would
  // leave an entry no later run can hit (kube_cache.ts).
  const made = claimed?.cache ?? KubeCache.make();
  report.debug(
    "off" in made
      ? `fence: helm keeps the user's client-go cache: ${made.off}`
      : `fence: helm's client-go cache is ${made.path}, removed or kept for the next run when ` +
        `helm is done`,
  );
  const cache = "off" in made ? undefined : made;
  let closed: Promise<void> | undefined;
  let done = false;
  return {
    env: { ...plan.helmEnv(port), ...(cache ? { KUBECACHEDIR: cache.path } : {}) },
    close() {
      return closed ??= (async () => {
        held.lost.removeEventListener("abort", onLost);
        await passThrough.close();
        // Called once helm has exited: its cache goes (or is kept, renamed) while the lock is
        // released. Kept only now that the port is closed.
        if (done) cache?.keep(cluster.server, port);
        else cache?.remove();
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
    // KubeCache.remove() is once-only (and keep() too): this is what close() started.
    removed: () => closed && cache ? cache.remove() : Promise.resolve(),
    helmDone: () => {
      done = true;
    },
  };
}

/** Listens on the port of a claimed cache; removes the cache when the port is taken. */
function reuse(
  claimed: { cache: KubeCache; port: number } | undefined,
  options: Parameters<typeof PassThrough.open>[0],
  report: Reporter,
): { cache: KubeCache; passThrough: PassThrough } | undefined {
  if (!claimed) return undefined;
  try {
    const passThrough = PassThrough.open(options, claimed.port);
    report.debug(
      `fence: helm reuses the client-go cache of an earlier run, on port ${claimed.port}`,
    );
    return { cache: claimed.cache, passThrough };
  } catch (error) {
    report.debug(`fence: port ${claimed.port} of an earlier run's cache is taken: ${error}`);
    claimed.cache.remove();
    return undefined;
  }
}
