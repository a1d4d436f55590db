/**
 * `readRelease` and `recover` against the real API server with real Helm 3 and Helm 4: every
 * state of DESIGN §3 is produced the way it happens in CI (a killed helm, a manifest the API
 * server rejects), then read, planned for and recovered.
 */
import assert from "node:assert/strict";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { helmCapture, helmSpawn } from "../../lib/helm/exec.ts";
import {
  adminKubeconfig,
  createNamespace,
  helmEnv,
  helms,
  kubeClientFor,
  mintUser,
} from "../support/cluster.ts";
import { FAST, SHAPES, SLOW, slowUpgradeArgs } from "../support/charts.ts";
import { killWhen, releaseStatus, run, startStuckUpgrade, waitForStatus } from "../support/helm.ts";
import { recoverAs, type RecoveryCase } from "../support/recovery.ts";
import { shellScript } from "../support/temp.ts";
import { readRelease } from "../../lib/helm/storage.ts";

/** A fresh namespace and helm environment (with `HELM_BIN`) for one case. */
async function setup(bin: string, prefix: string) {
  const namespace = await createNamespace(prefix);
  const env = { ...await helmEnv(), HELM_BIN: bin };
  const helm = async (...args: string[]) => {
    const out = await run(bin, [...args, "-n", namespace], env);
    assert.equal(out.code, 0, `helm ${args.join(" ")}: ${out.stderr}`);
    return out;
  };
  /** recover() of release "app" for `cmd`, helm-lock's API calls as the admin. */
  const recovery = (cmd: Omit<RecoveryCase, "release">, helmEnv: Record<string, string> = env) =>
    recoverAs({ ...cmd, release: "app" }, namespace, kubeClientFor(), helmEnv);
  /**
   * recover() with a helm that refuses rollbacks, helm-lock without the records (a driver such as
   * sql; helm itself keeps using Secrets): rejects with exit 5 from `state`, naming the rollback.
   */
  const refusedRollback = async (
    cmd: Omit<RecoveryCase, "release">,
    state: string,
    toRevision: number,
  ): Promise<HelmLockError> => {
    const refusing = { ...env, HELM_BIN: await refusingRollback, REAL_HELM: bin };
    const err = await withEnv(
      { HELM_DRIVER: "sql" },
      () => recovery(cmd, { ...refusing, HELM_DRIVER: "secret" }),
    ).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof HelmLockError && err.code === ExitCode.RecoveryFailed, String(err));
    assert.ok(
      err.message.startsWith(
        `Cannot recover release "app" in namespace "${namespace}" from state ${state}: ` +
          `"helm rollback" to revision ${toRevision} failed: `,
      ),
      err.message,
    );
    return err;
  };
  return {
    namespace,
    env,
    helm,
    recovery,
    refusedRollback,
    globalArgs: ["-n", namespace],
    opts: { namespace, env },
  };
}

const upgrade = { command: "upgrade", install: false };

/**
 * A helm whose `rollback` fails before it writes anything (as helm refusing a revision it does
 * not have); every other command runs `$REAL_HELM`.
 */
const refusingRollback = shellScript(
  '[ "$1" = rollback ] && { echo "Error: rollback refused by the test" >&2; exit 1; }\n' +
    'exec "$REAL_HELM" "$@"\n',
);

function statuses(history: { status: string }[]): string[] {
  return history.map((r) => r.status);
}

for (const { name, bin } of helms) {
  Deno.test(`${name}: readRelease() finds no release`, async () => {
    const { globalArgs, opts } = await setup(bin, `rel-none-${name}`);
    assert.deepEqual(await readRelease("absent", globalArgs, opts), { found: false, history: [] });
  });

  Deno.test(`${name}: readRelease() reads a deployed release and recover() proceeds`, async () => {
    const { namespace, helm, recovery, globalArgs, opts } = await setup(
      bin,
      `rel-deployed-${name}`,
    );
    await helm("install", "app", FAST);
    await helm("upgrade", "app", FAST, "--set", "tag=v2");
    const state = await readRelease("app", globalArgs, opts);
    assert.equal(state.found, true);
    assert.deepEqual(
      state.history.map((r) => [r.revision, r.status, r.description]),
      [[1, "superseded", "Install complete"], [2, "deployed", "Upgrade complete"]],
    );
    assert.deepEqual(state.current, state.history[1]);
    assert.match(state.current?.updated ?? "", /^\d{4}-\d\d-\d\dT/);
    assert.deepEqual(await recovery(upgrade), {
      lines: [`release "app" in namespace "${namespace}" is deployed at revision 2`],
      events: [],
    });
  });

  Deno.test(`${name}: a killed upgrade is pending-upgrade and a rollback lets plain helm upgrade again`, async () => {
    const { namespace, env, helm, recovery, globalArgs, opts } = await setup(
      bin,
      `rel-pending-up-${name}`,
    );
    await helm("install", "app", SLOW);
    const child = await startStuckUpgrade(bin, "app", namespace, env, "pending-upgrade");
    child.kill("SIGKILL");
    await child.status;

    const state = await readRelease("app", globalArgs, opts);
    assert.deepEqual(statuses(state.history), ["deployed", "pending-upgrade"]);
    assert.equal(state.current?.revision, 2);

    const { lines } = await recovery(upgrade);
    assert.deepEqual(lines, [
      `release "app" in namespace "${namespace}" is pending-upgrade at revision 2; the last good revision is 1`,
      `rolled back release "app" in namespace "${namespace}" to revision 1`,
    ]);
    // No --wait on the rollback: it returns although the Deployment never becomes ready.
    assert.deepEqual(await releaseStatus(bin, "app", namespace, env), {
      status: "deployed",
      revision: 3,
    });
    await helm("upgrade", "app", SLOW, "--set", "tag=v3");
    assert.deepEqual(await releaseStatus(bin, "app", namespace, env), {
      status: "deployed",
      revision: 4,
    });
    // helm keeps the killed revision pending-upgrade; the state is the newest revision.
    const after = await readRelease("app", globalArgs, opts);
    assert.deepEqual(statuses(after.history), [
      "superseded",
      "pending-upgrade",
      "superseded",
      "deployed",
    ]);
    assert.deepEqual(await recovery(upgrade), {
      lines: [`release "app" in namespace "${namespace}" is deployed at revision 4`],
      events: [],
    });
  });

  Deno.test(`${name}: a killed first install is pending-install, uninstalled for --install only`, async () => {
    const { namespace, env, helm, recovery, globalArgs, opts } = await setup(
      bin,
      `rel-pending-in-${name}`,
    );
    const child = await startStuckUpgrade(bin, "app", namespace, env, "pending-install");
    child.kill("SIGKILL");
    await child.status;

    const state = await readRelease("app", globalArgs, opts);
    assert.deepEqual(state.history.map((r) => [r.revision, r.status]), [[1, "pending-install"]]);
    // Refused with the recovery exit code for a plain upgrade.
    await assert.rejects(
      recovery(upgrade),
      (e: unknown) =>
        e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed &&
        /pending-install.*--install/.test(e.message),
    );

    const { lines } = await recovery({ command: "upgrade", install: true });
    assert.equal(lines[1], `uninstalled the stale release "app" in namespace "${namespace}"`);
    assert.deepEqual(await readRelease("app", globalArgs, opts), { found: false, history: [] });

    await helm("upgrade", "--install", "app", SLOW);
    assert.deepEqual(await releaseStatus(bin, "app", namespace, env), {
      status: "deployed",
      revision: 1,
    });
  });

  Deno.test(`${name}: a failed upgrade is left to helm, which upgrades it`, async () => {
    const { namespace, env, helm, recovery, globalArgs, opts } = await setup(
      bin,
      `rel-failed-${name}`,
    );
    await helm("install", "app", FAST);
    await helm("upgrade", "app", FAST, "--set", "tag=v2");
    const bad = await run(
      bin,
      ["upgrade", "app", FAST, "-n", namespace, "--set", "broken=true"],
      env,
    );
    assert.notEqual(bad.code, 0);

    const state = await readRelease("app", globalArgs, opts);
    assert.deepEqual(statuses(state.history), ["superseded", "deployed", "failed"]);
    for (const install of [false, true]) {
      assert.deepEqual(await recovery({ command: "upgrade", install }), {
        lines: [
          `release "app" in namespace "${namespace}" is failed at revision 3, which does not ` +
          "block helm upgrade",
        ],
        events: [],
      });
    }
    await helm("upgrade", "app", FAST, "--set", "tag=v3");
    assert.deepEqual(statuses((await readRelease("app", globalArgs, opts)).history), [
      "superseded",
      "superseded",
      "failed",
      "deployed",
    ]);
  });

  Deno.test(`${name}: a failed first install is uninstalled, then installs`, async () => {
    const { namespace, env, helm, recovery, globalArgs, opts } = await setup(
      bin,
      `rel-failed-1st-${name}`,
    );
    const bad = await run(
      bin,
      ["install", "app", FAST, "-n", namespace, "--set", "fail=true"],
      env,
    );
    assert.notEqual(bad.code, 0);

    const state = await readRelease("app", globalArgs, opts);
    assert.deepEqual(state.history.map((r) => [r.revision, r.status]), [[1, "failed"]]);
    const { lines } = await recovery({ command: "install", install: false });
    assert.equal(lines[1], `uninstalled the stale release "app" in namespace "${namespace}"`);
    await helm("install", "app", FAST);
    assert.deepEqual(await releaseStatus(bin, "app", namespace, env), {
      status: "deployed",
      revision: 1,
    });
  });

  Deno.test(`${name}: a rollback that leaves the release pending is unlocked, or exit 5 without the records`, async () => {
    // A rollback that fails before helm writes anything (here a helm that refuses every
    // rollback) leaves the release pending-upgrade: only an unlock in helm's storage lets helm
    // proceed.
    const { namespace, env, recovery, refusedRollback } = await setup(bin, `rel-rb-fail-${name}`);
    assert.equal((await run(bin, ["install", "app", SHAPES, "-n", namespace], env)).code, 0);
    await killWhen(
      bin,
      ["upgrade", "app", SHAPES, "--set", "hangAt=pre-upgrade"],
      env,
      "app",
      namespace,
      "pending-upgrade",
    );
    const refusing = { ...env, HELM_BIN: await refusingRollback, REAL_HELM: bin };
    // Without the records: exit 5 naming the state and helm's error, on one line.
    const err = await refusedRollback(upgrade, '"pending-upgrade" at revision 2', 1);
    assert.ok(
      err.message.endsWith(
        `; helm-lock unlocks a stale revision only in the "secret" and "configmap" storage ` +
          `drivers`,
      ) && !err.message.includes("\n"),
      err.message,
    );
    assert.equal((await releaseStatus(bin, "app", namespace, env))?.status, "pending-upgrade");

    const { lines } = await recovery(upgrade, refusing);
    assert.equal(lines.length, 2);
    assert.match(
      lines[1]!,
      /^could not roll back to revision 1 \(helm: .+\); marked the stale pending-upgrade revision 2 failed in helm's storage, so helm can proceed$/,
    );
    assert.deepEqual(await releaseStatus(bin, "app", namespace, env), {
      status: "failed",
      revision: 2,
    });
    const upgraded = await run(bin, ["upgrade", "app", SHAPES, "-n", namespace], env);
    assert.equal(upgraded.code, 0, upgraded.stderr);
  });

  Deno.test(`${name}: a rollback that fails the way of helm/helm#13437 ends pending and proceeds`, async () => {
    // helm's failed rollback is recorded and already ends the pending state, so helm-lock
    // proceeds without touching the records (which it has).
    const { namespace, env, recovery } = await setup(bin, `rel-rb-13437-${name}`);
    assert.equal((await run(bin, ["install", "app", SHAPES, "-n", namespace], env)).code, 0);
    await killWhen(
      bin,
      ["upgrade", "app", SHAPES, "--set", "name=renamed,hangAt=pre-upgrade"],
      env,
      "app",
      namespace,
      "pending-upgrade",
    );
    const { lines } = await recovery(upgrade);
    assert.match(
      lines[1] ?? "",
      /^could not roll back to revision 1 \(helm: .*app-config.*\); release "app" in namespace "[^"]+" is now failed at revision 3, which does not block helm: proceeding$/,
    );
    const upgraded = await run(
      bin,
      ["upgrade", "app", SHAPES, "-n", namespace, "--set", "name=renamed"],
      env,
    );
    assert.equal(upgraded.code, 0, upgraded.stderr);
  });

  Deno.test(`${name}: readRelease() maps a forbidden or unreachable cluster to their exit codes`, async () => {
    const { namespace, env, globalArgs } = await setup(bin, `rel-denied-${name}`);
    const kubeconfig = await mintUser({
      name: "no-secrets",
      namespace,
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }],
    });
    await assert.rejects(
      readRelease("app", globalArgs, { namespace, env: { ...env, KUBECONFIG: kubeconfig } }),
      (e: unknown) =>
        e instanceof HelmLockError && e.code === ExitCode.Forbidden &&
        /secrets is forbidden: User "[^"]*no-secrets" cannot list resource "secrets"/.test(
          e.message,
        ),
    );
    await assert.rejects(
      readRelease("app", [...globalArgs, "--kube-apiserver", "https://127.0.0.1:1"], {
        namespace,
        env,
      }),
      (e: unknown) =>
        e instanceof HelmLockError && e.code === ExitCode.Unreachable &&
        /cluster unreachable/i.test(e.message),
    );
  });
}

/**
 * A chart whose pre-rollback and pre-delete hook Job never completes (no controllers run on
 * the test control plane), so `helm rollback` and `helm uninstall` stay mid-operation.
 */
async function hooksChart(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "helm-lock-hooks-chart-" });
  await Deno.mkdir(`${dir}/templates`);
  await Deno.writeTextFile(`${dir}/Chart.yaml`, "apiVersion: v2\nname: hooks\nversion: 0.1.0\n");
  await Deno.writeTextFile(
    `${dir}/templates/all.yaml`,
    `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  tag: {{ .Values.tag | default "v1" | quote }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-hook
  annotations:
    helm.sh/hook: pre-rollback,pre-delete
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: hook
          image: example.invalid/never-pulled:v1
`,
  );
  return dir;
}

for (const { name, bin } of helms) {
  Deno.test(`${name}: readRelease() sees a killed rollback and a killed uninstall`, async () => {
    const { namespace, env, helm, recovery, refusedRollback, globalArgs, opts } = await setup(
      bin,
      `rel-hooks-${name}`,
    );
    const chart = await hooksChart();
    await helm("install", "app", chart);
    await helm("upgrade", "app", chart, "--set", "tag=v2");

    await killWhen(bin, ["rollback", "app", "1"], env, "app", namespace, "pending-rollback");
    const rolling = await readRelease("app", globalArgs, opts);
    assert.deepEqual(statuses(rolling.history), ["superseded", "deployed", "pending-rollback"]);
    // recover() rolls back to revision 2, here with a helm that refuses (the chart's hook would
    // hold a real rollback) and without the records, so that the release stays as it is.
    await refusedRollback(upgrade, '"pending-rollback" at revision 3', 2);

    // helm uninstall marks the newest revision, pending or not, uninstalling.
    await killWhen(bin, ["uninstall", "app"], env, "app", namespace, "uninstalling");
    const removing = await readRelease("app", globalArgs, opts);
    assert.deepEqual(statuses(removing.history), ["superseded", "deployed", "uninstalling"]);
    for (const install of [false, true]) {
      await assert.rejects(
        recovery({ command: "upgrade", install }),
        (e: unknown) =>
          e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed &&
          /is stuck in state "uninstalling"/.test(e.message),
      );
    }
  });
}

/**
 * Runs `fn` with `vars` set in helm-lock's own environment (`HELM_BIN` as the plugin system
 * sets it).
 */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.keys(vars).map((name) => [name, Deno.env.get(name)] as const);
  for (const [name, value] of Object.entries(vars)) Deno.env.set(name, value);
  try {
    return await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
}

for (const { name, bin } of helms) {
  Deno.test(`${name}: helmSpawn() forwards SIGTERM and helm marks the release failed, not pending`, async () => {
    const { namespace, env, helm } = await setup(bin, `exec-term-${name}`);
    await helm("install", "app", SLOW);
    // The spawned helm inherits our environment, so point it at the test cluster.
    const savedKubeconfig = Deno.env.get("KUBECONFIG");
    Deno.env.set("KUBECONFIG", adminKubeconfig());
    try {
      const child = await withEnv(
        { HELM_BIN: bin },
        () => Promise.resolve(helmSpawn([...slowUpgradeArgs("app", namespace), "--set", "tag=v2"])),
      );
      await waitForStatus(bin, "app", namespace, env, "pending-upgrade");
      child.kill("SIGTERM");
      const status = await child.status;
      assert.notEqual(status.code, 0);
      child.kill("SIGTERM"); // helm has exited: a no-op, not an error
    } finally {
      if (savedKubeconfig === undefined) Deno.env.delete("KUBECONFIG");
      else Deno.env.set("KUBECONFIG", savedKubeconfig);
    }
    assert.deepEqual(await releaseStatus(bin, "app", namespace, env), {
      status: "failed",
      revision: 2,
    });
  });
}

Deno.test("helmSpawn() and helmCapture() name a helm that cannot be started and $HELM_BIN", async () => {
  const missing = "/nonexistent/helm";
  const isSpawnError = (e: unknown) =>
    e instanceof HelmLockError && e.code === ExitCode.HelmNotFound &&
    e.message === `Cannot run helm as "${missing}": it was not found; install helm or set ` +
        "$HELM_BIN to its path";
  await withEnv({ HELM_BIN: missing }, () => {
    assert.throws(() => helmSpawn(["version"]), isSpawnError);
    return Promise.resolve();
  });
  await assert.rejects(helmCapture(["version"], { env: { HELM_BIN: missing } }), isSpawnError);
});

Deno.test("helmCapture() returns helm's exit code and output", async () => {
  const [helm3] = helms;
  assert(helm3);
  const out = await helmCapture(["version", "--short"], { env: { HELM_BIN: helm3.bin } });
  assert.equal(out.code, 0);
  assert.match(out.stdout, /^v3\.17\.2/);
  const bad = await helmCapture(["no-such-command"], { env: { HELM_BIN: helm3.bin } });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown command "no-such-command"/);
});
