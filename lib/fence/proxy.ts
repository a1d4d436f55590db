/**
 * The pass-through's way to the API server: as helm's own, through `kube/proxy.ts`'s proxy.
 * @module
 */

/** The API server's address and how to get there. */
export interface Upstream {
  hostname: string;
  port: number;
  /** A proxy to `CONNECT` through: TLS to an `https://` one, plain TCP to any other (as Go). */
  proxy?: URL | undefined;
}

/** The port of a URL, with the scheme's default. */
export function portOf(url: URL): number {
  return Number(url.port || (url.protocol === "http:" ? 80 : 443));
}

/**
 * Opens a TCP connection to the API server, through the proxy with `CONNECT` when there is
 * one (with Basic credentials from the proxy URL, as Go sends them).
 * @returns The connection, and bytes the proxy sent after its answer (for the client).
 * @throws {Error} when the server or proxy cannot be reached or the proxy refuses.
 */
export async function dialUpstream(
  up: Upstream,
): Promise<{ conn: Deno.Conn; early: Uint8Array }> {
  const proxy = up.proxy;
  if (!proxy) {
    const conn = await Deno.connect({ hostname: up.hostname, port: up.port });
    return { conn, early: new Uint8Array(0) };
  }
  const addr = { hostname: proxy.hostname.replace(/^\[|\]$/g, ""), port: portOf(proxy) };
  const conn = proxy.protocol === "https:" ? await Deno.connectTls(addr) : await Deno.connect(addr);
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
      // One character a byte, so that the text's indexes are the buffer's.
      const end = new TextDecoder("latin1").decode(buf.subarray(0, length)).indexOf("\r\n\r\n");
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
