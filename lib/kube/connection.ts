/**
 * The cluster, namespace and identity helm itself would use, resolved as docs/design.md §1 says.
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import type { ClusterFlags } from "./cluster_flags.ts";
import { type ClusterConfig, mergeKubeconfigs, type UserConfig } from "./kubeconfig.ts";
import { proxyFromEnvironment } from "./proxy.ts";
import { redactUrls } from "../redact.ts";

type Env = Record<string, string | undefined>;

// A DNS-1123 label: no Lease can live in a namespace of another name, so it is refused before
// any request (helm leaves it to the API server to refuse).
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A resolved connection to the cluster helm would talk to (`rest.ts` opens it). */
export interface KubeConnection {
  /** The cluster, with every override applied; `server` as written (it may hold credentials). */
  cluster: ClusterConfig;
  /** The credentials, with every override applied (secrets: never print them). */
  auth: UserConfig;
  impersonateGroups: string[];
  /** The release's namespace, and the Lease's. */
  namespace: string;
  /** The API server URL, for messages (credentials in it hidden). */
  server: string;
  /** The API server URL to send requests to, without `user:password@`. */
  url: URL;
  /** The proxy to the API server, if any, for the lock's client and the fence alike. */
  proxy: URL | undefined;
  /** Who we act as, for messages: the impersonated user, else the kubeconfig user entry. */
  user: string;
  env: Env;
}

/** A boolean variable as helm reads it (Go's ParseBool): a value it cannot parse is unset. */
function parseBool(value = ""): boolean | undefined {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(value)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(value)) return false;
  return undefined;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A setting as helm reads it: its `HELM_*` variable is the flag's default, so a flag given,
 * even empty (`--kube-context=`), replaces the variable; an empty result means unset.
 */
function setting(flag: string | undefined, env: string | undefined): string | undefined {
  return (flag !== undefined ? flag : env) || undefined;
}

/** The kubeconfig files helm reads, in priority order (client-go's loading rules). */
function kubeconfigFiles(flags: ClusterFlags, env: Env): string[] {
  if (flags.kubeconfig) {
    if (!exists(flags.kubeconfig)) {
      throw new HelmLockError(
        ExitCode.Unreachable,
        `Cannot read kubeconfig "${flags.kubeconfig}" given by --kubeconfig: no such file`,
      );
    }
    return [flags.kubeconfig];
  }
  if (env.KUBECONFIG) {
    // client-go skips list entries that do not exist.
    const sep = Deno.build.os === "windows" ? ";" : ":";
    return env.KUBECONFIG.split(sep).filter((f) => f !== "" && exists(f));
  }
  const home = env.HOME ?? env.USERPROFILE;
  return home && exists(`${home}/.kube/config`) ? [`${home}/.kube/config`] : [];
}

/** The cluster, user (and its name for messages) a context or the pod selects. */
interface Selected {
  cluster: ClusterConfig;
  user: UserConfig;
  namespace: string | undefined;
  userName: string;
}

/** client-go's in-cluster config: the pod's ServiceAccount token (re-read), CA and namespace. */
function inCluster(env: Env, saDir: string): Selected | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const tokenFile = `${saDir}/token`;
  if (!host || !port || !exists(tokenFile)) return undefined;
  let namespace = env.POD_NAMESPACE;
  try {
    namespace ||= Deno.readTextFileSync(`${saDir}/namespace`).trim();
  } catch { /* none */ }
  // The ServiceAccount's username from its token, for messages; the token is not kept.
  let userName = "in-cluster service account";
  try {
    const payload = Deno.readTextFileSync(tokenFile).trim().split(".")[1] ?? "";
    const sub = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))).sub;
    if (typeof sub === "string") userName = sub;
  } catch { /* an opaque token */ }
  return {
    cluster: {
      name: "in-cluster",
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      caFile: `${saDir}/ca.crt`,
      skipTLSVerify: false,
    },
    user: { name: "in-cluster", tokenFile },
    namespace: namespace || undefined,
    userName,
  };
}

/**
 * Resolves the connection exactly as helm does (docs/design.md §1), deciding the proxy once.
 *
 * @param saDir Where to look for ServiceAccount credentials (tests point it elsewhere).
 * @throws {HelmLockError} `Unreachable` when no cluster is configured or the kubeconfig cannot be
 * used; `Usage` for a bad server URL or namespace name.
 */
export function connect(
  flags: ClusterFlags,
  env: Env = Deno.env.toObject(),
  saDir = "/var/run/secrets/kubernetes.io/serviceaccount",
): KubeConnection {
  const files = kubeconfigFiles(flags, env);
  const merged = mergeKubeconfigs(files);
  const contextName = setting(flags.kubeContext, env.HELM_KUBECONTEXT) ?? merged.currentContext;
  const where = files.length > 0 ? `kubeconfig ${files.map((f) => `"${f}"`).join(", ")}` : "";
  const server = setting(flags.kubeApiserver, env.HELM_KUBEAPISERVER);

  let selected: Selected | undefined;
  if (contextName) {
    const context = merged.contexts.find((c) => c.name === contextName);
    if (!context) {
      const known = merged.contexts.map((c) => c.name).join(", ") || "none";
      throw new HelmLockError(
        ExitCode.Unreachable,
        `Cannot find kube context "${contextName}" in ${
          where || "any kubeconfig"
        } (contexts: ${known}); check --kube-context, HELM_KUBECONTEXT or KUBECONFIG`,
      );
    }
    const cluster = merged.clusters.find((c) => c.name === context.cluster);
    if (!cluster && !server) {
      throw new HelmLockError(
        ExitCode.Unreachable,
        `Cannot use kube context "${contextName}": its cluster "${context.cluster}" is not in ${where}`,
      );
    }
    const user = merged.users.find((u) => u.name === context.user) ??
      { name: context.user || "anonymous" };
    selected = {
      cluster: cluster ?? { name: context.cluster, server: "", skipTLSVerify: false },
      user,
      namespace: context.namespace || undefined,
      userName: user.name,
    };
  } else {
    // client-go uses the in-cluster config only when the kubeconfig gave nothing usable.
    selected = inCluster(env, saDir) ?? (server
      ? {
        cluster: { name: "flags", server, skipTLSVerify: false },
        user: { name: "flags" },
        namespace: undefined,
        userName: "flags",
      }
      : undefined);
  }
  if (!selected) {
    throw new HelmLockError(
      ExitCode.Unreachable,
      `Cannot find a Kubernetes cluster: no kubeconfig context (${
        where || "no kubeconfig file found"
      }) and not running in a pod; set --kubeconfig, KUBECONFIG or --kube-context`,
    );
  }
  return applyOverrides(selected, flags, env, server);
}

function applyOverrides(
  selected: Selected,
  flags: ClusterFlags,
  env: Env,
  server: string | undefined,
): KubeConnection {
  const token = setting(flags.kubeToken, env.HELM_KUBETOKEN);
  const caFile = setting(flags.kubeCaFile, env.HELM_KUBECAFILE);
  const tlsServerName = setting(flags.kubeTlsServerName, env.HELM_KUBETLS_SERVER_NAME);
  const asUser = setting(flags.kubeAsUser, env.HELM_KUBEASUSER);
  // Either replaces the kubeconfig's as-groups: a repeated --kube-as-group (a comma is part of
  // a name), or the variable split on commas after trimming commas and spaces (helm's envCSV).
  const envGroups = (env.HELM_KUBEASGROUPS ?? "").replace(/^[, ]+|[, ]+$/g, "");
  const flagGroups = flags.kubeAsGroups ?? (envGroups === "" ? [] : envGroups.split(","));
  const groups = flagGroups.length > 0 ? flagGroups : selected.user.impersonateGroups ?? [];

  let cluster: ClusterConfig = { ...selected.cluster, ...(server ? { server } : {}) };
  if (caFile && !exists(caFile)) {
    throw new HelmLockError(
      ExitCode.Unreachable,
      `Cannot read the CA file "${caFile}" given by --kube-ca-file or HELM_KUBECAFILE: no such file`,
    );
  }
  if (caFile) {
    // A CA override replaces embedded CA data and turns verification back on, as in client-go.
    const { caData: _data, ...rest } = cluster;
    cluster = { ...rest, caFile, skipTLSVerify: false };
  }
  // Only true overrides: helm always passes the setting (as a plugin, the variable is
  // "false" by default), and client-go never lets a false replace the kubeconfig's true.
  if ((flags.kubeInsecureSkipTlsVerify ?? parseBool(env.HELM_KUBEINSECURE_SKIP_TLS_VERIFY))) {
    // client-go drops the CA when verification is skipped: the two may not be combined.
    const { caData: _data, caFile: _file, ...rest } = cluster;
    cluster = { ...rest, skipTLSVerify: true };
  }
  if (tlsServerName) cluster = { ...cluster, tlsServerName };
  if (!cluster.server) {
    throw new HelmLockError(
      ExitCode.Unreachable,
      `Cannot connect to cluster "${cluster.name}": it has no server URL; set --kube-apiserver`,
    );
  }

  let user: UserConfig = { ...selected.user };
  if (token) {
    // A bearer token replaces the user's other credentials that would send a header.
    const { authProvider: _provider, exec: _exec, tokenFile: _file, ...rest } = user;
    user = { ...rest, token };
  }
  if (asUser) user = { ...user, impersonateUser: asUser };

  const namespace = setting(flags.namespace, env.HELM_NAMESPACE) ?? selected.namespace ??
    "default";
  if (namespace.length > 63 || !NAMESPACE_NAME.test(namespace)) {
    const from = flags.namespace
      ? "--namespace"
      : env.HELM_NAMESPACE
      ? "HELM_NAMESPACE"
      : "the context";
    throw new HelmLockError(
      ExitCode.Usage,
      `Cannot use namespace ${JSON.stringify(namespace)} (from ${from}) as it is not a valid ` +
        `namespace name: expected at most 63 lowercase letters, digits and "-", starting and ` +
        `ending with a letter or digit`,
    );
  }
  let url: URL;
  try {
    url = new URL(cluster.server.includes("://") ? cluster.server : `https://${cluster.server}`);
  } catch (err) {
    throw new HelmLockError(
      ExitCode.Usage,
      `Cannot use the API server URL as it is not a URL: expected https://host[:port]`,
      { cause: err },
    );
  }
  // Go's http client sends the URL's user:password@ only when nothing else authenticates: last,
  // where the kubeconfig's own username and password stand.
  if (
    (url.username || url.password) && user.username === undefined && user.password === undefined
  ) {
    user = {
      ...user,
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    };
  }
  url.username = url.password = "";
  return {
    cluster,
    auth: user,
    impersonateGroups: groups,
    namespace,
    server: redactUrls(cluster.server),
    url,
    // client-go: the kubeconfig's proxy-url for every request, else the environment's (Go's).
    proxy: cluster.proxyUrl ? new URL(cluster.proxyUrl) : proxyFromEnvironment(url, env),
    user: user.impersonateUser ??
      (token && selected.userName === "flags" ? "token" : selected.userName),
    env,
  };
}
