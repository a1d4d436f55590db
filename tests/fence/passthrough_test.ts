/**
 * The pass-through against a local echo server, with an injected clock: bytes flow only
 * while the lock is valid, and everything is cut the moment it is not.
 */
import assert from "node:assert/strict";
import { PassThrough } from "../../lib/fence/passthrough.ts";
import { ConnectProxy } from "../support/connect_proxy.ts";

function echoServer(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      conn.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  return { port: listener.addr.port, close: () => listener.close() };
}

async function roundTrip(conn: Deno.Conn, text: string): Promise<string | null> {
  await conn.write(new TextEncoder().encode(text));
  const buf = new Uint8Array(1024);
  const n = await conn.read(buf).catch(() => null);
  return n === null ? null : new TextDecoder().decode(buf.subarray(0, n));
}

function setup(proxy?: URL) {
  const echo = echoServer();
  const time = { now: 0, validUntil: 1_000 };
  const cuts: string[] = [];
  const pass = PassThrough.open({
    upstream: { hostname: "127.0.0.1", port: echo.port, proxy },
    validUntil: () => time.validUntil,
    now: () => time.now,
    onCut: (reason) => cuts.push(reason),
  });
  const connect = () => Deno.connect({ hostname: "127.0.0.1", port: pass.port });
  return { echo, time, cuts, pass, connect };
}

Deno.test("PassThrough forwards both ways while the lock is valid", async () => {
  const { echo, pass, connect } = setup();
  const conn = await connect();
  assert.equal(await roundTrip(conn, "hello"), "hello");
  conn.close();
  await pass.close();
  echo.close();
  assert.equal(
    pass.summary(),
    "forwarded 10 bytes on 1 connections, each with at least 1000 ms of the lock's validity " +
      "left; after the cut-off 0 bytes forwarded, 0 bytes and 0 connections refused",
  );
});

Deno.test("PassThrough forwards nothing once the validity ended, cuts every connection and refuses new ones", async () => {
  const { echo, time, cuts, pass, connect } = setup();
  const conn = await connect();
  assert.equal(await roundTrip(conn, "before"), "before");
  time.now = 1_000; // A process waking from a pause: the validity ended while it slept.
  assert.equal(await roundTrip(conn, "after"), null);
  assert.deepEqual(cuts, ["the lock's validity ended"]);
  const late = await connect();
  assert.equal(await roundTrip(late, "late"), null);
  late.close();
  conn.close();
  await pass.close();
  echo.close();
  assert.match(
    pass.summary(),
    /^forwarded 12 bytes on 1 connections, .*; after the cut-off 0 bytes forwarded, 5 bytes and 1 connections refused$/,
  );
});

Deno.test("PassThrough.cut() closes open connections at once", async () => {
  const { echo, cuts, pass, connect } = setup();
  const conn = await connect();
  assert.equal(await roundTrip(conn, "x"), "x");
  pass.cut("the lock was lost");
  assert.equal(await conn.read(new Uint8Array(8)).catch(() => null), null);
  conn.close();
  await pass.close();
  echo.close();
  assert.deepEqual(cuts, ["the lock was lost"]);
});

Deno.test("PassThrough reaches the server through a CONNECT proxy", async () => {
  const proxy = new ConnectProxy();
  const { echo, pass, connect } = setup(new URL(proxy.url));
  const conn = await connect();
  assert.equal(await roundTrip(conn, "via proxy"), "via proxy");
  conn.close();
  await pass.close();
  await proxy.close();
  echo.close();
  assert.deepEqual(proxy.connects, [`127.0.0.1:${echo.port}`]);
});

/** An upstream that counts the connections it accepted. */
function countingServer(): { port: number; accepted: () => number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  (async () => {
    for await (const conn of listener) {
      accepted++;
      conn.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  return { port: listener.addr.port, accepted: () => accepted, close: () => listener.close() };
}

Deno.test("PassThrough refuses a connection accepted once the validity has ended, dialing nothing", async () => {
  const server = countingServer();
  const pass = PassThrough.open({
    upstream: { hostname: "127.0.0.1", port: server.port },
    validUntil: () => -Infinity, // The lock was lost before helm connected.
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: pass.port });
  await conn.write(new TextEncoder().encode("x"));
  assert.equal(await conn.read(new Uint8Array(8)).catch(() => null), null);
  conn.close();
  await pass.close();
  server.close();
  assert.equal(server.accepted(), 0);
  assert.match(
    pass.summary(),
    /^forwarded 0 bytes on 0 connections; .* and 1 connections refused$/,
  );
});
