/**
 * helm's release records read and edited without helm (`lib/helm/storage.ts`), checked
 * against the records real Helm 3 and Helm 4 write with the `secret` and `configmap` drivers:
 * the state read from the records agrees with `helm history` in every state, and a stale
 * pending revision marked failed is one helm reads and upgrades from.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import {
  kubeRecords,
  markFailed,
  readRelease,
  type StorageDriver,
} from "../../lib/helm/storage.ts";
import {
  adminKubeConfig,
  createNamespace,
  helmEnv,
  helms,
  kubeClientFor,
} from "../support/cluster.ts";
import { SHAPES } from "../support/charts.ts";
import { killWhen, releaseStatus, run } from "../support/helm.ts";
import { helmRecordJson } from "../support/release_records.ts";

const DRIVERS: StorageDriver[] = ["secret", "configmap"];

/** helm's name of the record of revision 2 of release "app", in both drivers. */
const APP_V2 = "sh.helm.release.v1.app.v2";

/** Runs `fn` for both drivers at once: the cases mostly wait for helm and the API server. */
function eachDriver(fn: (driver: StorageDriver) => Promise<void>): Promise<void> {
  return Promise.all(DRIVERS.map(fn)).then(() => {});
}

for (const { name, bin } of helms) {
  Deno.test(`${name}: readRelease() from the records agrees with helm history in every state`, () =>
    eachDriver(async (driver) => {
      const namespace = await createNamespace(`store-${name}-${driver}`);
      const env = { ...await helmEnv({ HELM_DRIVER: driver }), HELM_BIN: bin };
      const helm = async (...args: string[]) => {
        const out = await run(bin, [...args, "-n", namespace], env);
        assert.equal(out.code, 0, `helm ${args.join(" ")}: ${out.stderr}`);
      };
      const kill = (rel: string, status: string, ...args: string[]) =>
        killWhen(bin, args, env, rel, namespace, status);
      // One release per state, made in parallel.
      const made: Record<string, () => Promise<unknown>> = {
        many: async () => {
          await helm("install", "many", SHAPES);
          for (let i = 2; i <= 7; i++) {
            await helm("upgrade", "many", SHAPES, "--set", `tag=v${i}`, "--history-max", "4");
          }
        },
        failed: async () => {
          await helm("install", "failed", SHAPES);
          const bad = await run(
            bin,
            ["upgrade", "failed", SHAPES, "-n", namespace, "--set", "reject=true"],
            env,
          );
          assert.notEqual(bad.code, 0);
        },
        "pending-upgrade": async () => {
          await helm("install", "pending-upgrade", SHAPES);
          await kill(
            "pending-upgrade",
            "pending-upgrade",
            "upgrade",
            "pending-upgrade",
            SHAPES,
            "--set",
            "hangAt=pre-upgrade",
          );
        },
        "pending-install": () =>
          kill(
            "pending-install",
            "pending-install",
            "install",
            "pending-install",
            SHAPES,
            "--set",
            "hangAt=pre-install",
          ),
        "pending-rollback": async () => {
          await helm("install", "pending-rollback", SHAPES, "--set", "hangAt=pre-rollback");
          await helm("upgrade", "pending-rollback", SHAPES, "--set", "tag=v2");
          await kill("pending-rollback", "pending-rollback", "rollback", "pending-rollback", "1");
        },
        uninstalling: async () => {
          await helm("install", "uninstalling", SHAPES, "--set", "hangAt=pre-delete");
          await kill("uninstalling", "uninstalling", "uninstall", "uninstalling");
        },
        uninstalled: async () => {
          await helm("install", "uninstalled", SHAPES);
          await helm("uninstall", "uninstalled", "--keep-history");
        },
      };
      await Promise.all(Object.values(made).map((f) => f()));

      const records = kubeRecords(kubeClientFor(), namespace, driver);
      const opts = { namespace, env };
      const expected: Record<string, string[]> = {
        many: ["4:superseded", "5:superseded", "6:superseded", "7:deployed"],
        failed: ["1:deployed", "2:failed"],
        "pending-upgrade": ["1:deployed", "2:pending-upgrade"],
        "pending-install": ["1:pending-install"],
        "pending-rollback": ["1:superseded", "2:deployed", "3:pending-rollback"],
        uninstalling: ["1:uninstalling"],
        uninstalled: ["1:uninstalled"],
        absent: [],
      };
      for (const [release, want] of Object.entries(expected)) {
        const fromHelm = await readRelease(release, ["-n", namespace], opts);
        const fromRecords = await readRelease(release, ["-n", namespace], { ...opts, records });
        const short = (s: typeof fromHelm) => s.history.map((r) => `${r.revision}:${r.status}`);
        assert.deepEqual(short(fromHelm), want, `${driver}: ${release} from helm history`);
        assert.deepEqual(short(fromRecords), want, `${driver}: ${release} from the records`);
        // Read from the records indeed: there is no helm to fall back to.
        const noHelm = { ...opts, records, env: { ...env, HELM_BIN: "/nonexistent/helm" } };
        assert.deepEqual(short(await readRelease(release, ["-n", namespace], noHelm)), want);
        assert.equal(fromRecords.found, fromHelm.found);
        assert.deepEqual(fromRecords.current?.status, fromHelm.current?.status);
      }
    }));

  Deno.test(`${name}: markFailed() unlocks a killed upgrade so that plain helm upgrades again`, () =>
    eachDriver(async (driver) => {
      const namespace = await createNamespace(`unlock-${name}-${driver}`);
      const env = { ...await helmEnv({ HELM_DRIVER: driver }), HELM_BIN: bin };
      assert.equal((await run(bin, ["install", "app", SHAPES, "-n", namespace], env)).code, 0);
      await killWhen(
        bin,
        ["upgrade", "app", SHAPES, "--set", "hangAt=pre-upgrade", "--set", "big=9007199254740993"],
        env,
        "app",
        namespace,
        "pending-upgrade",
      );
      const blocked = await run(bin, ["upgrade", "app", SHAPES, "-n", namespace], env);
      assert.match(
        blocked.stderr,
        /another operation \(install\/upgrade\/rollback\) is in progress/,
      );

      const records = kubeRecords(kubeClientFor(), namespace, driver);
      const before = await records.read(APP_V2);
      assert(before);
      // Only the status moves; a number no JavaScript number holds survives byte for byte.
      assert.match(await helmRecordJson(before.release), /"big":9007199254740993/);
      await markFailed(records, "app", 2, "pending-upgrade");
      const after = await records.read(APP_V2);
      assert(after);
      assert.equal(after.labels.status, "failed");
      const json = await helmRecordJson(after.release);
      assert.match(json, /"big":9007199254740993/);
      assert.equal(
        json,
        (await helmRecordJson(before.release))
          .replace(
            /"description":"[^"]*"/,
            () =>
              `"description":"Release unlocked by helm-lock from stale 'pending-upgrade' state"`,
          )
          .replace(/"status":"pending-upgrade"/, `"status":"failed"`),
      );

      const hist = await run(bin, ["history", "app", "-n", namespace, "-o", "json"], env);
      assert.deepEqual(
        (JSON.parse(hist.stdout) as Array<{ status: string; description: string }>).map((r) => [
          r.status,
          r.description,
        ]),
        [
          ["deployed", "Install complete"],
          ["failed", "Release unlocked by helm-lock from stale 'pending-upgrade' state"],
        ],
      );
      const upgraded = await run(bin, [
        "upgrade",
        "app",
        SHAPES,
        "-n",
        namespace,
        "--set",
        "tag=v3",
      ], env);
      assert.equal(upgraded.code, 0, upgraded.stderr);
      assert.deepEqual(await releaseStatus(bin, "app", namespace, env), {
        status: "deployed",
        revision: 3,
      });
      // helm leaves a failed revision failed; it is no longer pending, so a second unlock is
      // refused and writes nothing.
      await assert.rejects(
        markFailed(records, "app", 2, "pending-upgrade"),
        (e: unknown) =>
          e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed &&
          e.message === 'Cannot mark revision 2 of release "app" failed: expected it ' +
              "pending-upgrade, found failed",
      );
    }));

  Deno.test(`${name}: markFailed() writes nothing when the record changed since it was read`, () =>
    eachDriver(async (driver) => {
      const namespace = await createNamespace(`unlock-race-${name}-${driver}`);
      const env = { ...await helmEnv({ HELM_DRIVER: driver }), HELM_BIN: bin };
      await killWhen(
        bin,
        ["install", "app", SHAPES, "--set", "hangAt=pre-install"],
        env,
        "app",
        namespace,
        "pending-install",
      );
      const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
      const records = kubeRecords(kubeClientFor(), namespace, driver);
      // Another writer changes the record between our read and our replace.
      const racing = {
        ...records,
        read: async (n: string) => {
          const r = await records.read(n);
          const patch = { metadata: { annotations: { touched: "yes" } } };
          const body = { name: n, namespace, body: patch };
          if (driver === "secret") {
            await core.patchNamespacedSecret(
              body,
              k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
            );
          } else {await core.patchNamespacedConfigMap(
              body,
              k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
            );}
          return r;
        },
      };
      await assert.rejects(
        markFailed(racing, "app", 1, "pending-install"),
        (e: unknown) =>
          e instanceof HelmLockError && e.code === ExitCode.RecoveryFailed &&
          /found it changed by another writer/.test(e.message),
      );
      assert.equal((await releaseStatus(bin, "app", namespace, env))?.status, "pending-install");
    }));
}
