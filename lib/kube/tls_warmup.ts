/**
 * Seeds the TLS library's random generator off the main thread. Deno's TLS (rustls on
 * aws-lc) seeds it the first time a handshake needs it: about 27 ms of CPU on the thread that
 * does, which is the main thread for `fetch` (measured with Deno 2.9.6: a gap between
 * aws-lc's `/dev/sysgenid` probe and its first `getrandom`). An asynchronous WebCrypto EC key
 * generation uses the same generator from Deno's blocking thread pool, so starting one first
 * thing lets the seeding run on another core while we read the kubeconfig. Should a Deno version
 * seed differently, this costs one key generation on a pool thread and nothing else.
 *
 * Imports nothing; `main.ts` starts it first thing, before it connects.
 *
 * @module
 */

/** Starts the seeding (see the module documentation); never fails and is not awaited. */
export function warmUpTls(): void {
  try {
    crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])
      .catch(() => {});
  } catch {
    // No WebCrypto: nothing to warm.
  }
}
