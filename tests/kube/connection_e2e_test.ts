/** The helm-style connection against the real API server: client certificates, impersonation. */
import assert from "node:assert/strict";
import { ExitCode } from "../../lib/errors.ts";
import { connect } from "../../lib/kube/connection.ts";
import { takeLock } from "../../lib/lock/take.ts";
import { kubeClient } from "../../lib/kube/rest.ts";
import { adminKubeConfig, adminKubeconfig, createNamespace } from "../support/cluster.ts";

function lock(conn: ReturnType<typeof connect>) {
  return takeLock({
    client: kubeClient(conn),
    namespace: conn.namespace,
    release: "app",
    identity: `test-${crypto.randomUUID()}`,
    annotations: {},
    timeoutMs: 5_000,
  });
}

Deno.test("connect() connects with the kubeconfig's client certificate", async () => {
  const namespace = await createNamespace("kube-conn");
  const conn = connect({ kubeconfig: adminKubeconfig(), namespace }, {});
  assert.equal(conn.namespace, namespace);
  const held = await lock(conn);
  await held.release();
  assert.equal(held.lost.aborted, false);
});

Deno.test("connect() impersonates --kube-as-user, and RBAC judges that user", async () => {
  const namespace = await createNamespace("kube-as");
  const conn = connect({ kubeconfig: adminKubeconfig(), namespace }, {
    HELM_KUBEASUSER: "nobody-in-particular",
  });
  await assert.rejects(lock(conn), {
    name: "HelmLockError",
    code: ExitCode.Forbidden,
    message:
      `Cannot list leases in namespace "${namespace}" as user "nobody-in-particular": forbidden`,
  });
});

Deno.test("connect() names the server when nothing listens there", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // A port that was free a moment ago: nothing listens there now.
  const server = `https://127.0.0.1:${port}`;
  const conn = connect({ kubeconfig: adminKubeconfig(), kubeApiserver: server }, {});
  await assert.rejects(lock(conn), {
    name: "HelmLockError",
    code: ExitCode.Unreachable,
    message:
      `Cannot reach the Kubernetes API server ${server}: connect ECONNREFUSED 127.0.0.1:${port}`,
  });
});

Deno.test("connect() names the server whose certificate does not match", async () => {
  const conn = connect({
    kubeconfig: adminKubeconfig(),
    kubeTlsServerName: "not-the-api-server.example",
  }, {});
  await assert.rejects(lock(conn), {
    name: "HelmLockError",
    code: ExitCode.Unreachable,
    message: new RegExp(
      `^Cannot reach the Kubernetes API server ${conn.server}: .*not-the-api-server`,
    ),
  });
});

Deno.test("connect() skips verification with HELM_KUBEINSECURE_SKIP_TLS_VERIFY", async () => {
  const namespace = await createNamespace("kube-insecure");
  const conn = connect(
    { kubeconfig: adminKubeconfig(), kubeTlsServerName: "not-the-api-server.example", namespace },
    { HELM_KUBEINSECURE_SKIP_TLS_VERIFY: "true" },
  );
  const held = await lock(conn);
  await held.release();
  assert.equal(conn.cluster.skipTLSVerify, true);
});

Deno.test("connect() keeps the kubeconfig's insecure-skip-tls-verify under helm's false", async () => {
  // As a plugin, helm exports HELM_KUBEINSECURE_SKIP_TLS_VERIFY=false by default; a
  // kubeconfig that skips verification (and has no CA) must still connect.
  const namespace = await createNamespace("kube-insecure-cfg");
  const config = JSON.parse(adminKubeConfig().exportConfig());
  for (const c of config.clusters) {
    delete c.cluster["certificate-authority-data"];
    delete c.cluster["certificate-authority"];
    c.cluster["insecure-skip-tls-verify"] = true;
  }
  const path = await Deno.makeTempFile({ prefix: "helm-lock-insecure-", suffix: ".json" });
  try {
    await Deno.writeTextFile(path, JSON.stringify(config));
    const conn = connect(
      { kubeconfig: path, namespace },
      { HELM_KUBEINSECURE_SKIP_TLS_VERIFY: "false" },
    );
    const held = await lock(conn);
    await held.release();
    assert.equal(held.lost.aborted, false);
  } finally {
    await Deno.remove(path);
  }
});
