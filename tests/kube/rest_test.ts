/** The native-fetch HTTP layer against a tiny HTTP/1.1 server on loopback. */
import assert from "node:assert/strict";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { connect } from "../../lib/kube/connection.ts";
import { ApiStatusError, kubeClient } from "../../lib/kube/rest.ts";

type Handler = (path: string, conn: number) => string | undefined;

/** A raw HTTP/1.1 server: `handler` returns a full response, or `undefined` to never answer. */
function server(handler: Handler) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const open = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      const id = ++connections;
      open.add(conn);
      (async () => {
        const buf = new Uint8Array(65536);
        let text = "";
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) return;
          text += new TextDecoder().decode(buf.subarray(0, n));
          let end: number;
          while ((end = text.indexOf("\r\n\r\n")) >= 0) {
            const head = text.slice(0, end);
            const length = Number(head.match(/content-length: (\d+)/i)?.[1] ?? 0);
            if (text.length < end + 4 + length) break;
            text = text.slice(end + 4 + length);
            const path = head.split(" ")[1] ?? "";
            const answer = handler(path, id);
            if (answer !== undefined) await conn.write(new TextEncoder().encode(answer));
          }
        }
      })().catch(() => {});
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close() {
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

function json(status: number, body: unknown, extra = ""): string {
  const text = JSON.stringify(body);
  return `HTTP/1.1 ${status} X\r\ncontent-type: application/json\r\ncontent-length: ${
    new TextEncoder().encode(text).length
  }\r\n${extra}\r\n${text}`;
}

function client(url: string) {
  return kubeClient(connect({ kubeApiserver: url, kubeToken: "t" }, {}, "/nonexistent"));
}

Deno.test("kubeClient() request() decodes JSON and maps other answers to ApiStatusError", async () => {
  const srv = server((path) =>
    path.startsWith("/ok")
      ? json(200, { kind: "Lease", metadata: { name: "x" } })
      : json(403, { kind: "Status", code: 403, message: `User "u" cannot get` })
  );
  const c = client(srv.url);
  try {
    assert.deepEqual(await c.request("GET", "/ok"), { kind: "Lease", metadata: { name: "x" } });
    await assert.rejects(c.request("GET", "/denied"), (err) => {
      assert.ok(err instanceof ApiStatusError);
      assert.equal(err.code, 403);
      assert.equal((err.body as { message: string }).message, `User "u" cannot get`);
      return true;
    });
    assert.equal(srv.connections(), 1, "one connection for every request");
  } finally {
    c.close();
    srv.close();
  }
});

// (Over HTTP/1.1 an abandoned request closes its connection anyway; that kubeClient() also
// drops an HTTP/2 connection, where it would not, needs TLS and is not tested here.)
Deno.test("kubeClient() rejects a request with no answer in time as a TimeoutError, then carries on", async () => {
  const srv = server((path, conn) => conn === 1 && path === "/hang" ? undefined : json(200, {}));
  const c = client(srv.url);
  try {
    await c.request("GET", "/first");
    await assert.rejects(c.request("GET", "/hang", { timeoutMs: 200 }), { name: "TimeoutError" });
    assert.deepEqual(await c.request("GET", "/after"), {});
  } finally {
    c.close();
    srv.close();
  }
});

Deno.test("kubeClient() watch() delivers each JSON line and ends with the stream", async () => {
  const events = [
    { type: "ADDED", object: { metadata: { name: "a", resourceVersion: "1" } } },
    { type: "DELETED", object: { metadata: { name: "a", resourceVersion: "2" } } },
  ];
  const body = events.map((e) => JSON.stringify(e)).join("\n") + "\n";
  const srv = server(() =>
    `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`
  );
  const c = client(srv.url);
  try {
    const seen: unknown[] = [];
    const { ended } = await c.watch(
      "/w",
      { resourceVersion: "0" },
      (e) => seen.push(e),
      new AbortController().signal,
    );
    await ended;
    assert.deepEqual(seen, events);
  } finally {
    c.close();
    srv.close();
  }
});

Deno.test("kubeClient() names a certificate, key or token file the kubeconfig points at that cannot be read, not the network", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/missing`;
    const cert = `${dir}/client.crt`;
    await Deno.writeTextFile(cert, "-----BEGIN CERTIFICATE-----\n");
    const insecure = `{"server":"https://127.0.0.1:9","insecure-skip-tls-verify":true}`;
    const cases: Array<[what: string, cluster: string, user: string]> = [
      ["CA file", `{"server":"https://127.0.0.1:9","certificate-authority":"${missing}"}`, `{}`],
      [
        "client certificate",
        insecure,
        `{"client-certificate":"${missing}","client-key":"${cert}"}`,
      ],
      ["client key", insecure, `{"client-certificate":"${cert}","client-key":"${missing}"}`],
      ["token file", insecure, `{"tokenFile":"${missing}"}`],
    ];
    for (const [what, cluster, user] of cases) {
      const kubeconfig = `${dir}/config`;
      await Deno.writeTextFile(
        kubeconfig,
        `{"apiVersion":"v1","kind":"Config","current-context":"x",` +
          `"clusters":[{"name":"c","cluster":${cluster}}],"users":[{"name":"u","user":${user}}],` +
          `"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}]}`,
      );
      const c = kubeClient(connect({}, { KUBECONFIG: kubeconfig }, "/nonexistent"));
      await assert.rejects(c.request("GET", "/api"), (err: Error) => {
        assert.ok(err instanceof HelmLockError, String(err));
        assert.equal(err.code, ExitCode.Unreachable, what);
        assert.match(err.message, new RegExp(`^Cannot read the ${what} "${missing}": `));
        return true;
      });
      c.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
