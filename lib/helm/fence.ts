/**
 * The fence around helm's API traffic for a held lock (DESIGN §4, "The fence").
 *
 * @module
 */

import type { ClusterFlags } from "../kube/cluster_flags.ts";
import type { KubeConnection } from "../kube/connection.ts";
import type { HeldLock } from "../lock/hold.ts";
import { KubeCache } from "../fence/kube_cache.ts";
import { PassThrough } from "../fence/passthrough.ts";
import { portOf } from "../fence/proxy.ts";
import type { Reporter } from "../report.ts";

/** A fence around helm's traffic, or none. */
export interface Fenced extends AsyncDisposable {
  /** For every helm started while the lock is held; empty if unfenced. */
  readonly env: Record<string, string>;
}

function unfenceable(flags: ClusterFlags, conn: KubeConnection, server: URL | null) {
  if (flags.kubeApiserver !== undefined) {
    return "--kube-apiserver on the command line takes precedence over HELM_KUBEAPISERVER";
  }
  if (conn.cluster.name === "in-cluster") {
    return "helm's in-cluster configuration has no TLS server name override for a local address";
  }
  if (conn.cluster.proxyUrl) {
    return "the kubeconfig's proxy-url would send helm's requests for 127.0.0.1 to the proxy";
  }
  if (!server) return `the API server URL cannot be parsed`;
  if (server.protocol !== "https:" && server.protocol !== "http:") {
    return `the API server URL's scheme ${server.protocol} is neither https nor http`;
  }
  if (conn.proxy && /^socks5h?:$/.test(conn.proxy.protocol)) {
    return `the ${conn.proxy.protocol} proxy helm would use is not supported by the pass-through`;
  }
  return undefined;
}

/**
 * Fences helm's traffic to the API server behind `held.validUntil()`, unless it cannot be or
 * `flags.fence` is off. Dispose it once every helm started with its `env` has exited.
 */
export function fenceHelm(
  flags: ClusterFlags & { fence: boolean },
  conn: KubeConnection,
  held: Pick<HeldLock, "validUntil" | "lost">,
  report: Pick<Reporter, "info" | "debug">,
): Fenced {
  const server = URL.parse(conn.cluster.server); // credentials and path stay for helm
  const off = flags.fence ? unfenceable(flags, conn, server) : "--lock-no-fence";
  if (off !== undefined || !server) {
    const risk = flags.fence ? " (a paused or lost holder's helm could still write)" : "";
    report.info(`not fencing helm's API traffic${risk}: ${off}`);
    return { env: {}, [Symbol.asyncDispose]: () => Promise.resolve() };
  }
  const hostname = server.hostname.replace(/^\[|\]$/g, "");
  const passThrough = PassThrough.open({
    upstream: { hostname, port: portOf(server), proxy: conn.proxy },
    validUntil: () => held.validUntil(),
    lost: held.lost,
    onCut: (reason: string) => {
      if (reason !== "helm is done") report.info(`cut helm off the API server: ${reason}`);
    },
  });
  const via = conn.proxy ? ` through proxy ${conn.proxy.host}` : "";
  report.debug(`fence: helm reaches the API server through 127.0.0.1:${passThrough.port}${via}`);
  // client-go keys its caches by host and port: each run's port would leave an entry in the
  // user's cache that no later run can hit.
  const cache = KubeCache.make();
  if ("off" in cache) report.debug(`fence: helm keeps the user's client-go cache: ${cache.off}`);
  const local = new URL(server.href);
  local.hostname = "127.0.0.1";
  local.port = String(passThrough.port);
  const env: Record<string, string> = {
    HELM_KUBEAPISERVER: local.href.replace(/\/$/, server.pathname === "/" ? "" : "/"),
  };
  // Setting the server clears the kubeconfig's tls-server-name in client-go: the certificate
  // is still checked against the real server's name.
  if (server.protocol === "https:") {
    env.HELM_KUBETLS_SERVER_NAME = conn.cluster.tlsServerName || hostname;
  }
  if (!("off" in cache)) env.KUBECACHEDIR = cache.path;
  return {
    env,
    async [Symbol.asyncDispose]() {
      await passThrough.close();
      report.debug(`fence: ${passThrough.summary()}`);
      if (!("off" in cache)) await cache.remove();
    },
  };
}
