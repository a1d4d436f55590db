/**
 * Kubernetes Events on the lock (issue 29), on the real API server with helm 3 and helm 4: a
 * contended deploy of a release left `pending-upgrade` tells its story in the lock's Events,
 * as `kubectl get events --field-selector involvedObject.name=helm-lock-<release>` shows it:
 * waiting (with its place), acquired, recovered (what was done), released, each naming the
 * CI job and reported by `helm-lock`.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { lockName, releaseLabels } from "../../lib/lock/names.ts";
import { adminKubeConfig, createNamespace, helmEnv, helms } from "../support/cluster.ts";
import { FAST } from "../support/charts.ts";
import { run, startStuckUpgrade } from "../support/helm.ts";
import { LockProcess } from "../support/cli.ts";

const JOB = "https://gitlab.example.com/team/app/-/jobs/7";

for (const helm of helms) {
  Deno.test(`${helm.name}: the lock's Events tell a contended deploy with recovery: waiting, acquired, recovered, released`, async () => {
    const namespace = await createNamespace(`events-${helm.name}`);
    const env = await helmEnv({ HELM_BIN: helm.bin, CI_JOB_URL: JOB });
    assert.equal((await run(helm.bin, ["install", "app", FAST, "-n", namespace], env)).code, 0);
    // A helm killed mid-upgrade: the release is left pending-upgrade.
    const stuck = await startStuckUpgrade(helm.bin, "app", namespace, env, "pending-upgrade");
    stuck.kill("SIGKILL");
    await stuck.status;
    // Another job holds the lock.
    const coordination = adminKubeConfig().makeApiClient(k8s.CoordinationV1Api);
    await coordination.createNamespacedLease({
      namespace,
      body: {
        metadata: { name: lockName("app"), labels: releaseLabels("app") },
        spec: { holderIdentity: "other-job", leaseDurationSeconds: 3600 },
      },
    });
    const job = new LockProcess(["upgrade", "app", FAST, "-n", namespace], env);
    await job.waitForLine(/waiting for lock/);
    await coordination.deleteNamespacedLease({ name: lockName("app"), namespace });
    const out = await job.output();
    assert.equal(out.code, 0, out.stderr);

    const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
    const events = (await core.listNamespacedEvent({
      namespace,
      fieldSelector: `involvedObject.name=${lockName("app")}`,
    })).items.sort((a, b) =>
      Number(a.metadata?.resourceVersion) - Number(b.metadata?.resourceVersion)
    );
    assert.deepEqual(
      events.map((e) => e.reason),
      ["Waiting", "Acquired", "Recovered", "Released"],
      JSON.stringify(events.map((e) => [e.reason, e.message])),
    );
    for (const e of events) {
      assert.equal(e.involvedObject.kind, "Lease");
      assert.equal(e.type, "Normal");
      assert.equal(e.reportingComponent, "helm-lock");
      assert.equal(e.source?.component, "helm-lock");
      assert.ok(e.message?.includes(JOB), `${e.reason} names the CI job: ${e.message}`);
    }
    const [waiting, , recovered] = events;
    assert.match(waiting!.message!, /next in line, held by other-job/);
    assert.match(recovered!.message!, /pending-upgrade/);
  });
}
