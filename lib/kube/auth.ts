/**
 * A kubeconfig user's credentials and impersonation as client-go applies them (docs/design.md §1).
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";
import type { KubeConnection } from "./connection.ts";

/** The TLS client identity (PEM). */
interface ClientCert {
  cert: string;
  key: string;
}

/** What an exec plugin returned, and until when it is good. */
interface ExecResult {
  token?: string;
  cert?: ClientCert;
  expiresAt?: number;
}

const reason = (err: unknown) => err instanceof Error ? err.message : String(err);

/** Base64 (kubeconfig `*-data` fields) to text. */
function decodeBase64(base64: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
}

/** A file the kubeconfig names that cannot be read: exit 6, as when no cluster can be reached. */
function unreadable(path: string, what: string, err: unknown): HelmLockError {
  return new HelmLockError(
    ExitCode.Unreachable,
    `Cannot read the ${what} "${path}": ${reason(err)}`,
    { cause: err },
  );
}

function readFile(path: string, what: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    throw unreadable(path, what, err);
  }
}

/** A `tokenFile` read again whenever it changes (client-go re-reads it every minute). */
class TokenFile {
  #mtime: number | undefined;
  #size = -1;
  #token = "";

  constructor(readonly path: string) {}

  get(): string {
    let stat: Deno.FileInfo;
    try {
      stat = Deno.statSync(this.path);
    } catch (err) {
      if (this.#token) return this.#token; // a rotation in progress: keep the last one
      throw unreadable(this.path, "token file", err);
    }
    const mtime = stat.mtime?.getTime();
    if (mtime !== this.#mtime || stat.size !== this.#size || !this.#token) {
      this.#token = readFile(this.path, "token file").trim() || this.#token;
      this.#mtime = mtime;
      this.#size = stat.size;
    }
    return this.#token;
  }
}

/** Credentials of one connection; cheap to ask for on every request. */
export class Authenticator {
  readonly #conn: KubeConnection;
  readonly #tokenFile: TokenFile | undefined;
  #exec: ExecResult | undefined;
  #execRun: Promise<ExecResult> | undefined;
  #provider: Promise<(url: string) => Promise<string | undefined>> | undefined;

  constructor(conn: KubeConnection) {
    this.#conn = conn;
    this.#tokenFile = conn.auth.tokenFile ? new TokenFile(conn.auth.tokenFile) : undefined;
  }

  /** The CA to trust (PEM), unless TLS verification is skipped or the system's CAs are used. */
  caPem(): string | undefined {
    const c = this.#conn.cluster;
    if (c.skipTLSVerify) return undefined;
    return c.caData ? decodeBase64(c.caData) : c.caFile && readFile(c.caFile, "CA file");
  }

  /** The static client certificate, or the exec plugin's. */
  async clientCert(): Promise<ClientCert | undefined> {
    const u = this.#conn.auth;
    if (u.exec) {
      const result = await this.#execCredential();
      if (result.cert) return result.cert;
    }
    const cert = u.certData
      ? decodeBase64(u.certData)
      : u.certFile && readFile(u.certFile, "client certificate");
    const key = u.keyData
      ? decodeBase64(u.keyData)
      : u.keyFile && readFile(u.keyFile, "client key");
    return cert && key ? { cert, key } : undefined;
  }

  /** The request headers for authentication and impersonation, in sending order. */
  async headers(url: string): Promise<[string, string][]> {
    const out: [string, string][] = [];
    const authorization = await this.#authorization(url);
    if (authorization) out.push(["Authorization", authorization]);
    const asUser = this.#conn.auth.impersonateUser;
    if (asUser) out.push(["Impersonate-User", asUser]);
    for (const group of this.#conn.impersonateGroups) out.push(["Impersonate-Group", group]);
    return out;
  }

  async #authorization(url: string): Promise<string | undefined> {
    const u = this.#conn.auth;
    if (u.exec) {
      const { token } = await this.#execCredential();
      if (token) return `Bearer ${token}`;
    }
    // client-go: the token file takes precedence over the token, which stays the fallback.
    const token = this.#tokenFile?.get() || u.token;
    if (token) return `Bearer ${token}`;
    if (u.authProvider) {
      this.#provider ??= providerAuth(this.#conn);
      const header = await (await this.#provider)(url);
      if (header) return header;
    }
    if (u.username !== undefined || u.password !== undefined) {
      return `Basic ${btoa(`${u.username ?? ""}:${u.password ?? ""}`)}`;
    }
    return undefined;
  }

  async #execCredential(): Promise<ExecResult> {
    if (this.#exec && (this.#exec.expiresAt === undefined || this.#exec.expiresAt > Date.now())) {
      return this.#exec;
    }
    this.#execRun ??= runExecPlugin(this.#conn).finally(() => {
      this.#execRun = undefined;
    });
    return this.#exec = await this.#execRun;
  }
}

const EXEC_API_VERSIONS = ["v1", "v1beta1"].map((v) => `client.authentication.k8s.io/${v}`);

/** client-go's exec authenticator, once: runs the plugin and reads its ExecCredential. */
async function runExecPlugin(conn: KubeConnection): Promise<ExecResult> {
  const { auth: user, cluster } = conn;
  const exec = user.exec!;
  const fail = (why: string, cause?: unknown) =>
    new HelmLockError(
      ExitCode.Forbidden,
      `Cannot authenticate as user "${user.name}" as the exec credential plugin "${exec.command}" ${why}`,
      cause === undefined ? undefined : { cause },
    );
  const apiVersion = exec.apiVersion ?? "";
  if (!EXEC_API_VERSIONS.includes(apiVersion)) {
    const expected = EXEC_API_VERSIONS.join(", ");
    throw fail(`has an unsupported apiVersion: expected one of ${expected}, found "${apiVersion}"`);
  }
  const mode = exec.interactiveMode || (apiVersion.endsWith("/v1beta1") ? "IfAvailable" : "");
  if (!["Never", "IfAvailable", "Always"].includes(mode)) {
    throw fail(
      `has no valid interactiveMode: expected Never, IfAvailable or Always, found "${mode}"`,
    );
  }
  const terminal = Deno.stdin.isTerminal();
  if (mode === "Always" && !terminal) {
    throw fail("needs a terminal (interactiveMode Always) and stdin is none");
  }
  const interactive = mode !== "Never" && terminal;
  const spec: Record<string, unknown> = { interactive };
  if (exec.provideClusterInfo) {
    const info: Record<string, unknown> = { server: conn.url.href.replace(/\/$/, "") };
    if (cluster.tlsServerName) info["tls-server-name"] = cluster.tlsServerName;
    if (cluster.skipTLSVerify) info["insecure-skip-tls-verify"] = true;
    const ca = cluster.caData ??
      (cluster.caFile ? btoa(readFile(cluster.caFile, "CA file")) : undefined);
    if (ca) info["certificate-authority-data"] = ca;
    if (cluster.proxyUrl) info["proxy-url"] = cluster.proxyUrl;
    spec.cluster = info;
  }
  // The process environment (client-go: os.Environ()), then the kubeconfig's entries.
  const env: Record<string, string> = {};
  for (const { name, value } of exec.env ?? []) env[name] = value;
  env.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion, kind: "ExecCredential", spec });

  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(exec.command, {
      args: exec.args ?? [],
      env,
      stdin: interactive ? "inherit" : "null",
      stdout: "piped",
      stderr: interactive ? "inherit" : "piped",
    }).output();
  } catch (err) {
    const hint = exec.installHint ? `; ${exec.installHint.trim().split("\n").join(" ")}` : "";
    throw fail(`could not be started: ${reason(err)}${hint}`, err);
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n")
      .filter((l) => l.trim()).slice(-3).join("; ");
    throw fail(`failed with exit code ${output.code}${stderr ? `: ${stderr}` : ""}`);
  }
  let status: Record<string, unknown>;
  try {
    const credential = JSON.parse(new TextDecoder().decode(output.stdout));
    if (credential?.apiVersion !== apiVersion || credential?.kind !== "ExecCredential") {
      throw new Error(
        `expected an ExecCredential of ${apiVersion}, found ${credential?.kind} of ${credential?.apiVersion}`,
      );
    }
    status = credential.status ?? {};
  } catch (err) {
    throw fail(`printed no valid ExecCredential: ${reason(err)}`, err);
  }
  const result: ExecResult = {};
  if (typeof status.token === "string" && status.token) result.token = status.token;
  const { clientCertificateData: cert, clientKeyData: key } = status;
  if (typeof cert === "string" && typeof key === "string") result.cert = { cert, key };
  if (!result.token && !result.cert) {
    throw fail("returned neither a token nor a client certificate and key");
  }
  const at = Date.parse(String(status.expirationTimestamp));
  if (typeof status.expirationTimestamp === "string" && !Number.isNaN(at)) result.expiresAt = at;
  return result;
}

/** The Authorization header of an auth provider (oidc, ...), from client-node loaded only here. */
async function providerAuth(
  { auth: user, cluster }: KubeConnection,
): Promise<(url: string) => Promise<string | undefined>> {
  // By URL: Deno downloads the npm packages of a literal import() before any run from source,
  // and client-node (~84 MB with its dependencies) is needed for auth providers only.
  const k8s: typeof import("./client_node.ts") = await import(
    new URL("./client_node.ts", import.meta.url).href
  );
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{
      name: cluster.name,
      server: cluster.server,
      skipTLSVerify: cluster.skipTLSVerify,
    }],
    users: [{ name: user.name, authProvider: user.authProvider }],
    contexts: [{ name: "helm-lock", cluster: cluster.name, user: user.name }],
    currentContext: "helm-lock",
  });
  return async (url) => {
    const ctx = new k8s.RequestContext(url, k8s.HttpMethod.GET);
    try {
      await kc.applySecurityAuthentication(ctx);
    } catch (err) {
      throw new HelmLockError(
        ExitCode.Forbidden,
        `Cannot authenticate as user "${user.name}" with auth provider "${user.authProvider?.name}": ${
          reason(err)
        }`,
        { cause: err },
      );
    }
    return ctx.getHeaders()["Authorization"];
  };
}
