/**
 * helm-lock as a drop-in helm, end to end with helm 3 and helm 4: commands that change no
 * release pass through byte for byte, HELM_BIN or PATH leading back to helm-lock still runs
 * the real helm, a nested helm-lock never waits for its own lock, and the lock-status,
 * lock-list and lock-unlock commands against the real API server.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { createNamespace, helmEnv, helms } from "../support/cluster.ts";
import { FAST, slowUpgradeArgs } from "../support/charts.ts";
import { run, waitForStatus } from "../support/helm.ts";
import { childPids, helmLock, LockProcess, writeLauncher } from "../support/cli.ts";
import { runLeases } from "../support/leases.ts";
import { ExitCode } from "../../lib/errors.ts";
import { OWN_COMMANDS } from "../../lib/cli/help.ts";

/** The lock Leases (not the queue's tickets) of a namespace. */
async function locks(namespace: string): Promise<k8s.V1Lease[]> {
  return (await runLeases(namespace)).filter((l) => l.metadata?.name?.startsWith("helm-lock-"));
}

for (const helm of helms) {
  const setup = async (prefix: string) => {
    const namespace = await createNamespace(`${prefix}-${helm.name}`);
    const env = await helmEnv({ HELM_BIN: helm.bin });
    return { namespace, env };
  };

  Deno.test(`${helm.name}: version, list -A and template print exactly what helm prints`, async () => {
    const { namespace, env } = await setup("passthrough");
    // A name of its own: `list -A` sees the releases of the test files running meanwhile.
    const release = `passthrough-${crypto.randomUUID().slice(0, 8)}`;
    assert.equal((await run(helm.bin, ["install", release, FAST, "-n", namespace], env)).code, 0);
    const launcher = await writeLauncher(await Deno.makeTempDir({ prefix: "helm-lock-" }));
    for (
      const args of [
        ["version", "--short"],
        ["list", "-A", "--date", "--filter", `^${release}$`],
        ["list", "-n", namespace],
        ["template", "r", FAST, "--set", "tag=x"],
        ["status", release, "-n", namespace, "-o", "json"],
        ["no-such-command"],
      ]
    ) {
      const plain = await run(helm.bin, args, env);
      // --lock-* flags (helmfile --args appends them to every call) are taken out.
      const locked = await run(launcher, [...args, "--lock-timeout", "1m"], env);
      assert.equal(locked.stdout, plain.stdout, args.join(" "));
      assert.equal(locked.stderr, plain.stderr, args.join(" "));
      assert.equal(locked.code, plain.code, args.join(" "));
    }
    assert.notEqual((await run(helm.bin, ["no-such-command"], env)).code, 0);
    // No cluster call by helm-lock: it works without a reachable cluster where helm does.
    const offline = { ...env, KUBECONFIG: "/nonexistent/kubeconfig" };
    const version = await helmLock(["version", "--short"], offline);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^v[34]\.\d+\.\d+/);
    assert.deepEqual(await runLeases(namespace), []);
  });

  Deno.test(`${helm.name}: HELM_BIN or PATH leading back to helm-lock still run the real helm`, async () => {
    const { env } = await setup("recursion");
    const dir = await Deno.makeTempDir({ prefix: "helm-lock-launcher-" });
    const launcher = await writeLauncher(dir);
    const plain = await run(helm.bin, ["version", "--short"], env);
    const realDir = dirname(helm.bin);

    // HELM_BIN names helm-lock itself; the real helm is on PATH.
    const viaBin = await run(launcher, ["version", "--short"], {
      ...env,
      HELM_BIN: launcher,
      PATH: `${realDir}:${Deno.env.get("PATH")}`,
    });
    assert.equal(viaBin.code, 0, viaBin.stderr);
    assert.equal(viaBin.stdout, plain.stdout);

    // helm-lock first on PATH as "helm", no HELM_BIN.
    const asHelm = await Deno.makeTempDir({ prefix: "helm-lock-as-helm-" });
    await Deno.symlink(launcher, join(asHelm, "helm"));
    const noBin = { ...env, PATH: `${asHelm}:${realDir}:${Deno.env.get("PATH")}` };
    delete (noBin as Record<string, string>).HELM_BIN;
    const viaPath = await run(join(asHelm, "helm"), ["version", "--short"], noBin);
    assert.equal(viaPath.code, 0, viaPath.stderr);
    assert.equal(viaPath.stdout, plain.stdout);

    // Nothing but helm-lock: an error naming the problem, not an endless loop.
    const only = await run(launcher, ["version"], {
      ...env,
      HELM_BIN: launcher,
      PATH: `${asHelm}:/usr/bin:/bin`,
    });
    assert.equal(only.code, ExitCode.HelmNotFound, only.stderr);
    assert.match(only.stderr, /lead back to helm-lock/);
  });

  Deno.test(`${helm.name}: a helm-lock started as helm by the holder of the same lock does not wait for it`, async () => {
    const { namespace, env } = await setup("nested");
    const dir = await Deno.makeTempDir({ prefix: "helm-lock-launcher-" });
    const launcher = await writeLauncher(dir);
    const nestedEnv = {
      ...env,
      HELM_BIN: launcher,
      PATH: `${dirname(helm.bin)}:${Deno.env.get("PATH")}`,
    };
    // The outer helm-lock holds the lock and runs "helm" = helm-lock, which would wait for
    // the very same lock until --lock-timeout (exit 3) without the guard.
    const out = await run(launcher, [
      "upgrade",
      "--install",
      "app",
      FAST,
      "-n",
      namespace,
      "--debug",
      "--lock-timeout",
      "20s",
    ], nestedEnv);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /running helm directly: the lock helm-lock-app .* is held by /);
    // Had the inner one waited for the lock, it would have timed out (exit 3) and so would
    // the outer one's helm.
    await waitForStatus(helm.bin, "app", namespace, env, "deployed");
    assert.deepEqual(await runLeases(namespace), []);
  });

  Deno.test(`${helm.name}: lock-status, lock-list and lock-unlock of a live and a dead holder`, async () => {
    const { namespace, env } = await setup("status");
    const ci = "https://ci.example.com/jobs/42";
    // Empty first: no lock, no release.
    const none = await helmLock(["lock-status", "app", "-n", namespace, "-o", "json"], env);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(JSON.parse(none.stdout), {
      apiVersion: "helm-lock.dev/v1",
      kind: "LockStatus",
      metadata: { name: "app", namespace },
      lock: null,
      queue: [],
      release: {
        status: "not-installed",
        revision: null,
        updated: null,
        description: null,
        reason: null,
      },
    });

    const holder = new LockProcess(
      [...slowUpgradeArgs("app", namespace, { install: true }), "--lock-lease-duration", "10s"],
      { ...env, CI_JOB_URL: ci },
    );
    await holder.waitForLine(/running helm upgrade/);
    await waitForStatus(helm.bin, "app", namespace, env, "pending-install");

    const json = await helmLock(["lock-status", "app", "-n", namespace, "-o", "json"], env);
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout);
    assert.equal(status.lock.held, true);
    assert.equal(status.lock.lease, "helm-lock-app");
    assert.equal(status.lock.ciJobUrl, ci);
    assert.match(status.lock.holder, /-\d+-[0-9a-f]{16}$/);
    assert.match(status.lock.command, /^helm upgrade --install app/);
    assert.equal(status.lock.leaseDurationSeconds, 10);
    assert.deepEqual(status.queue, []);
    assert.ok(Date.parse(status.lock.since) <= Date.now());
    assert.deepEqual(
      { status: status.release.status, revision: status.release.revision },
      { status: "pending-install", revision: 1 },
    );
    const table = await helmLock(["lock-status", "app", "-n", namespace], env);
    assert.match(table.stdout, new RegExp(`LOCK: +helm-lock-app, held by ${status.lock.holder}`));
    assert.match(table.stdout, new RegExp(`CI JOB: +${ci}`));
    assert.match(table.stdout, /STATUS: +pending-install \(revision 1\)/);

    const list = await helmLock(["lock-list", "-n", namespace, "-o", "json"], env);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).items.map((l: { metadata: { name: string }; holder: string }) => [
        l.metadata.name,
        l.holder,
      ]),
      [["app", status.lock.holder]],
    );
    const all = await helmLock(["lock-list", "-A"], env);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^NAMESPACE +RELEASE +HOLDER +HELD FOR +WAITING +CI JOB/);
    assert.match(all.stdout, new RegExp(`\\n${namespace} +app +${status.lock.holder} `));

    // The holder renews every 3.3 s: no unlock without --force.
    const refused = await helmLock(["lock-unlock", "app", "-n", namespace], env);
    assert.equal(refused.code, ExitCode.Internal, refused.stderr);
    assert.match(refused.stderr, /still renews .*--force removes it/);
    assert.equal((await locks(namespace)).length, 1);

    // --force removes it; the live holder notices (at its next renewal on this branch: the
    // holder does not watch its own Lease yet) and stops its helm.
    const forced = await helmLock(["lock-unlock", "app", "-n", namespace, "--force"], env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, /removed the lock helm-lock-app .* held by .* \(--force\)/);
    const lost = await holder.output();
    assert.equal(lost.code, ExitCode.LockLost, lost.stderr);
    assert.match(lost.stderr, /lost app's lock while helm ran: stopping helm with SIGTERM/);
    assert.match(lost.stderr, /deleted by someone else/);
    const after = await helmLock(["lock-status", "app", "-n", namespace, "-o", "json"], env);
    assert.equal(JSON.parse(after.stdout).lock, null);

    // A holder killed outright: its Lease stays; lock-unlock watches one lease duration,
    // sees no renewal, and removes it. The lease is long enough (6 s) that the lock is surely
    // not yet expired when lock-unlock reads it, even on a loaded machine (3 s was not).
    const dead = new LockProcess(
      [...slowUpgradeArgs("gone", namespace, { install: true }), "--lock-lease-duration", "6s"],
      env,
    );
    // helm is surely started (and a child of helm-lock) once the release is pending.
    await waitForStatus(helm.bin, "gone", namespace, env, "pending-install");
    const pids = await childPids(dead.child.pid);
    dead.child.kill("SIGKILL");
    for (const pid of pids) Deno.kill(pid, "SIGKILL");
    await dead.output();
    // The killed job's queue ticket stays until a waiter finds it dead; the lock is the point.
    assert.equal((await locks(namespace)).length, 1);
    const expired = await helmLock(["lock-unlock", "gone", "-n", namespace], env);
    assert.equal(expired.code, 0, expired.stderr);
    assert.match(expired.stderr, /watching .* for \d+s \(to its lease of 6s after its last write/);
    assert.match(expired.stderr, /removed the expired lock helm-lock-gone/);
    assert.deepEqual(await locks(namespace), []);
    const again = await helmLock(["lock-unlock", "app", "-n", namespace], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /has no lock .*: nothing to unlock/);
  });
}

Deno.test("helm-lock's own commands refuse bad command lines with exit 2", async () => {
  const env = await helmEnv();
  for (
    const [args, message] of [
      [["lock-status"], /lock-status as it takes one release name/],
      [["lock-status", "a", "b"], /takes one release name/],
      [["lock-list", "-o", "wide"], /-o "wide" is not an output format/],
      [["lock-list", "extra"], /lock-list as it takes no arguments/],
      [["lock-unlock", "app", "--frce"], /"--frce" is not one of its flags/],
      [["lock-status", "app", "-n"], /-n has no value/],
    ] as const
  ) {
    const out = await helmLock([...args], env);
    assert.equal(out.code, ExitCode.Usage, `${args.join(" ")}: ${out.stderr}`);
    assert.match(out.stderr, message);
  }
});

Deno.test("helm-lock's own command names are no command of the real helm 3 or helm 4", async () => {
  const env = await helmEnv();
  for (const helm of helms) {
    const help = await run(helm.bin, ["--help"], env);
    const commands = [...help.stdout.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1]);
    assert.ok(commands.includes("upgrade") && commands.includes("list"), help.stdout);
    for (const { name } of OWN_COMMANDS) {
      assert.ok(!commands.includes(name), `${helm.name}: ${name}`);
    }
  }
});
