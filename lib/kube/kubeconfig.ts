/**
 * Kubeconfig files read as client-go reads them. Not by client-node: its module graph costs a run
 * ~400 ms and it misreads `tokenFile` and `as-groups` (start-up costs: docs/performance.md).
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { load } from "js-yaml";
import { ExitCode, HelmLockError } from "../errors.ts";

/** A kubeconfig `clusters[].cluster` entry; `*Data` fields are base64 PEM as in the file. */
export interface ClusterConfig {
  name: string;
  /** The server URL as written (it may carry `user:password@`: never print it). */
  server: string;
  caFile?: string;
  caData?: string;
  skipTLSVerify: boolean;
  tlsServerName?: string;
  proxyUrl?: string;
}

/** A kubeconfig `users[].user.exec` entry: a client-go credential plugin. */
export interface ExecConfig {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[];
  apiVersion?: string;
  installHint?: string;
  provideClusterInfo?: boolean;
  interactiveMode?: string;
}

/** A kubeconfig `users[].user` entry, `*Data` base64 PEM (secrets: never print them). */
export interface UserConfig {
  name: string;
  token?: string;
  tokenFile?: string;
  certFile?: string;
  certData?: string;
  keyFile?: string;
  keyData?: string;
  username?: string;
  password?: string;
  impersonateUser?: string;
  impersonateGroups?: string[];
  authProvider?: { name: string; config?: Record<string, string> };
  exec?: ExecConfig;
}

/** A kubeconfig `contexts[].context` entry. */
export interface ContextConfig {
  name: string;
  cluster: string;
  user?: string;
  namespace?: string;
}

interface Kubeconfig {
  clusters: ClusterConfig[];
  users: UserConfig[];
  contexts: ContextConfig[];
  currentContext: string | undefined;
}

type Obj = Record<string, unknown>;

function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function obj(value: unknown): Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value as Obj : {};
}

function list(value: unknown): Obj[] {
  return Array.isArray(value) ? value.map(obj) : [];
}

/** Sets `key` only when `value` is defined (the types are exactOptionalPropertyTypes). */
function put<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined) {
  if (value !== undefined) target[key] = value;
}

/** client-go's ResolveLocalPaths: relative file references are relative to the file. */
function resolvePath(dir: string, path: string | undefined): string | undefined {
  return path === undefined || isAbsolute(path) ? path : join(dir, path);
}

function cluster(name: string, c: Obj, dir: string): ClusterConfig {
  const out: ClusterConfig = {
    name,
    server: str(c.server) ?? "",
    skipTLSVerify: c["insecure-skip-tls-verify"] === true,
  };
  put(out, "caFile", resolvePath(dir, str(c["certificate-authority"])));
  put(out, "caData", str(c["certificate-authority-data"]));
  put(out, "tlsServerName", str(c["tls-server-name"]));
  put(out, "proxyUrl", str(c["proxy-url"]));
  return out;
}

function exec(e: Obj, dir: string): ExecConfig {
  const command = str(e.command) ?? "";
  const out: ExecConfig = {
    // client-go: a command with a path separator is relative to the file, a bare one on PATH.
    command: command.includes("/") ? resolvePath(dir, command)! : command,
    provideClusterInfo: e.provideClusterInfo === true,
  };
  if (Array.isArray(e.args)) out.args = e.args.map(String);
  if (Array.isArray(e.env)) {
    out.env = list(e.env).map((v) => ({
      name: String(v.name ?? ""),
      value: String(v.value ?? ""),
    }));
  }
  for (const key of ["apiVersion", "installHint", "interactiveMode"] as const) {
    put(out, key, str(e[key]));
  }
  return out;
}

function user(name: string, u: Obj, dir: string): UserConfig {
  const out: UserConfig = { name };
  put(out, "token", str(u.token));
  put(out, "tokenFile", resolvePath(dir, str(u.tokenFile)));
  put(out, "certFile", resolvePath(dir, str(u["client-certificate"])));
  put(out, "certData", str(u["client-certificate-data"]));
  put(out, "keyFile", resolvePath(dir, str(u["client-key"])));
  put(out, "keyData", str(u["client-key-data"]));
  put(out, "username", str(u.username));
  put(out, "password", str(u.password));
  put(out, "impersonateUser", str(u.as));
  if (Array.isArray(u["as-groups"])) out.impersonateGroups = u["as-groups"].map(String);
  const provider = obj(u["auth-provider"]);
  if (str(provider.name)) {
    out.authProvider = { name: String(provider.name), config: obj(provider.config) as never };
  }
  if (u.exec !== undefined && u.exec !== null) out.exec = exec(obj(u.exec), dir);
  return out;
}

/** Reads one kubeconfig file (YAML or JSON); exit 6 when it cannot be read or parsed. */
function readKubeconfig(path: string): Kubeconfig {
  let doc: Obj;
  try {
    doc = obj(load(Deno.readTextFileSync(path)));
  } catch (err) {
    const reason = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new HelmLockError(
      ExitCode.Unreachable,
      `Cannot load kubeconfig "${path}": ${reason}`,
      { cause: err },
    );
  }
  const dir = dirname(path);
  const named = (key: string, inner: string) =>
    list(doc[key]).filter((e) => str(e.name)).map((e) => [String(e.name), obj(e[inner])] as const);
  return {
    clusters: named("clusters", "cluster").map(([n, c]) => cluster(n, c, dir)),
    users: named("users", "user").map(([n, u]) => user(n, u, dir)),
    contexts: named("contexts", "context").map(([name, c]) => {
      const out: ContextConfig = { name, cluster: str(c.cluster) ?? "" };
      put(out, "user", str(c.user));
      put(out, "namespace", str(c.namespace));
      return out;
    }),
    currentContext: str(doc["current-context"]),
  };
}

/** Merges like client-go: the first file to define a name (or current-context) wins. */
export function mergeKubeconfigs(files: string[]): Kubeconfig {
  const merged: Kubeconfig = { clusters: [], users: [], contexts: [], currentContext: undefined };
  for (const file of files) {
    const kc = readKubeconfig(file);
    merged.currentContext ??= kc.currentContext;
    for (const key of ["clusters", "users", "contexts"] as const) {
      const into = merged[key] as { name: string }[];
      for (const entry of kc[key]) {
        if (!into.some((x) => x.name === entry.name)) into.push(entry);
      }
    }
  }
  return merged;
}
