/**
 * A small HTTP CONNECT proxy on 127.0.0.1 for tests: it records every CONNECT target and
 * tunnels to it, or to the address `routes` maps it to.
 *
 * @module
 */

/** A running CONNECT proxy. */
export class ConnectProxy {
  /** Every `host:port` a client asked to CONNECT to, in order. */
  readonly connects: string[] = [];
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #serving: Promise<void>;

  /** @param routes `host:port` → `host:port` to dial instead. */
  constructor(readonly routes: Record<string, string> = {}) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#serving = this.#serve();
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.#listener.addr.port}`;
  }

  async #serve(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.#tunnel(conn).catch(() => {}).finally(() => close(conn));
    }
  }

  async #tunnel(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let head = "";
    const buf = new Uint8Array(8192);
    while (!head.includes("\r\n\r\n")) {
      const n = await client.read(buf);
      if (n === null) return;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    const target = head.match(/^CONNECT (\S+) HTTP\/1\.1\r\n/)?.[1];
    if (!target) {
      await client.write(new TextEncoder().encode("HTTP/1.1 405 Method Not Allowed\r\n\r\n"));
      return;
    }
    this.connects.push(target);
    const [hostname, port] = splitHostPort(this.routes[target] ?? target);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname, port });
    } catch {
      await client.write(new TextEncoder().encode("HTTP/1.1 502 Bad Gateway\r\n\r\n"));
      return;
    }
    this.#conns.add(server);
    await client.write(new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n"));
    const pipe = (from: Deno.Conn, to: Deno.Conn) =>
      from.readable.pipeTo(to.writable).catch(() => {}).finally(() => {
        close(from);
        close(to);
      });
    await Promise.all([pipe(client, server), pipe(server, client)]);
  }

  /** Stops listening and closes every tunnel. */
  async close(): Promise<void> {
    close(this.#listener);
    for (const c of this.#conns) close(c);
    await this.#serving;
  }
}

function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(":");
  return [hostPort.slice(0, i).replace(/^\[|\]$/g, ""), Number(hostPort.slice(i + 1))];
}

function close(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}
