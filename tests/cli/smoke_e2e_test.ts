/**
 * Smoke tests of the test environment itself: the real API server serves Leases with
 * RBAC, real helm 3 and helm 4 deploy to it, and the problem helm-lock exists to fix
 * happens for real.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { adminKubeConfig, createNamespace, helmEnv, helms, mintUser } from "../support/cluster.ts";
import { FAST, SLOW } from "../support/charts.ts";
import { releaseStatus, run, startStuckUpgrade } from "../support/helm.ts";

Deno.test("control plane serves Leases with create, read, update by resourceVersion, delete", async () => {
  const namespace = await createNamespace("smoke-lease");
  const api = adminKubeConfig().makeApiClient(k8s.CoordinationV1Api);
  const created = await api.createNamespacedLease({
    namespace,
    body: { metadata: { name: "smoke" }, spec: { holderIdentity: "a", leaseDurationSeconds: 15 } },
  });
  const read = await api.readNamespacedLease({ name: "smoke", namespace });
  assert.equal(read.spec?.holderIdentity, "a");
  assert.equal(read.metadata?.resourceVersion, created.metadata?.resourceVersion);

  read.spec!.holderIdentity = "b";
  const updated = await api.replaceNamespacedLease({ name: "smoke", namespace, body: read });
  assert.equal(updated.spec?.holderIdentity, "b");
  assert.notEqual(updated.metadata?.resourceVersion, read.metadata?.resourceVersion);

  // The stale resourceVersion must be refused: that guard is what the lock relies on.
  await assert.rejects(
    api.replaceNamespacedLease({ name: "smoke", namespace, body: read }),
    (e: unknown) => e instanceof k8s.ApiException && e.code === 409,
  );
  await api.deleteNamespacedLease({ name: "smoke", namespace });
  await assert.rejects(
    api.readNamespacedLease({ name: "smoke", namespace }),
    (e: unknown) => e instanceof k8s.ApiException && e.code === 404,
  );
});

Deno.test("control plane denies Lease create to a user without Lease rights (403)", async () => {
  const namespace = await createNamespace("smoke-rbac");
  const kubeconfig = await mintUser({
    name: "no-leases",
    namespace,
    rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }],
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  await assert.rejects(
    api.createNamespacedLease({ namespace, body: { metadata: { name: "denied" } } }),
    (e: unknown) => e instanceof k8s.ApiException && e.code === 403,
  );
  const admin = adminKubeConfig().makeApiClient(k8s.CoordinationV1Api);
  const list = await admin.listNamespacedLease({ namespace });
  assert.equal(list.items.length, 0);
});

for (const helm of helms) {
  Deno.test(`${helm.name}: install then upgrade of the fast chart is deployed at revision 2`, async () => {
    const namespace = await createNamespace(`smoke-${helm.name}`);
    const env = await helmEnv();
    const version = await run(helm.bin, ["version", "--short"], env);
    assert.match(version.stdout, helm.name === "helm3" ? /^v3\.17\.2/ : /^v4\.1\.4/);

    const install = await run(helm.bin, ["install", "app", FAST, "-n", namespace], env);
    assert.equal(install.code, 0, install.stderr);
    const upgrade = await run(helm.bin, [
      "upgrade",
      "app",
      FAST,
      "-n",
      namespace,
      "--set",
      "tag=v2",
    ], env);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    assert.deepEqual(await releaseStatus(helm.bin, "app", namespace, env), {
      status: "deployed",
      revision: 2,
    });
  });

  Deno.test(`${helm.name}: a helm killed mid-upgrade leaves the release pending and blocks the next upgrade`, async () => {
    const namespace = await createNamespace(`smoke-stuck-${helm.name}`);
    const env = await helmEnv();
    const install = await run(helm.bin, ["install", "app", SLOW, "-n", namespace], env);
    assert.equal(install.code, 0, install.stderr);

    const child = await startStuckUpgrade(helm.bin, "app", namespace, env, "pending-upgrade");
    child.kill("SIGKILL"); // what a cancelled CI job or an OOM kill does
    assert.equal((await child.status).signal, "SIGKILL");

    assert.deepEqual(await releaseStatus(helm.bin, "app", namespace, env), {
      status: "pending-upgrade",
      revision: 2,
    });
    const next = await run(helm.bin, ["upgrade", "app", SLOW, "-n", namespace], env);
    assert.notEqual(next.code, 0);
    assert.match(next.stderr, /another operation \(install\/upgrade\/rollback\) is in progress/);
  });
}
