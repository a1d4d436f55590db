/**
 * Reaching the API server from the pass-through the way helm (Go's net/http) would reach it
 * directly: through `HTTPS_PROXY`/`HTTP_PROXY` with `CONNECT`, except for hosts `NO_PROXY`
 * names and loopback hosts, which Go never proxies.
 *
 * @module
 */

/** The API server's address and how to get there. */
export interface Upstream {
  hostname: string;
  port: number;
  /** An `http://` or `https://` proxy to `CONNECT` through. */
  proxy?: URL | undefined;
}

/** The port of a URL, with the scheme's default. */
export function portOf(url: URL): number {
  return Number(url.port || (url.protocol === "http:" ? 80 : 443));
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || /^127\./.test(h) || h === "::1";
}

function ipv4(host: string): number | undefined {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) < 256)) {
    return undefined;
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** One `NO_PROXY` entry against a host and port, as golang.org/x/net/http/httpproxy matches. */
function noProxyMatches(entry: string, host: string, port: number): boolean {
  let e = entry.trim().toLowerCase();
  if (e === "") return false;
  if (e === "*") return true;
  const cidr = e.match(/^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/);
  if (cidr) {
    const net = ipv4(cidr[1]!);
    const ip = ipv4(host);
    const bits = Number(cidr[2]);
    if (net === undefined || ip === undefined || bits > 32) return false;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return ((net & mask) >>> 0) === ((ip & mask) >>> 0);
  }
  const withPort = e.match(/^(.*):(\d+)$/);
  if (withPort && !e.includes("]") && withPort[1]!.indexOf(":") < 0) {
    if (Number(withPort[2]) !== port) return false;
    e = withPort[1]!;
  }
  if (e.startsWith("*.")) e = e.slice(1);
  if (e.startsWith(".")) return host.endsWith(e);
  return host === e || host.endsWith(`.${e}`);
}

/**
 * The proxy Go's `http.ProxyFromEnvironment` picks for `target`, or `undefined` for none.
 *
 * @param target The API server URL.
 * @param env The environment.
 * @returns The proxy URL; a value without a scheme counts as `http://`, as in Go.
 */
export function environmentProxy(
  target: URL,
  env: Record<string, string | undefined>,
): URL | undefined {
  const host = target.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (isLoopback(host)) return undefined;
  const pick = (upper: string) => env[upper] || env[upper.toLowerCase()] || "";
  const raw = target.protocol === "https:" ? pick("HTTPS_PROXY") : pick("HTTP_PROXY");
  if (!raw) return undefined;
  const port = portOf(target);
  if (pick("NO_PROXY").split(",").some((e) => noProxyMatches(e, host, port))) return undefined;
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    return undefined;
  }
}

const CRLF2 = new Uint8Array([13, 10, 13, 10]);

function indexOfCrlf2(buf: Uint8Array, length: number): number {
  outer: for (let i = 0; i + 4 <= length; i++) {
    for (let j = 0; j < 4; j++) if (buf[i + j] !== CRLF2[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Opens a TCP connection to the API server, through the proxy with `CONNECT` when there is
 * one (with Basic credentials from the proxy URL, as Go sends them).
 *
 * @returns The connection, and bytes the proxy sent after its answer (for the client).
 * @throws {Error} when the server or proxy cannot be reached or the proxy refuses.
 */
export async function dialUpstream(
  up: Upstream,
): Promise<{ conn: Deno.Conn; early: Uint8Array }> {
  if (!up.proxy) {
    return {
      conn: await Deno.connect({ hostname: up.hostname, port: up.port }),
      early: new Uint8Array(0),
    };
  }
  const proxy = up.proxy;
  const addr = { hostname: proxy.hostname.replace(/^\[|\]$/g, ""), port: portOf(proxy) };
  const conn: Deno.Conn = proxy.protocol === "https:"
    ? await Deno.connectTls(addr)
    : await Deno.connect(addr);
  try {
    const authority = up.hostname.includes(":")
      ? `[${up.hostname}]:${up.port}`
      : `${up.hostname}:${up.port}`;
    let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
    if (proxy.username) {
      const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      head += `Proxy-Authorization: Basic ${btoa(cred)}\r\n`;
    }
    const request = new TextEncoder().encode(`${head}\r\n`);
    for (let off = 0; off < request.length;) off += await conn.write(request.subarray(off));
    const buf = new Uint8Array(16 * 1024);
    let length = 0;
    for (;;) {
      const n = await conn.read(buf.subarray(length));
      if (n === null) throw new Error("the proxy closed the connection");
      length += n;
      const end = indexOfCrlf2(buf, length);
      if (end >= 0) {
        const status = new TextDecoder().decode(buf.subarray(0, end)).split("\r\n")[0] ?? "";
        if (!/^HTTP\/1\.[01] 2\d\d/.test(status)) {
          throw new Error(`the proxy answered CONNECT with "${status}"`);
        }
        return { conn, early: buf.slice(end + 4, length) };
      }
      if (length === buf.length) throw new Error("the proxy's answer is too long");
    }
  } catch (err) {
    conn.close();
    throw err;
  }
}
