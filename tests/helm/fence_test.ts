/** fenceHelm() (lib/helm/fence.ts): the fence a run puts around helm's API traffic. */
import assert from "node:assert/strict";
import { fenceHelm } from "../../lib/helm/fence.ts";
import type { KubeConnection } from "../../lib/kube/connection.ts";
import { ConnectProxy } from "../support/connect_proxy.ts";

/** A connection to a server nothing listens on: a fence that forwarded anything would fail. */
const conn = {
  cluster: { name: "c", server: "https://127.0.0.1:9" },
  namespace: "ns",
  env: {},
} as unknown as KubeConnection;

/** `conn` with other cluster fields and proxy. */
function connWith(cluster: Record<string, string>, proxy?: string): KubeConnection {
  return {
    ...conn,
    cluster: { ...conn.cluster, ...cluster },
    proxy: proxy === undefined ? undefined : new URL(proxy),
  };
}

function reporter() {
  const info: string[] = [];
  const debug: string[] = [];
  return {
    info,
    debug,
    report: { info: (l: string) => info.push(l), debug: (l: string) => debug.push(l) },
  };
}

const valid = { validUntil: () => performance.now() + 60_000, lost: new AbortController().signal };

/** Whether the pass-through at `port` closes a new connection at once. */
async function closedAtOnce(port: number): Promise<boolean> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(new TextEncoder().encode("\x16\x03\x01")).catch(() => 0);
    return await c.read(new Uint8Array(16)).catch(() => null) === null;
  } finally {
    c.close();
  }
}

Deno.test("a fence opened after the lock was lost lets nothing through", async () => {
  const lost = new AbortController();
  lost.abort(new Error("taken"));
  const { info, report } = reporter();
  await using fence = fenceHelm({ fence: true }, conn, {
    validUntil: () => performance.now() + 60_000, // Still valid by the clock: lost by a watch.
    lost: lost.signal,
  }, report);
  assert.match(fence.env.HELM_KUBEAPISERVER ?? "", /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.deepEqual(info, ["cut helm off the API server: the lock was lost"]);
  const port = Number(new URL(fence.env.HELM_KUBEAPISERVER!).port);
  assert.ok(await closedAtOnce(port), "closed at once");
});

Deno.test("a fence is cut when the lock is lost while helm runs", async () => {
  const lost = new AbortController();
  const { info, report } = reporter();
  await using fence = fenceHelm({ fence: true }, conn, {
    validUntil: valid.validUntil,
    lost: lost.signal,
  }, report);
  assert.deepEqual(info, []);
  lost.abort(new Error("taken"));
  assert.deepEqual(info, ["cut helm off the API server: the lock was lost"]);
  const port = Number(new URL(fence.env.HELM_KUBEAPISERVER!).port);
  assert.ok(await closedAtOnce(port), "closed at once");
});

Deno.test("a fence points helm at the pass-through with a client-go cache of the run's own, removed when disposed", async () => {
  const tmp = await Deno.makeTempDir();
  const before = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmp);
  try {
    const { info, debug, report } = reporter();
    let cache: string;
    {
      await using fence = fenceHelm({ fence: true }, conn, valid, report);
      assert.match(fence.env.HELM_KUBEAPISERVER ?? "", /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(fence.env.HELM_KUBETLS_SERVER_NAME, "127.0.0.1");
      cache = fence.env.KUBECACHEDIR ?? "";
      assert.ok(cache.startsWith(`${tmp}/helm-lock-kube-cache-`), cache);
      assert.ok((await Deno.stat(cache)).isDirectory);
    }
    await assert.rejects(Deno.stat(cache), Deno.errors.NotFound);
    // Helm being done is no cut worth telling the user about.
    assert.deepEqual(info, []);
    assert.match(debug.join("\n"), /after the cut-off 0 bytes forwarded/);
  } finally {
    if (before === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", before);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("no fence with --lock-no-fence or an explicit --kube-apiserver, saying why on one line", async () => {
  for (
    const [flags, why] of [
      [{ fence: false }, /^not fencing helm's API traffic: --lock-no-fence$/],
      [
        { fence: true, kubeApiserver: "https://127.0.0.1:9" },
        /^not fencing helm's API traffic .*--kube-apiserver/,
      ],
    ] as const
  ) {
    const { info, report } = reporter();
    await using fence = fenceHelm(flags, conn, valid, report);
    assert.deepEqual(fence.env, {});
    assert.equal(info.length, 1, info.join("\n"));
    assert.match(info[0]!, why);
  }
});

Deno.test("a fence keeps the server's path and tls-server-name, and tunnels through the connection's proxy", async () => {
  // A proxy of an unknown scheme is spoken to as plain HTTP, as Go does.
  const proxy = new ConnectProxy({ "api.example.com:6443": "127.0.0.1:9" });
  const server = "https://api.example.com:6443/k8s/clusters/c-1";
  const { debug, report } = reporter();
  try {
    const c = connWith(
      { server, tlsServerName: "kube.internal" },
      proxy.url.replace("http", "foo"),
    );
    await using fence = fenceHelm({ fence: true }, c, valid, report);
    const local = new URL(fence.env.HELM_KUBEAPISERVER!);
    assert.equal(local.href, `https://127.0.0.1:${local.port}/k8s/clusters/c-1`);
    assert.equal(fence.env.HELM_KUBETLS_SERVER_NAME, "kube.internal");
    assert.match(debug[0]!, /through 127\.0\.0\.1:\d+ through proxy 127\.0\.0\.1:\d+$/);
    const helm = await Deno.connect({ hostname: "127.0.0.1", port: Number(local.port) });
    await helm.write(new TextEncoder().encode("\x16\x03\x01"));
    await helm.read(new Uint8Array(16)).catch(() => null); // closed once the proxy refused
    helm.close();
    assert.deepEqual(proxy.connects, ["api.example.com:6443"]);
  } finally {
    await proxy.close();
  }
});

Deno.test("no fence where helm's traffic cannot be pointed at the pass-through, saying why", async () => {
  const cases: [KubeConnection, RegExp][] = [
    [connWith({ name: "in-cluster" }), /in-cluster/],
    [connWith({ proxyUrl: "http://proxy:3128" }), /the kubeconfig's proxy-url/],
    [connWith({ server: "unix:///run/k8s.sock" }), /scheme unix: is neither https nor http/],
    [connWith({}, "socks5://proxy:1080"), /the socks5: proxy .* not supported/],
    [connWith({}, "socks5h://proxy:1080"), /the socks5h: proxy/],
  ];
  for (const [c, why] of cases) {
    const { info, report } = reporter();
    await using fence = fenceHelm({ fence: true }, c, valid, report);
    assert.deepEqual(fence.env, {});
    assert.equal(info.length, 1, info.join("\n"));
    assert.match(info[0]!, why);
  }
});
