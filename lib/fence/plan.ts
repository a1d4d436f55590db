/**
 * Whether helm's traffic can be fenced, and the environment that points helm at the
 * pass-through: `HELM_KUBEAPISERVER` (the API server URL with the host and port replaced by
 * the pass-through's) and `HELM_KUBETLS_SERVER_NAME` (the name helm would have verified the
 * server's certificate against). helm's argv is never touched.
 *
 * @module
 */

import { proxyFromEnvironment } from "../proxy.ts";
import { portOf, type Upstream } from "./proxy.ts";

/** What the plan needs to know of the connection helm will use. */
export interface FenceTarget {
  /** The API server URL helm would use (credentials in it are kept for helm). */
  server: string;
  /** The TLS server name in effect (kubeconfig `tls-server-name` or its override). */
  tlsServerName?: string | undefined;
  /** The kubeconfig cluster's `proxy-url`, if any. */
  proxyUrl?: string | undefined;
  /** The connection is the pod's ServiceAccount (no kubeconfig). */
  inCluster: boolean;
  /** `--kube-apiserver` was given on helm's command line. */
  apiserverOnArgv: boolean;
}

/** A fence that can be set up. */
export interface FencePlan {
  upstream: Upstream;
  /** The environment for helm, given the pass-through's port. */
  helmEnv(port: number): Record<string, string>;
}

/**
 * Plans the fence, or says in one line why helm's traffic cannot be fenced.
 *
 * @param target The connection helm will use.
 * @param env The environment helm inherits (for `HTTPS_PROXY`, `NO_PROXY`).
 * @returns A plan, or `{ off: reason }`.
 * @throws {HelmLockError} where helm's own requests would fail (see `proxyFromEnvironment`).
 */
export function planFence(
  target: FenceTarget,
  env: Record<string, string | undefined>,
): FencePlan | { off: string } {
  if (target.apiserverOnArgv) {
    return { off: "--kube-apiserver on the command line takes precedence over HELM_KUBEAPISERVER" };
  }
  if (target.inCluster) {
    return {
      off: "helm's in-cluster configuration has no TLS server name override for a local address",
    };
  }
  if (target.proxyUrl) {
    // client-go sends every request to a kubeconfig proxy-url, 127.0.0.1 included, and
    // helm has no environment variable to override it.
    return {
      off: "the kubeconfig's proxy-url would send helm's requests for 127.0.0.1 to the proxy",
    };
  }
  let url: URL;
  try {
    url = new URL(target.server);
  } catch {
    return { off: `the API server URL cannot be parsed` };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { off: `the API server URL's scheme ${url.protocol} is neither https nor http` };
  }
  const proxy = proxyFromEnvironment(url, env);
  if (proxy && /^socks5h?:$/.test(proxy.protocol)) {
    return {
      off: `the ${proxy.protocol} proxy helm would use is not supported by the pass-through`,
    };
  }
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const serverName = target.tlsServerName || hostname;
  return {
    upstream: { hostname, port: portOf(url), proxy },
    helmEnv(port) {
      const local = new URL(url.href);
      local.hostname = "127.0.0.1";
      local.port = String(port);
      return {
        // The path (say, Rancher's /k8s/clusters/<id>) and URL credentials stay.
        HELM_KUBEAPISERVER: local.href.replace(/\/$/, url.pathname === "/" ? "" : "/"),
        // Setting the server clears the kubeconfig's tls-server-name in client-go: the
        // certificate is still checked against the real server's name.
        ...(url.protocol === "https:" ? { HELM_KUBETLS_SERVER_NAME: serverName } : {}),
      };
    },
  };
}
