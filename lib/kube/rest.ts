/**
 * JSON requests and watches to the API server over Deno's `fetch`, one HTTP client per run. Not
 * client-node's: under Deno its `node:http2` crashed the process when the API server restarted,
 * and it costs a run ~400 ms. What `fetch` cannot do goes through `node:https` (`nodeFetch`).
 * @module
 */

import { HelmLockError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { Authenticator } from "./auth.ts";
import type { KubeConnection } from "./connection.ts";

/** An answer of the API server other than 2xx (the shape of client-node's ApiException). */
export class ApiStatusError extends Error {
  constructor(
    readonly code: number,
    /** A `Status` object when the server sent one, else the text. */
    readonly body: unknown,
  ) {
    const message = (body as { message?: unknown } | undefined)?.message;
    super(`HTTP ${code}${typeof message === "string" ? `: ${message}` : ""}`);
    this.name = "ApiStatusError";
  }
}

/** A request that got no HTTP answer: refused, unresolvable, TLS failure, reset. */
export class KubeNetworkError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KubeNetworkError";
  }
}

type Query = Record<string, string | number | boolean | undefined>;

/** Per-request options. */
export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Give up after this long (a `TimeoutError`). @default {30000} */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** The `Accept` header, e.g. a `PartialObjectMetadataList`. @default {"application/json"} */
  accept?: string;
  /** Called with the answer's headers (the queue reads the server's `Date`). */
  onHeaders?: (headers: Headers) => void;
}

/** A watch event: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR` (a `Status`). */
export interface WatchEvent<T> {
  type: string;
  object: T;
}

/** The API server of one connection. */
export interface KubeClient {
  /** For messages: {@linkcode KubeConnection}'s. */
  readonly server: string;
  readonly user: string;
  /** Sends a JSON request: the decoded answer, or a rejection ({@linkcode ApiStatusError}). */
  request<T>(method: string, path: string, options?: RequestOptions): Promise<T>;
  /** Opens a watch, once accepted; its `ended` resolves at the stream's end, rejects on a break. */
  watch<T>(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<{ ended: Promise<void> }>;
  close(): void;
}

/** How requests reach the server: a connection opened at the first request and after `reset()`. */
interface Transport {
  fetch(url: string, init: Init, auth: Authenticator): Promise<Response>;
  reset(): void;
  close(): void;
}

type Init = RequestInit & { headerList: [string, string][] };

/** A {@linkcode Transport} that sends on the connection `open` makes (with `auth`'s certificate). */
function lazily<T>(
  open: (auth: Authenticator) => Promise<T>,
  dispose: (t: T) => void,
  send: (t: T, url: string, init: Init) => Promise<Response>,
): Transport {
  let value: Promise<T> | undefined;
  let closed = false;
  return {
    fetch: async (url, init, auth) => send(await (value ??= open(auth)), url, init),
    reset() {
      value?.then(dispose, () => {});
      value = undefined;
    },
    // Requests after it fail on the closed connection.
    close() {
      if (!closed) value?.then(dispose, () => {});
      closed = true;
    },
  };
}

/** A node-like reason from Deno's fetch error ("connect ECONNREFUSED 127.0.0.1:6443"). */
function networkMessage(err: unknown, url: URL): string {
  const text = err instanceof Error
    ? [err.message, (err.cause as Error | undefined)?.message ?? ""].join(" ")
    : String(err);
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (/Connection refused/i.test(text)) return `connect ECONNREFUSED ${host}:${port}`;
  if (/dns error|failed to lookup address|Name or service not known/i.test(text)) {
    return `getaddrinfo ENOTFOUND ${host}`;
  }
  const inner = (err instanceof Error && err.cause instanceof Error ? err.cause.message : text)
    .split("\n")[0]!;
  // "error sending request for url (...): client error (Connect): <why>": keep <why>.
  return inner.replace(/^error sending request for url \([^)]*\): /, "") || "unknown error";
}

const proxyCredentials = (proxy: URL) => ({
  username: decodeURIComponent(proxy.username),
  password: decodeURIComponent(proxy.password),
});

/** Deno's native fetch with one HTTP client for the connection. */
function nativeFetch(proxy?: URL): Transport {
  return lazily(
    async (auth) => {
      const options: Deno.CreateHttpClientOptions = {};
      const ca = auth.caPem();
      if (ca) options.caCerts = [ca];
      const cert = await auth.clientCert();
      if (cert) Object.assign(options, { cert: cert.cert, key: cert.key });
      if (proxy) {
        // Go speaks plain HTTP to a proxy of any scheme but https, socks5 and socks5h.
        const socks = /^socks5h?:$/.test(proxy.protocol);
        const transport = socks ? "socks5" : proxy.protocol === "https:" ? "https" : "http";
        const url = `${socks ? proxy.protocol : `${transport}:`}//${proxy.host}`;
        options.proxy = { transport, url };
        if (proxy.username || proxy.password) options.proxy.basicAuth = proxyCredentials(proxy);
      }
      return Deno.createHttpClient(options);
    },
    (client) => client.close(),
    (client, url, { headerList, ...init }) => fetch(url, { ...init, headers: headerList, client }),
  );
}

/** An https.Agent through an HTTP CONNECT proxy, TLS inside the tunnel as Go's transport does. */
async function tunnelAgent(
  https: typeof import("node:https"),
  proxy: URL,
  options: import("node:https").AgentOptions,
): Promise<import("node:https").Agent> {
  const http = await import("node:http");
  const tls = await import("node:tls");
  const { username, password } = proxyCredentials(proxy);
  const auth = proxy.username || proxy.password
    ? { "Proxy-Authorization": `Basic ${btoa(`${username}:${password}`)}` }
    : {};
  class TunnelAgent extends https.Agent {
    // deno-lint-ignore no-explicit-any
    override createConnection(opts: any, done: (err: Error | null, socket?: any) => void): any {
      const target = `${opts.host}:${opts.port}`;
      const req = http.request({
        host: proxy.hostname.replace(/^\[|\]$/g, ""),
        port: Number(proxy.port || 80),
        method: "CONNECT",
        path: target,
        headers: { Host: target, ...auth },
      });
      req.once("connect", (res, socket) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          done(
            new Error(`the proxy ${proxy.host} answered CONNECT ${target} with ${res.statusCode}`),
          );
          return;
        }
        done(null, tls.connect({ ...opts, socket, servername: opts.servername ?? opts.host }));
      });
      req.once("error", (err) => done(err));
      req.end();
      return undefined;
    }
  }
  return new TunnelAgent(options);
}

/** HTTP/1.1 through node:https, tunnelling through an http:// proxy itself. */
function nodeFetch(conn: KubeConnection, proxy?: URL): Transport {
  const servername = conn.cluster.tlsServerName;
  return lazily(
    async (auth) => {
      const https = await import("node:https");
      const ca = auth.caPem();
      const cert = await auth.clientCert();
      if (proxy && /^(https|socks5h?):$/.test(proxy.protocol)) {
        throw new KubeNetworkError(
          `a ${proxy.protocol.slice(0, -1)} proxy cannot be combined with ` +
            `insecure-skip-tls-verify, tls-server-name or several impersonated groups (an http:// one can)`,
        );
      }
      const options: import("node:https").AgentOptions = {
        keepAlive: true,
        rejectUnauthorized: !conn.cluster.skipTLSVerify,
        ...(ca ? { ca } : {}),
        ...(cert ? { cert: cert.cert, key: cert.key } : {}),
        ...(servername ? { servername } : {}),
      };
      const agent = proxy ? await tunnelAgent(https, proxy, options) : new https.Agent(options);
      return { https, agent };
    },
    ({ agent }) => agent.destroy(),
    async ({ https, agent }, url, init) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of init.headerList) {
        const prev = headers[k];
        headers[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
      }
      const { Readable } = await import("node:stream");
      return await new Promise<Response>((resolve, reject) => {
        const req = https.request(url, {
          method: init.method ?? "GET",
          headers,
          agent,
          ...(servername ? { servername } : {}),
        }, (res) => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === "string") h.set(k, v);
          }
          const body = Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
          resolve(new Response(body, { status: res.statusCode ?? 0, headers: h }));
        });
        // First: a request destroyed below (an abort) still emits its "socket hang up".
        req.on("error", (err) => reject(new TypeError("fetch failed", { cause: err })));
        const signal = init.signal;
        const abort = () => {
          req.destroy();
          reject(signal?.reason);
        };
        if (signal?.aborted) return abort();
        signal?.addEventListener("abort", abort, { once: true });
        req.end(typeof init.body === "string" ? init.body : undefined);
      });
    },
  );
}

function queryString(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : "";
}

async function readBody(resp: Response): Promise<unknown> {
  const text = await resp.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Opens (lazily, at the first request) the API server of `conn`. */
export function kubeClient(conn: KubeConnection): KubeClient {
  const { url: base, proxy } = conn;
  const prefix = base.href.replace(/\/$/, "");
  // What `fetch` cannot do: skip TLS verification, check another TLS server name, send several
  // `Impersonate-Group` headers (it joins them), connect directly despite proxy variables.
  const proxyVars = Object.entries(conn.env)
    .some(([name, value]) => value && /^(HTTPS?|ALL)_PROXY$|^(https?|all)_proxy$/.test(name));
  const needsNode = conn.cluster.skipTLSVerify || conn.cluster.tlsServerName !== undefined ||
    conn.impersonateGroups.length > 1 || (!proxy && proxyVars);
  const transport = needsNode ? nodeFetch(conn, proxy) : nativeFetch(proxy);
  const auth = new Authenticator(conn);
  const userAgent = `helm-lock/${VERSION} (${Deno.build.os}/${Deno.build.arch})`;

  async function send(method: string, url: string, signal: AbortSignal, options: RequestOptions) {
    const headerList: [string, string][] = [
      ["Accept", options.accept ?? "application/json"],
      ["User-Agent", userAgent],
      ...await auth.headers(url),
    ];
    const init: Init = { method, headerList, signal };
    if (options.body !== undefined) {
      headerList.push(["Content-Type", "application/json"]);
      init.body = JSON.stringify(options.body);
    }
    try {
      return await transport.fetch(url, init, auth);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // helm-lock's own errors (an unreadable file the kubeconfig names, a failed exec plugin)
      // pass as they are: they are not the network's.
      if (err instanceof HelmLockError) throw err;
      throw new KubeNetworkError(networkMessage(err, base), { cause: err });
    }
  }

  const statusError = (resp: Response, body: unknown) => new ApiStatusError(resp.status, body);

  return {
    server: conn.server,
    user: conn.user,
    async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
      const timeout = AbortSignal.timeout(options.timeoutMs ?? 30_000);
      const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
      const url = `${prefix}${path}${queryString(options.query)}`;
      let resp: Response;
      let body: unknown;
      try {
        resp = await send(method, url, signal, options);
        body = await readBody(resp);
      } catch (err) {
        // No answer in time: the connection may be dead without the kernel knowing (client-go
        // pings HTTP/2 connections for that). Drop it; the next request opens a fresh one.
        if (timeout.aborted) transport.reset();
        if (signal.aborted) throw signal.reason;
        // Ours (a failed exec plugin, an unreadable file) and network errors pass as they are.
        if (err instanceof KubeNetworkError || err instanceof HelmLockError) throw err;
        throw new KubeNetworkError(networkMessage(err, base), { cause: err });
      }
      if (!resp.ok) throw statusError(resp, body);
      options.onHeaders?.(resp.headers);
      return body as T;
    },
    async watch(path, query, onEvent, signal) {
      const url = `${prefix}${path}${queryString({ ...query, watch: true })}`;
      const resp = await send("GET", url, signal, {});
      if (!resp.ok) throw statusError(resp, await readBody(resp));
      const ended = (async () => {
        const reader = resp.body!.pipeThrough(new TextDecoderStream()).getReader();
        let idle = false;
        const stop = () => reader.cancel().catch(() => {});
        signal.addEventListener("abort", stop, { once: true });
        // A watch silent for 90 s may sit on a dead connection: end it, the caller opens a new
        // one (client-node ended watches after 30 s without data).
        let timer: ReturnType<typeof setTimeout> | undefined;
        const arm = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            idle = true;
            stop();
          }, 90_000);
        };
        arm();
        let buffered = "";
        try {
          while (true) {
            const { value, done } = await reader.read();
            if (done || signal.aborted || idle) return;
            arm();
            const lines = (buffered + value).split("\n");
            buffered = lines.pop()!;
            for (const line of lines) if (line.trim()) onEvent(JSON.parse(line));
          }
        } catch (err) {
          if (signal.aborted || idle) return;
          throw new KubeNetworkError(networkMessage(err, base), { cause: err });
        } finally {
          clearTimeout(timer);
          signal.removeEventListener("abort", stop);
        }
      })();
      return { ended };
    },
    close: () => transport.close(),
  };
}
