/**
 * Fencing end to end (issue 10): helm-lock spawned like a user runs it, real helm 3 and 4,
 * the real API server. A holder that is paused, lost its lock or is dead cannot write.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import {
  adminKubeConfig,
  createNamespace,
  helmEnv,
  helms,
  writeKubeconfig,
} from "../support/cluster.ts";
import { FAST, SLOW, slowUpgradeArgs } from "../support/charts.ts";
import { history, releaseStatus, run, waitFor, waitForStatus } from "../support/helm.ts";
import { childPids, helmLock, LockProcess } from "../support/cli.ts";
import { ConnectProxy } from "../support/connect_proxy.ts";
import { ExitCode } from "../../lib/errors.ts";

const LEASE = ["--lock-lease-duration", "3s"];
/** The pass-through's own count, from its --debug line. */
const NOTHING_AFTER_CUT = /after the cut-off 0 bytes forwarded/;

/** What the recovered history looks like when the old helm never wrote after losing. */
const RECOVERED = ["1:superseded", "2:pending-upgrade", "3:superseded", "4:deployed"];

function processGone(pid: number, timeoutMs: number): Promise<true> {
  return waitFor(`process ${pid} to exit`, async () => {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return stat === "" || state === "Z" ? true : undefined;
  }, timeoutMs);
}

/** The child of `pid` that runs `bin` (helm-lock's other child is its watchdog). */
async function childRunning(pid: number, bin: string): Promise<number | undefined> {
  for (const child of await childPids(pid)) {
    const cmdline = await Deno.readTextFile(`/proc/${child}/cmdline`).catch(() => "");
    if (cmdline.split("\0")[0] === bin) return child;
  }
  return undefined;
}

for (const helm of helms) {
  const setup = async (prefix: string) => {
    const namespace = await createNamespace(`${prefix}-${helm.name}`);
    const env = await helmEnv({ HELM_BIN: helm.bin });
    assert.equal((await run(helm.bin, ["install", "app", SLOW, "-n", namespace], env)).code, 0);
    const holder = new LockProcess(
      [...slowUpgradeArgs("app", namespace), "--set", "tag=v2", "--debug", ...LEASE],
      env,
    );
    await holder.waitForLine(/running helm/);
    await waitForStatus(helm.bin, "app", namespace, env, "pending-upgrade");
    const waiter = () =>
      new LockProcess(["upgrade", "app", SLOW, "-n", namespace, "--set", "tag=v3", ...LEASE], env);
    return { namespace, env, holder, waiter };
  };

  Deno.test(`${helm.name}: a holder paused past its lease cannot write once a waiter took over`, async () => {
    const { namespace, env, holder, waiter } = await setup("fence-paused");
    const next = waiter();
    await next.waitForLine(/held by/);
    holder.child.kill("SIGSTOP");
    let out;
    try {
      const deployed = await next.output();
      assert.equal(deployed.code, 0, deployed.stderr);
      assert.match(deployed.stderr, /rolled back/);
      assert.deepEqual(await history(helm.bin, "app", namespace, env), RECOVERED);
    } finally {
      holder.child.kill("SIGCONT");
      out = await holder.output();
    }
    assert.equal(out.code, ExitCode.LockLost, out.stderr);
    // Woken, it judged its lock before forwarding anything: by the renewal or the fence.
    assert.match(out.stderr, /cut helm off the API server: the lock('s validity ended| was lost)/);
    assert.match(out.stderr, /Lost the lock on release "app"/);
    assert.match(out.stderr, NOTHING_AFTER_CUT);
    // The old helm, stopped with SIGTERM, tried to mark its revision failed: not one of its
    // writes arrived after the takeover.
    assert.deepEqual(await history(helm.bin, "app", namespace, env), RECOVERED);
  });

  Deno.test(`${helm.name}: a Lease deleted by hand cuts the old helm off before the waiter's helm runs`, async () => {
    const { namespace, env, holder, waiter } = await setup("fence-deleted");
    const next = waiter();
    await next.waitForLine(/held by/);
    const api = adminKubeConfig().makeApiClient(k8s.CoordinationV1Api);
    await api.deleteNamespacedLease({ name: "helm-lock-app", namespace });

    const out = await holder.output();
    assert.equal(out.code, ExitCode.LockLost, out.stderr);
    // Lost by the deletion, or by the waiter's lock when that is seen first (it took the free
    // lock at once).
    assert.match(
      out.stderr,
      /Lost the lock on release "app" .*: (the Lease was deleted|it is now held by)/,
    );
    assert.match(out.stderr, NOTHING_AFTER_CUT);
    const cutAt = holder.lineAt(/cut helm off the API server: the lock was lost/);
    assert.ok(cutAt, out.stderr);
    const deployed = await next.output();
    assert.equal(deployed.code, 0, deployed.stderr);
    // A deleted Lease is free at once (issue 26): the waiter may take it as the holder sees the
    // deletion, but its helm starts only after its own reads of the release, by then the old
    // helm is cut off.
    assert.ok(cutAt < next.lineAt(/running helm/)!, "the old helm was cut off first");
    // helm's cancellation could not overwrite anything: the next job's revision stands.
    assert.deepEqual(await history(helm.bin, "app", namespace, env), RECOVERED);
  });

  Deno.test(`${helm.name}: the helm of a SIGKILLed holder cannot write`, async () => {
    const { namespace, env, holder } = await setup("fence-killed");
    const helmPid = await childRunning(holder.child.pid, helm.bin);
    assert.ok(helmPid);
    holder.child.kill("SIGKILL");
    await holder.child.status; // Not its output: helm holds the same stderr pipe.
    // helm outlived its holder: asked to stop (by the holder's watchdog, and here), it tries to
    // mark its release failed at once (as the SIGTERM test in tests/cli/ shows without a dead
    // holder). It cannot.
    try {
      Deno.kill(helmPid, "SIGTERM");
    } catch {
      // Gone already: the watchdog stopped it first.
    }
    await processGone(helmPid, 10_000).catch(() => Deno.kill(helmPid, "SIGKILL"));
    assert.equal((await releaseStatus(helm.bin, "app", namespace, env))?.status, "pending-upgrade");
    await holder.output();
  });
}

/** A non-loopback IPv4 address of this machine: Go proxies only those. */
const OUTSIDE_IP = Deno.networkInterfaces().find((i) =>
  i.family === "IPv4" && !i.address.startsWith("127.")
)?.address;

/** Forwards `ip:<port>` to `target` (the API server listens on 127.0.0.1 only). */
function forwarder(ip: string, target: URL): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: ip, port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      const server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
      conns.push(conn, server);
      conn.readable.pipeTo(server.writable).catch(() => {});
      server.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

async function kubeconfigWith(cluster: Record<string, unknown>): Promise<string> {
  const admin = adminKubeConfig();
  const user = admin.getCurrentUser()!;
  const dir = await Deno.makeTempDir({ prefix: "helm-lock-fence-" });
  return await writeKubeconfig(
    dir,
    { "certificate-authority-data": admin.getCurrentCluster()!.caData, ...cluster },
    {
      name: "admin",
      user: { "client-certificate-data": user.certData, "client-key-data": user.keyData },
    },
  );
}

for (const helm of helms) {
  Deno.test({
    name: `${helm.name}: HTTPS_PROXY still carries helm's traffic with fencing on`,
    ignore: !OUTSIDE_IP,
    async fn() {
      const server = new URL(adminKubeConfig().getCurrentCluster()!.server);
      const outside = forwarder(OUTSIDE_IP!, server);
      const proxy = new ConnectProxy();
      try {
        const namespace = await createNamespace("fence-https-proxy");
        const kubeconfig = await kubeconfigWith({
          server: `https://${OUTSIDE_IP}:${outside.port}`,
          "tls-server-name": "localhost",
        });
        const env = await helmEnv({
          HELM_BIN: helm.bin,
          KUBECONFIG: kubeconfig,
          HTTPS_PROXY: proxy.url,
        });
        const out = await helmLock(["upgrade", "-i", "app", FAST, "-n", namespace, "--debug"], env);
        assert.equal(out.code, 0, out.stderr);
        assert.doesNotMatch(out.stderr, /not fencing/);
        assert.match(out.stderr, /through 127\.0\.0\.1:\d+ through proxy 127\.0\.0\.1/);
        assert.match(out.stderr, /fence: forwarded [1-9]\d* bytes/);
        assert.ok(proxy.connects.includes(`${OUTSIDE_IP}:${outside.port}`), proxy.connects.join());
      } finally {
        await proxy.close();
        outside.close();
      }
    },
  });

  Deno.test(`${helm.name}: a fenced run keeps helm's client-go cache to itself and removes it`, async () => {
    const namespace = await createNamespace(`fence-cache-${helm.name}`);
    // The user's cache: client-go keys it by host and port, so the pass-through's port of
    // each run would leave an entry there that no later run can hit.
    const userCache = await Deno.makeTempDir({ prefix: "helm-lock-user-kube-cache-" });
    // A temp directory of its own, to see what a run leaves there.
    const tmp = await Deno.makeTempDir({ prefix: "helm-lock-cache-test-" });
    const env = await helmEnv({ HELM_BIN: helm.bin, KUBECACHEDIR: userCache, TMPDIR: tmp });
    try {
      for (const tag of ["v1", "v2"]) {
        const out = await helmLock(
          ["upgrade", "-i", "app", FAST, "-n", namespace, "--set", `tag=${tag}`, "--debug"],
          env,
        );
        assert.equal(out.code, 0, out.stderr);
        // Fenced, and helm went through the pass-through (so through the run's own cache).
        assert.match(out.stderr, /fence: forwarded [1-9]\d* bytes/);
        assert.doesNotMatch(out.stderr, /keeps the user's client-go cache/);
      }
      assert.deepEqual(await Array.fromAsync(Deno.readDir(userCache)), []);
      // Each run's cache directory went with the run.
      assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), []);
      // Plain helm fills that very cache: the emptiness above is helm-lock's doing.
      const plain = await run(
        helm.bin,
        ["upgrade", "app", FAST, "-n", namespace, "--set", "tag=v3"],
        env,
      );
      assert.equal(plain.code, 0, plain.stderr);
      assert.notDeepEqual(await Array.fromAsync(Deno.readDir(userCache)), []);
    } finally {
      await Deno.remove(userCache, { recursive: true });
      await Deno.remove(tmp, { recursive: true });
    }
  });

  Deno.test(`${helm.name}: a kubeconfig proxy-url still works; helm-lock says helm runs unfenced`, async () => {
    const server = adminKubeConfig().getCurrentCluster()!.server;
    const proxy = new ConnectProxy();
    try {
      const namespace = await createNamespace("fence-proxy-url");
      const kubeconfig = await kubeconfigWith({ server, "proxy-url": proxy.url });
      const env = await helmEnv({ HELM_BIN: helm.bin, KUBECONFIG: kubeconfig });
      const out = await helmLock(["upgrade", "-i", "app", FAST, "-n", namespace], env);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, /not fencing helm's API traffic .*: the kubeconfig's proxy-url/);
      const target = new URL(server).host;
      assert.ok(proxy.connects.filter((c) => c === target).length >= 2, proxy.connects.join());
    } finally {
      await proxy.close();
    }
  });
}
