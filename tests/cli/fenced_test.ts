import assert from "node:assert/strict";
import { fenceHelm } from "../../lib/cli/fenced.ts";
import type { KubeConnection } from "../../lib/kube/connection.ts";

/** A connection to a server nothing listens on: a fence that forwarded anything would fail. */
const conn = {
  cluster: { name: "c", server: "https://127.0.0.1:9" },
  namespace: "ns",
} as unknown as KubeConnection;

Deno.test("a fence opened after the lock was lost lets nothing through", async () => {
  const lost = new AbortController();
  lost.abort(new Error("taken"));
  const lines: string[] = [];
  const report = { info: (l: string) => lines.push(l), debug: () => {} };
  const fence = fenceHelm({ fence: true }, conn, {
    validUntil: () => performance.now() + 60_000, // Still valid by the clock: lost by a watch.
    lost: lost.signal,
  }, report);
  try {
    assert.match(fence.env.HELM_KUBEAPISERVER ?? "", /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(lines, ["cut helm off the API server: the lock was lost"]);
    const port = Number(new URL(fence.env.HELM_KUBEAPISERVER!).port);
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.write(new TextEncoder().encode("\x16\x03\x01")).catch(() => 0);
    assert.equal(await c.read(new Uint8Array(16)).catch(() => null), null, "closed at once");
    c.close();
  } finally {
    await fence.close();
    await fence.removed();
  }
});
