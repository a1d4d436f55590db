/**
 * What helm-lock shows and stores, end to end (issue 17): no secret in its output or on its
 * Lease, none of its own names masked, the program named as it was invoked, and a namespace
 * created only where helm itself would create one. Real helm 3 and helm 4, the real API
 * server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { adminKubeConfig, createNamespace, helmEnv, helms } from "../support/cluster.ts";
import { DENO_RUN, helmLock, LockProcess } from "../support/cli.ts";
import { releaseStatus, run } from "../support/helm.ts";
import { FAST } from "../support/charts.ts";

/** Every secret the job below hands helm-lock; none may show up anywhere. */
const SECRETS = [
  "S3cretSetValue",
  "SetStringSecret",
  "RepoUserXYZ",
  "RepoPassXYZ",
  "ciuser",
  "CiPassXYZ",
];
/** In helm's --description, which Helm 4 prints itself (on stdout): not in helm-lock's lines. */
const DESCRIPTION_SECRETS = ["descuser", "DescPassXYZ"];

/**
 * A HELM_BIN that holds the user's `upgrade` until the test says go, so the Lease can be read
 * while the lock is held; helm-lock's own helm calls (history, ...) pass at once.
 */
async function gatedHelm(realHelm: string): Promise<{ bin: string; started: string; go: string }> {
  const dir = await Deno.makeTempDir({ prefix: "helm-lock-gate-" });
  const started = join(dir, "started");
  const go = join(dir, "go");
  const bin = join(dir, "helm");
  await Deno.writeTextFile(
    bin,
    `#!/bin/sh
if [ "$1" = upgrade ]; then
  : > '${started}'
  while [ ! -e '${go}' ]; do sleep 0.05; done
fi
exec '${realHelm}' "$@"
`,
  );
  await Deno.chmod(bin, 0o755);
  return { bin, started, go };
}

async function waitForFile(path: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (await Deno.stat(path).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Timed out waiting for ${path}`);
}

async function namespaceExists(name: string): Promise<boolean> {
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  try {
    await core.readNamespace({ name });
    return true;
  } catch (e) {
    if (e instanceof k8s.ApiException && e.code === 404) return false;
    throw e;
  }
}

for (const helm of helms) {
  Deno.test(`${helm.name}: no secret reaches stdout, stderr or the Lease, and no name of helm-lock's is masked`, async () => {
    const namespace = await createNamespace(`staging-${helm.name}`);
    const gate = await gatedHelm(helm.bin);
    const env = await helmEnv({
      HELM_BIN: gate.bin,
      CI_JOB_URL: "https://ciuser:CiPassXYZ@ci.example.com/job/77",
    });
    const job = new LockProcess(
      [
        "upgrade",
        "--install",
        "shop",
        FAST,
        "-n",
        namespace,
        // Values equal to helm-lock's own names and words (issue 17, item 1).
        "--set",
        `global.environment=${namespace}`,
        "--set",
        "fullnameOverride=shop",
        "--set",
        "tag=holder",
        "--set",
        "db.password=S3cretSetValue",
        "--set-string=api.key=SetStringSecret",
        "--username",
        "RepoUserXYZ",
        "--password=RepoPassXYZ",
        "--description",
        "see https://descuser:DescPassXYZ@wiki.example.com/deploys",
      ],
      env,
    );
    await waitForFile(gate.started);
    const leases = await adminKubeConfig().makeApiClient(k8s.CoordinationV1Api)
      .listNamespacedLease({ namespace });
    await Deno.writeTextFile(gate.go, "");
    const out = await job.output();
    assert.equal(out.code, 0, out.stderr);

    // The lock, the job's queue ticket and the queue's state: every field of each is checked.
    const lock = leases.items.find((l) => l.metadata?.name === "helm-lock-shop");
    assert.ok(lock, "the lock Lease was there while helm ran");
    const lease = JSON.stringify(leases.items);
    const annotations = lock.metadata?.annotations ?? {};
    assert.equal(annotations["helm-lock.dev/ci-job-url"], "https://***@ci.example.com/job/77");
    assert.match(annotations["helm-lock.dev/command"] ?? "", /--password=\*\*\* /);
    for (const secret of SECRETS) {
      for (const [where, text] of [["stdout", out.stdout], ["stderr", out.stderr]]) {
        assert.ok(!text!.includes(secret), `${secret} in ${where}: ${text}`);
      }
      assert.ok(!lease.includes(secret), `${secret} on the Lease: ${lease}`);
    }
    for (const secret of DESCRIPTION_SECRETS) {
      assert.ok(!out.stderr.includes(secret), `${secret} in stderr: ${out.stderr}`);
      assert.ok(!lease.includes(secret), `${secret} on the Lease: ${lease}`);
    }
    assert.match(out.stderr, /--description 'see https:\/\/\*\*\*@wiki\.example\.com\/deploys'/);
    assert.match(
      out.stderr,
      new RegExp(`acquired lock helm-lock-shop in namespace "${namespace}"`),
    );
    assert.match(
      out.stderr,
      new RegExp(`released lock helm-lock-shop in namespace "${namespace}"`),
    );
    assert.match(
      out.stderr,
      new RegExp(`running helm upgrade --install shop \\S+ -n ${namespace} `),
    );
    assert.doesNotMatch(out.stderr, /helm-lock-\*\*\*|namespace "\*\*\*"|-n \*\*\*/);
    assert.equal((await releaseStatus(helm.bin, "shop", namespace, env))?.status, "deployed");

    // `--set tag=holder` must not turn `holder identity` into `*** identity`. (--debug
    // makes helm print the values itself, hence a job of its own without secrets.)
    const debug = await helmLock(
      ["upgrade", "shop", FAST, "-n", namespace, "--set", "tag=holder", "--debug"],
      { ...env, HELM_BIN: helm.bin },
    );
    assert.equal(debug.code, 0, debug.stderr);
    assert.match(debug.stderr, /^helm-lock: \[debug\] holder identity \S+-\d+-[0-9a-f]+$/m);
    assert.doesNotMatch(debug.stderr, /\*\*\* identity/);
  });

  Deno.test(`${helm.name}: upgrade --create-namespace without --install leaves no namespace behind`, async () => {
    const env = await helmEnv({ HELM_BIN: helm.bin });
    const missing = `no-install-${helm.name}-${crypto.randomUUID().slice(0, 8)}`;
    const out = await helmLock(
      ["upgrade", "--create-namespace", "-n", missing, "rel", FAST, "--lock-timeout", "5s"],
      env,
    );
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, new RegExp(`namespace "${missing}" does not exist`));
    assert.doesNotMatch(out.stderr, /created namespace|pass --create-namespace/);
    assert.equal(await namespaceExists(missing), false);
    // Plain helm, for comparison, creates nothing either.
    const plain = await run(
      helm.bin,
      ["upgrade", "--create-namespace", "-n", missing, "rel", FAST],
      env,
    );
    assert.notEqual(plain.code, 0);
    assert.equal(await namespaceExists(missing), false);

    // With --install, helm would create it, and so does helm-lock (to hold its Lease there).
    const install = await helmLock(
      ["upgrade", "--install", "--create-namespace", "-n", missing, "rel", FAST],
      env,
    );
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stderr, /created namespace/);
    assert.equal((await releaseStatus(helm.bin, "rel", missing, env))?.status, "deployed");
  });

  Deno.test(`${helm.name}: messages name the program as invoked: helm lock as a plugin, helm-lock alone`, async () => {
    const env = await helmEnv({ HELM_BIN: helm.bin });
    const standalone = await helmLock(["upgrade", "--wait"], env);
    assert.equal(standalone.code, 2, standalone.stderr);
    assert.match(
      standalone.stderr,
      /expected "helm-lock upgrade <release> <chart>", found "helm-lock upgrade --wait"/,
    );

    // A plugin named "lock" that runs this checkout's main.ts, installed into a helm home.
    const dir = await Deno.makeTempDir({ prefix: "helm-lock-plugin-" });
    const plugin = join(dir, "lock");
    await Deno.mkdir(plugin);
    await Deno.writeTextFile(
      join(plugin, "plugin.yaml"),
      `name: "lock"\nversion: "0.0.0"\nusage: "test"\ndescription: "test"\n` +
        `command: "$HELM_PLUGIN_DIR/run"\n`,
    );
    const quoted = [Deno.execPath(), ...DENO_RUN].map((a) => `'${a}'`).join(" ");
    await Deno.writeTextFile(join(plugin, "run"), `#!/bin/sh\nexec ${quoted} "$@"\n`);
    await Deno.chmod(join(plugin, "run"), 0o755);
    const home = { ...env, HELM_PLUGINS: join(env.HELM_DATA_HOME!, "plugins") };
    const install = await run(helm.bin, ["plugin", "install", plugin], home);
    assert.equal(install.code, 0, install.stderr);
    const asPlugin = await run(helm.bin, ["lock", "upgrade", "--wait"], home);
    assert.equal(asPlugin.code, 2, asPlugin.stderr);
    assert.match(
      asPlugin.stderr,
      /expected "helm lock upgrade <release> <chart>", found "helm lock upgrade --wait"/,
    );
  });
}
