/**
 * The fence's pass-through on 127.0.0.1 (docs/design.md "The fence"): bytes between helm and the
 * API server, each chunk only while the lock is valid by the monotonic clock.
 * @module
 */

import { dialUpstream, type Upstream } from "./proxy.ts";

/** Options for {@linkcode PassThrough.open}. */
export interface PassThroughOptions {
  /** Where the API server is, and the proxy to reach it through, if any. */
  upstream: Upstream;
  /** Until when traffic may flow, on the clock of `now`: checked before every chunk. */
  validUntil: () => number;
  /** Monotonic milliseconds. @default {performance.now} */
  now?: () => number;
  /** Called once, when the pass-through cuts every connection. */
  onCut?: (reason: string) => void;
  /** Aborts when the lock is lost: every connection is cut then (at once if already). */
  lost?: AbortSignal;
}

const CHUNK = 64 * 1024;

/** A running pass-through. */
export class PassThrough {
  readonly #listener: Deno.TcpListener;
  readonly #opts: PassThroughOptions;
  readonly #now: () => number;
  readonly #conns = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;
  readonly #pumps = new Set<Promise<void>>();
  readonly #onLost = () => this.cut("the lock was lost");
  #cut: string | undefined;
  // Counted to prove that nothing passes after the cut-off, and each chunk with validity left.
  #connections = 0;
  #forwarded = 0;
  #forwardedAfterCut = 0;
  #refusedBytes = 0;
  #refusedConnections = 0;
  #minMarginMs: number | undefined;

  private constructor(listener: Deno.TcpListener, opts: PassThroughOptions) {
    this.#listener = listener;
    this.#opts = opts;
    this.#now = opts.now ?? (() => performance.now());
    this.#accepting = this.#accept();
    if (opts.lost?.aborted) this.#onLost();
    else opts.lost?.addEventListener("abort", this.#onLost, { once: true });
  }

  /** Listens on a free port of `127.0.0.1`. */
  static open(opts: PassThroughOptions): PassThrough {
    return new PassThrough(Deno.listen({ hostname: "127.0.0.1", port: 0 }), opts);
  }

  /** The local port helm connects to. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** What went through, and what did not after the cut-off, in one line. */
  summary(): string {
    const margin = this.#minMarginMs === undefined
      ? ""
      : `, each with at least ${Math.floor(this.#minMarginMs)} ms of the lock's validity left`;
    return `forwarded ${this.#forwarded} bytes on ${this.#connections} connections${margin}; ` +
      `after the cut-off ${this.#forwardedAfterCut} bytes forwarded, ${this.#refusedBytes} ` +
      `bytes and ${this.#refusedConnections} connections refused`;
  }

  /** Closes every connection at once; new ones are closed as soon as they are accepted. */
  cut(reason: string): void {
    if (this.#cut !== undefined) return;
    this.#cut = reason;
    for (const conn of this.#conns) closeQuietly(conn);
    this.#conns.clear();
    this.#opts.onCut?.(reason);
  }

  /** Cuts (if not yet), stops listening and waits for every copy loop to end. */
  async close(reason = "helm is done"): Promise<void> {
    this.#opts.lost?.removeEventListener("abort", this.#onLost);
    this.cut(reason);
    closeQuietly(this.#listener);
    await this.#accepting;
    await Promise.all(this.#pumps);
  }

  /** Whether a chunk may pass now; cuts everything the first time it may not. */
  #mayForward(): boolean {
    if (this.#cut !== undefined) return false;
    const margin = this.#opts.validUntil() - this.#now();
    if (margin > 0) {
      this.#minMarginMs = Math.min(this.#minMarginMs ?? Infinity, margin);
      return true;
    }
    this.cut("the lock's validity ended");
    return false;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // Closed.
      }
      if (!this.#mayForward()) {
        this.#refusedConnections++;
        closeQuietly(conn);
        continue;
      }
      const pump = this.#serve(conn);
      this.#pumps.add(pump);
      pump.finally(() => this.#pumps.delete(pump));
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn;
    let early: Uint8Array;
    try {
      ({ conn: server, early } = await dialUpstream(this.#opts.upstream));
    } catch {
      // helm sees a closed connection, as it would see a refused one.
      this.#conns.delete(client);
      closeQuietly(client);
      return;
    }
    if (this.#cut !== undefined) {
      closeQuietly(server);
      this.#conns.delete(client);
      return;
    }
    this.#conns.add(server);
    this.#connections++;
    // helm's requests are small writes that wait for an answer: Nagle's algorithm would hold
    // each behind the peer's delayed ACK (~40 ms a round trip) on both hops.
    for (const c of [client, server]) {
      try {
        (c as Partial<Deno.TcpConn>).setNoDelay?.(true);
      } catch { /* closed already */ }
    }
    const done = () => {
      for (const c of [client, server]) {
        closeQuietly(c);
        this.#conns.delete(c);
      }
    };
    await Promise.all([
      this.#pump(client, server, new Uint8Array(0)).finally(done),
      this.#pump(server, client, early).finally(done),
    ]);
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, first: Uint8Array): Promise<void> {
    const buf = new Uint8Array(CHUNK);
    let pending = first;
    for (;;) {
      if (pending.length === 0) {
        const n = await from.read(buf).catch(() => null);
        if (n === null) return;
        pending = buf.subarray(0, n);
      }
      // The check right before the write: a process that wakes from a pause (SIGSTOP, a
      // frozen VM) judges its lock before anything it read leaves.
      if (!this.#mayForward()) {
        this.#refusedBytes += pending.length;
        return;
      }
      try {
        while (pending.length > 0) {
          const written = await to.write(pending);
          if (this.#cut !== undefined) this.#forwardedAfterCut += written;
          this.#forwarded += written;
          pending = pending.subarray(written);
        }
      } catch {
        return;
      }
    }
  }
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}
