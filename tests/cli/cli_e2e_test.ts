/**
 * `helm lock` end to end: main.ts spawned like a user runs it, real helm 3 and helm 4, the
 * real API server. Every case runs with both helm versions.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { adminKubeConfig, createNamespace, helmEnv, helms, mintUser } from "../support/cluster.ts";
import { FAST, SLOW, slowUpgradeArgs } from "../support/charts.ts";
import { history, releaseStatus, run, startStuckUpgrade, waitForStatus } from "../support/helm.ts";
import { childPids, helmLock, LockProcess } from "../support/cli.ts";
import { withTempDir } from "../support/temp.ts";
import { adminLeaseApi, runLeases } from "../support/leases.ts";
import { ExitCode } from "../../lib/errors.ts";

/** Short Leases so that the takeover of a killed holder's lock is quick. */
const LEASE = ["--lock-lease-duration", "3s"];
const ANOTHER_OPERATION = /another operation \(install\/upgrade\/rollback\) is in progress/;

for (const helm of helms) {
  const setup = async (prefix: string) => {
    const namespace = await createNamespace(`${prefix}-${helm.name}`);
    const env = await helmEnv({ HELM_BIN: helm.bin });
    return { namespace, env };
  };

  Deno.test(`${helm.name}: 8 concurrent helm lock upgrades all succeed, one after the other`, async () => {
    const { namespace, env } = await setup("concurrent");
    const install = await run(helm.bin, ["install", "app", FAST, "-n", namespace], env);
    assert.equal(install.code, 0, install.stderr);

    // Every helm the jobs start notes its start and end in one file (appends land in the order
    // they happen, whoever reads the jobs' output when): no two may interleave.
    await withTempDir("helm-lock-spans-", async (dir) => {
      const log = `${dir}/spans`;
      const wrapper = `${dir}/helm`;
      await Deno.writeTextFile(
        wrapper,
        `#!/bin/sh\necho start >> '${log}'\n'${helm.bin}' "$@"\ncode=$?\n` +
          `echo end >> '${log}'\nexit $code\n`,
        { mode: 0o755 },
      );
      const jobs = Array.from({ length: 8 }, (_, i) =>
        new LockProcess(
          [
            "upgrade",
            "app",
            FAST,
            "-n",
            namespace,
            "--set",
            `tag=job-${i}`,
            "--lock-timeout",
            "3m",
          ],
          { ...env, HELM_BIN: wrapper },
        ));
      const outputs = await Promise.all(jobs.map((j) => j.output()));
      for (const out of outputs) {
        assert.equal(out.code, 0, out.stderr);
        assert.doesNotMatch(out.stderr + out.stdout, ANOTHER_OPERATION);
      }
      const spans = (await Deno.readTextFile(log)).trim().split("\n");
      assert.ok(spans.length >= 16, `8 helm runs at least, found ${spans.length / 2}`);
      spans.forEach((line, i) => assert.equal(line, i % 2 ? "end" : "start", `helm runs overlap`));
    });
    assert.deepEqual(await releaseStatus(helm.bin, "app", namespace, env), {
      status: "deployed",
      revision: 9,
    });
    assert.deepEqual(await runLeases(namespace), []);
  });

  Deno.test(`${helm.name}: a holder killed mid-upgrade is recovered by the next helm lock upgrade`, async () => {
    const { namespace, env } = await setup("killed");
    assert.equal(
      (await helmLock(["install", "app", SLOW, "-n", namespace, ...LEASE], env)).code,
      0,
    );

    const job = new LockProcess(
      [...slowUpgradeArgs("app", namespace), "--set", "tag=v2", ...LEASE],
      env,
    );
    await waitForStatus(helm.bin, "app", namespace, env, "pending-upgrade");
    // A cancelled CI job: the runner kills the whole process tree at once.
    const helmPids = await childPids(job.child.pid);
    job.child.kill("SIGKILL");
    for (const pid of helmPids) Deno.kill(pid, "SIGKILL");
    assert.equal((await job.output()).signal, "SIGKILL");
    assert.deepEqual(
      (await runLeases(namespace)).map((l) => l.metadata?.name),
      ["helm-lock-app"],
      "the killed holder's Lease stays until it expires (uncontended, it took no ticket)",
    );

    const next = await helmLock([
      "upgrade",
      "app",
      SLOW,
      "-n",
      namespace,
      "--set",
      "tag=v3",
      ...LEASE,
    ], env);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /pending-upgrade/);
    assert.match(next.stderr, /rolled back .* to revision 1/);
    // helm leaves the killed revision pending-upgrade in the history for good; what counts is
    // that the rollback (3) and the upgrade (4) went through.
    assert.deepEqual(await history(helm.bin, "app", namespace, env), [
      "1:superseded",
      "2:pending-upgrade",
      "3:superseded",
      "4:deployed",
    ]);
  });

  Deno.test(`${helm.name}: a killed first install is uninstalled by upgrade --install, refused without --install`, async () => {
    const { namespace, env } = await setup("pending-install");
    const stuck = await startStuckUpgrade(helm.bin, "app", namespace, env, "pending-install");
    stuck.kill("SIGKILL");
    await stuck.status;

    const plain = await helmLock(["upgrade", "app", FAST, "-n", namespace, ...LEASE], env);
    assert.equal(plain.code, ExitCode.RecoveryFailed, plain.stderr);
    assert.match(plain.stderr, /pending-install/);
    assert.match(plain.stderr, /--install/);
    assert.doesNotMatch(plain.stderr, /running helm/);
    assert.equal((await releaseStatus(helm.bin, "app", namespace, env))?.status, "pending-install");

    const install = await helmLock(
      ["upgrade", "--install", "app", FAST, "-n", namespace, ...LEASE],
      env,
    );
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stderr, /uninstalled the stale/);
    assert.deepEqual(await releaseStatus(helm.bin, "app", namespace, env), {
      status: "deployed",
      revision: 1,
    });
  });

  Deno.test(`${helm.name}: a failed release is left to helm, or uninstalled for --install if it has no good revision`, async () => {
    const { namespace, env } = await setup("failed");
    // No good revision: a first install the API server refused.
    const bad = await run(
      helm.bin,
      ["install", "app", FAST, "-n", namespace, "--set", "fail=true"],
      env,
    );
    assert.notEqual(bad.code, 0);
    assert.equal((await releaseStatus(helm.bin, "app", namespace, env))?.status, "failed");
    const first = await helmLock(["upgrade", "-i", "app", FAST, "-n", namespace], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /uninstalled the stale/);
    assert.deepEqual(await history(helm.bin, "app", namespace, env), ["1:deployed"]);

    // A good revision, then a failed upgrade: helm upgrades from the good one by itself.
    const failing = await run(helm.bin, [
      "upgrade",
      "app",
      FAST,
      "-n",
      namespace,
      "--set",
      "broken=true",
    ], env);
    assert.notEqual(failing.code, 0);
    const next = await helmLock(["upgrade", "app", FAST, "-n", namespace, "--set", "tag=v3"], env);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /is failed at revision 2, which does not block helm upgrade\n/);
    assert.doesNotMatch(next.stderr, /rolled back/);
    assert.deepEqual(await history(helm.bin, "app", namespace, env), [
      "1:superseded",
      "2:failed",
      "3:deployed",
    ]);
  });

  Deno.test(`${helm.name}: a --dry-run takes the lock but neither recovers nor creates anything`, async () => {
    const { namespace, env } = await setup("dry-run");
    assert.equal((await run(helm.bin, ["install", "app", FAST, "-n", namespace], env)).code, 0);
    const failing = await run(
      helm.bin,
      ["upgrade", "app", FAST, "-n", namespace, "--set", "broken=true"],
      env,
    );
    assert.notEqual(failing.code, 0);

    const out = await helmLock(
      ["upgrade", "app", FAST, "-n", namespace, "--dry-run", "--create-namespace"],
      env,
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /--dry-run: the release is neither checked nor recovered/);
    assert.match(out.stderr, /released lock/);
    assert.deepEqual(await history(helm.bin, "app", namespace, env), ["1:deployed", "2:failed"]);

    const missing = `${namespace}-new`;
    const install = await helmLock(
      ["upgrade", "--install", "app", FAST, "-n", missing, "--dry-run", "--create-namespace"],
      env,
    );
    assert.notEqual(install.code, 0);
    const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
    await assert.rejects(
      core.readNamespace({ name: missing }),
      (e: unknown) => e instanceof k8s.ApiException && e.code === 404,
    );
  });

  Deno.test(`${helm.name}: SIGTERM is forwarded to helm, the release ends failed, the lock passes on at once`, async () => {
    const { namespace, env } = await setup("sigterm");
    assert.equal((await run(helm.bin, ["install", "app", SLOW, "-n", namespace], env)).code, 0);

    // The default 15 s Lease: the waiter must not need its expiry.
    const holder = new LockProcess(
      [...slowUpgradeArgs("app", namespace), "--set", "tag=v2"],
      env,
    );
    await holder.waitForLine(/running helm/);
    await waitForStatus(helm.bin, "app", namespace, env, "pending-upgrade");
    const waiter = new LockProcess(
      ["upgrade", "app", FAST, "-n", namespace, "--set", "tag=v3"],
      env,
    );
    await waiter.waitForLine(/waiting for lock|held by/);

    const killedAt = performance.now();
    holder.child.kill("SIGTERM");
    const out = await holder.output();
    assert.equal(out.code, 143, out.stderr);
    assert.match(out.stderr, /SIGTERM received: forwarding it to helm/);
    assert.match(out.stderr, /released lock/);

    const acquiredAt = await waiter.waitForLine(/acquired lock/);
    assert.ok(acquiredAt - killedAt < 15_000, "the waiter did not wait for the Lease to expire");
    const next = await waiter.output();
    assert.equal(next.code, 0, next.stderr);
    // helm marked its own release failed on SIGTERM, which blocks nothing: the waiter's
    // upgrade proceeds.
    assert.match(next.stderr, /is failed at revision 2, which does not block helm upgrade/);
    assert.deepEqual(await history(helm.bin, "app", namespace, env), [
      "1:superseded",
      "2:failed",
      "3:deployed",
    ]);
  });

  Deno.test(`${helm.name}: a SIGTERM delivered twice still lets helm finish its cancellation`, async () => {
    const { namespace, env } = await setup("sigterm-twice");
    assert.equal((await run(helm.bin, ["install", "app", SLOW, "-n", namespace], env)).code, 0);
    const holder = new LockProcess(
      ["upgrade", "app", SLOW, "-n", namespace, "--wait", "--set", "tag=v2"],
      env,
    );
    await holder.waitForLine(/running helm/);
    await waitForStatus(helm.bin, "app", namespace, env, "pending-upgrade");
    // What a CI runner that signals the process group, then the process, does.
    holder.child.kill("SIGTERM");
    await holder.waitForLine(/SIGTERM received/);
    holder.child.kill("SIGTERM");
    const out = await holder.output();
    assert.equal(out.code, 143, out.stderr);
    assert.match(out.stderr, /SIGTERM received again: still waiting for helm/);
    assert.doesNotMatch(out.stderr, /killing helm/);
    assert.equal((await releaseStatus(helm.bin, "app", namespace, env))?.status, "failed");
    assert.deepEqual(await runLeases(namespace), []);
  });

  Deno.test(`${helm.name}: a job that cannot get the lock in --lock-timeout fails naming the holder`, async () => {
    const { namespace, env } = await setup("timeout");
    assert.equal((await run(helm.bin, ["install", "app", SLOW, "-n", namespace], env)).code, 0);
    const holder = new LockProcess(
      ["upgrade", "app", SLOW, "-n", namespace, "--wait", "--set", "db.password=hunter2"],
      { ...env, CI_JOB_URL: "https://gitlab.example/group/app/-/jobs/42" },
    );
    await holder.waitForLine(/running helm/);
    // What the Lease tells waiters, and the one copy of the command left on the cluster.
    const lease = (await runLeases(namespace)).find((l) => l.metadata?.name === "helm-lock-app");
    const identity = lease?.spec?.holderIdentity ?? "";
    const annotations = lease?.metadata?.annotations ?? {};
    assert.match(identity, new RegExp(`-${holder.child.pid}-[0-9a-f]+$`));
    assert.match(annotations["helm-lock.dev/command"] ?? "", /--set db\.password=\*\*\*/);
    assert.doesNotMatch(JSON.stringify(lease), /hunter2/);

    const started = performance.now();
    const waiter = await helmLock(
      [
        "upgrade",
        "app",
        SLOW,
        "-n",
        namespace,
        "--lock-timeout",
        "3s",
        "--set",
        "db.password=hunter2",
      ],
      env,
    );
    assert.equal(waiter.code, ExitCode.LockTimeout, waiter.stderr);
    assert.ok(performance.now() - started >= 3000, "gave up before --lock-timeout");
    assert.ok(waiter.stderr.includes(identity), waiter.stderr);
    assert.match(waiter.stderr, /https:\/\/gitlab\.example\/group\/app\/-\/jobs\/42/);
    assert.match(waiter.stderr, /--lock-timeout/);
    assert.doesNotMatch(waiter.stderr, /running helm/);

    holder.child.kill("SIGTERM");
    const held = await holder.output();
    for (const text of [held.stderr, held.stdout, waiter.stderr, waiter.stdout]) {
      assert.doesNotMatch(text, /hunter2/);
    }
  });

  Deno.test(`${helm.name}: a lock lost while helm runs stops helm with SIGTERM and exits 4`, async () => {
    const { namespace, env } = await setup("lost");
    assert.equal((await run(helm.bin, ["install", "app", SLOW, "-n", namespace], env)).code, 0);
    const holder = new LockProcess(
      ["upgrade", "app", SLOW, "-n", namespace, "--wait", "--set", "tag=v2", ...LEASE],
      env,
    );
    await holder.waitForLine(/running helm/);
    await waitForStatus(helm.bin, "app", namespace, env, "pending-upgrade");
    // Someone deletes the Lease behind the holder's back (an admin, or a bug elsewhere).
    const api = adminLeaseApi();
    await api.deleteNamespacedLease({ name: "helm-lock-app", namespace });

    const out = await holder.output();
    assert.equal(out.code, ExitCode.LockLost, out.stderr);
    assert.match(out.stderr, /stopping helm with SIGTERM/);
    // helm was stopped, and fenced off at once: its cancellation could not mark the release
    // failed (the next job recovers the pending one; tests/fence/ shows the takeover).
    assert.equal(
      (await releaseStatus(helm.bin, "app", namespace, env))?.status,
      "pending-upgrade",
    );
  });

  Deno.test(`${helm.name}: a user who may not create Leases gets a clear RBAC error and helm does not run`, async () => {
    const { namespace, env } = await setup("rbac");
    const kubeconfig = await mintUser({
      name: "ci-no-leases",
      namespace,
      // Everything helm needs, but no Leases.
      rules: [{ apiGroups: ["", "apps"], resources: ["*"], verbs: ["*"] }],
    });
    const out = await helmLock(["upgrade", "--install", "app", FAST, "-n", namespace], {
      ...env,
      KUBECONFIG: kubeconfig,
    });
    assert.equal(out.code, ExitCode.Forbidden, out.stderr);
    assert.match(out.stderr, /leases/);
    assert.match(out.stderr, new RegExp(`namespace "${namespace}"`));
    assert.match(out.stderr, /ci-no-leases/);
    assert.equal(await releaseStatus(helm.bin, "app", namespace, env), undefined);
    assert.deepEqual(await runLeases(namespace), []);
  });

  Deno.test(`${helm.name}: the CI Role documented in the README is enough for helm lock`, async () => {
    const { namespace, env } = await setup("ci-role");
    const kubeconfig = await mintUser({
      name: "ci-deployer",
      namespace,
      rules: [
        ...README_LEASE_RULES,
        // What helm itself needs for the fast chart (ConfigMaps) and its release Secrets.
        { apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["*"] },
      ],
    });
    // Another job's Lease that is never renewed: helm-lock must watch it, wait for it to expire
    // and take it over, so every verb of the Role is used.
    const api = adminLeaseApi();
    await api.createNamespacedLease({
      namespace,
      body: {
        metadata: { name: "helm-lock-app" },
        spec: { holderIdentity: "gone-job", leaseDurationSeconds: 2 },
      },
    });
    const out = await helmLock(["upgrade", "--install", "app", FAST, "-n", namespace], {
      ...env,
      KUBECONFIG: kubeconfig,
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /held by gone-job/);
    assert.deepEqual(await runLeases(namespace), []);
  });
}

/** The rules of the Role in the README's "RBAC" section, read from the README itself. */
const README_LEASE_RULES: k8s.V1PolicyRule[] = (() => {
  const readme = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));
  const block = readme.match(/```yaml\n(apiVersion: rbac[^`]*?kind: Role\n[^`]*?)```/)?.[1];
  if (!block) throw new Error("README.md has no Role in a yaml block");
  return k8s.loadYaml<k8s.V1Role>(block).rules ?? [];
})();

Deno.test("bad input exits 2 with one line and writes nothing to the cluster", async () => {
  const namespace = await createNamespace("bad-input");
  const env = await helmEnv({ HELM_BIN: helms[0]!.bin });
  const cases: Array<[string[], RegExp]> = [
    [["upgrade", "--wait", "-n", namespace], /release/],
    [["upgrade", "app", FAST, "-n", namespace, "--lock-timeout", "5x"], /5x/],
    [["upgrade", "app", FAST, "-n", namespace, "--lock-timeout"], /--lock-timeout/],
    // An unknown command is helm's to refuse (it passes through); helm-lock's own are checked.
    [["lock-status", "-n", namespace], /lock-status as it takes one release name/],
    [[], /command/],
  ];
  for (const [args, re] of cases) {
    const out = await helmLock(args, env);
    assert.equal(out.code, ExitCode.Usage, `${args.join(" ")}: ${out.stderr}`);
    assert.match(out.stderr, re);
    assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
    assert.match(out.stderr, /^helm-lock: /);
  }
  assert.deepEqual(await runLeases(namespace), []);
});

Deno.test("--help and --version print to stdout and exit 0", async () => {
  const env = await helmEnv();
  const help = await helmLock(["--help"], env);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /USAGE/);
  assert.match(help.stdout, /EXIT CODES/);
  const version = await helmLock(["--version"], env);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^helm-lock \d+\.\d+\.\d+/);
});
