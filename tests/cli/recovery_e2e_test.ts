/**
 * Recovery never turns a deploy plain helm would complete into a failure (issue 11): for
 * each stuck or failed state, made by real Helm 3 and Helm 4 with the `secret` and
 * `configmap` drivers, `helm lock upgrade` exits 0 and the release ends `deployed` with the
 * user's values. The cases of one helm run in parallel, each in its namespace.
 *
 * And it never leaves behind what `helm rollback` would have removed (issue 27): from a
 * pending upgrade, `helm lock upgrade` leaves the cluster as `helm rollback` to the last good
 * revision and then `helm upgrade` leave it, measured side by side in two namespaces.
 */
import assert from "node:assert/strict";
import { createNamespace, helmEnv, helms, kubeClientFor } from "../support/cluster.ts";
import { SHAPES } from "../support/charts.ts";
import { history, killAt, killWhen, releaseStatus, run, waitFor } from "../support/helm.ts";
import { helmLock } from "../support/cli.ts";

interface Case {
  /** Brings the release `app` into the state to recover from. */
  make(helm: (...args: string[]) => Promise<number>, kill: Kill): Promise<void>;
  /** The user's command after `upgrade app SHAPES`. */
  args: string[];
  /** What helm-lock says it found and did. */
  lines: RegExp[];
  /** The history afterwards, `revision:status`. */
  history: string[];
}

type Kill = (status: string, ...args: string[]) => Promise<void>;

const CASES: Record<string, Case> = {
  "failed upgrade that added a resource": {
    make: async (helm) => {
      assert.equal(await helm("install", "app", SHAPES), 0);
      assert.notEqual(await helm("upgrade", "app", SHAPES, "--set", "extra=true,reject=true"), 0);
    },
    args: ["--set", "extra=true,tag=v9"],
    lines: [/is failed at revision 2, which does not block helm upgrade$/],
    history: ["1:superseded", "2:failed", "3:deployed"],
  },
  "failed upgrade that renamed a resource": {
    make: async (helm) => {
      assert.equal(await helm("install", "app", SHAPES), 0);
      assert.notEqual(
        await helm("upgrade", "app", SHAPES, "--set", "name=renamed,reject=true"),
        0,
      );
    },
    args: ["--set", "name=renamed,tag=v9"],
    lines: [/is failed at revision 2, which does not block helm upgrade$/],
    history: ["1:superseded", "2:failed", "3:deployed"],
  },
  "pending-upgrade left by a killed upgrade that renamed a resource": {
    make: async (helm, kill) => {
      assert.equal(await helm("install", "app", SHAPES), 0);
      await kill(
        "pending-upgrade",
        "upgrade",
        "app",
        SHAPES,
        "--set",
        "name=renamed,hangAt=pre-upgrade",
      );
    },
    args: ["--set", "name=renamed,tag=v9"],
    lines: [
      /is pending-upgrade at revision 2; the last good revision is 1$/,
      // helm/helm#13437: app-config is still there, and revision 2 does not list it.
      /could not roll back to revision 1 \(helm: .*app-config.*\); release "app" in namespace "[^"]+" is now failed at revision 3, which does not block helm: proceeding$/,
    ],
    // helm's failed rollback (3) already ended the pending state, as it does by hand.
    history: ["1:superseded", "2:superseded", "3:failed", "4:deployed"],
  },
  "pending-rollback": {
    make: async (helm, kill) => {
      assert.equal(await helm("install", "app", SHAPES, "--set", "hangAt=pre-rollback"), 0);
      assert.equal(await helm("upgrade", "app", SHAPES, "--set", "tag=v2"), 0);
      await kill("pending-rollback", "rollback", "app", "1");
    },
    args: ["--set", "tag=v9"],
    lines: [
      /is pending-rollback at revision 3; the last good revision is 2$/,
      /rolled back release "app" in namespace "[^"]+" to revision 2$/,
    ],
    history: ["1:superseded", "2:superseded", "3:pending-rollback", "4:superseded", "5:deployed"],
  },
  "pending-install": {
    make: (_helm, kill) =>
      kill("pending-install", "install", "app", SHAPES, "--set", "hangAt=pre-install"),
    args: ["--install", "--set", "tag=v9"],
    lines: [
      /is pending-install at revision 1 with no good revision to roll back to$/,
      /uninstalled the stale release "app"/,
    ],
    history: ["1:deployed"],
  },
  "failed first install with --install": {
    make: async (helm) => {
      assert.notEqual(await helm("install", "app", SHAPES, "--set", "reject=true"), 0);
    },
    args: ["--install", "--set", "tag=v9"],
    lines: [
      /is failed at revision 1 with no good revision to roll back to$/,
      /uninstalled the stale release "app"/,
    ],
    history: ["1:deployed"],
  },
};

let last: Promise<unknown> = Promise.resolve();
/**
 * Runs `fn` after every earlier call has settled. The states are made in parallel (mostly
 * waiting), but a dozen helm-lock processes starting at once on a 2-core machine starve each
 * other past the lock's request timeouts.
 */
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const run = last.then(fn, fn);
  last = run.catch(() => {});
  return run;
}

for (const { name, bin } of helms) {
  Deno.test(`${name}: helm lock upgrade deploys the user's values from every stuck or failed state`, async () => {
    const runs = ["secret", "configmap"].flatMap((driver) =>
      Object.entries(CASES).map(([what, c]) => ({ driver, what: `${driver}: ${what}`, c }))
    );
    await Promise.all(runs.map(async ({ driver, what, c }) => {
      const env = { ...await helmEnv({ HELM_DRIVER: driver }), HELM_BIN: bin };
      const namespace = await createNamespace(`recover-${name}-${driver}`);
      const helm = async (...args: string[]) =>
        (await run(bin, [...args, "-n", namespace], env)).code;
      const kill: Kill = (status, ...args) => killWhen(bin, args, env, "app", namespace, status);
      await c.make(helm, kill);

      const out = await oneAtATime(() =>
        helmLock(["upgrade", "app", SHAPES, "-n", namespace, ...c.args], env)
      );
      assert.equal(out.code, 0, `${what}: ${out.stderr}`);
      const said = out.stderr.split("\n");
      for (const re of c.lines) {
        assert.ok(said.some((l) => re.test(l)), `${what}: no line matches ${re}:\n${out.stderr}`);
      }
      assert.deepEqual(await history(bin, "app", namespace, env), c.history, what);
      assert.equal((await releaseStatus(bin, "app", namespace, env))?.status, "deployed", what);
      const values = await run(bin, ["get", "values", "app", "-n", namespace, "-o", "json"], env);
      assert.equal(JSON.parse(values.stdout).tag, "v9", what);
    }));
  });
}

/** A pending upgrade, then the user's command; `objects` is what plain helm leaves. */
const PENDING: Record<string, { upgrade: string[]; user: string[]; objects: string[] }> = {
  "renamed a ConfigMap and added one, killed after applying them": {
    // The post-upgrade hook runs once app-renamed and app-extra exist and app-config is gone:
    // helm's rollback then succeeds (it recreates app-config) and removes both.
    upgrade: ["--set", "name=renamed,extra=true,hangAt=post-upgrade"],
    user: ["--set", "tag=v9"],
    objects: ["ConfigMap/app-config tag=v9", "Job/app-hang"],
  },
  "renamed a ConfigMap, killed before applying it (helm/helm#13437)": {
    // app-config is still there but not in revision 2: helm's rollback fails.
    upgrade: ["--set", "name=renamed,hangAt=pre-upgrade"],
    user: ["--set", "name=renamed,tag=v9"],
    objects: ["ConfigMap/app-renamed tag=v9", "Job/app-hang"],
  },
};

/** The namespace's ConfigMaps (with their `tag`) and Jobs; the release records are Secrets. */
async function objectsIn(namespace: string): Promise<string[]> {
  type Items = { items: Array<{ metadata: { name: string }; data?: Record<string, string> }> };
  const client = kubeClientFor();
  const cms = await client.request<Items>("GET", `/api/v1/namespaces/${namespace}/configmaps`);
  const jobs = await client.request<Items>("GET", `/apis/batch/v1/namespaces/${namespace}/jobs`);
  return [
    ...cms.items.filter((o) => o.metadata.name !== "kube-root-ca.crt")
      .map((o) => `ConfigMap/${o.metadata.name} tag=${o.data?.tag}`),
    ...jobs.items.map((o) => `Job/${o.metadata.name}`),
  ].sort();
}

for (const { name, bin } of helms) {
  Deno.test(`${name}: helm lock upgrade of a pending release leaves the cluster as helm rollback and helm upgrade do`, async () => {
    await Promise.all(
      Object.entries(PENDING).map(async ([what, c]) => {
        /** Makes the pending release in a fresh namespace, recovers it `by` plain helm or helm-lock. */
        const recover = async (by: "helm" | "helm-lock") => {
          const env = { ...await helmEnv(), HELM_BIN: bin };
          const namespace = await createNamespace(`pending-${name}-${by}`);
          assert.equal((await run(bin, ["install", "app", SHAPES, "-n", namespace], env)).code, 0);
          // SIGKILL helm while its hook Job hangs: the release is pending-upgrade.
          await killAt(
            bin,
            ["upgrade", "app", SHAPES, "-n", namespace, ...c.upgrade],
            env,
            () =>
              waitFor(
                "the hook Job",
                async () => (await objectsIn(namespace)).includes("Job/app-hang") || undefined,
              ),
          );
          assert.equal(
            (await releaseStatus(bin, "app", namespace, env))?.status,
            "pending-upgrade",
          );
          const user = ["upgrade", "app", SHAPES, "-n", namespace, ...c.user];
          if (by === "helm") {
            await run(bin, ["rollback", "app", "1", "-n", namespace], env); // fails in #13437
            const out = await run(bin, user, env);
            assert.equal(out.code, 0, `${what}: helm upgrade: ${out.stderr}`);
          } else {
            const out = await oneAtATime(() => helmLock(user, env));
            assert.equal(out.code, 0, `${what}: helm lock upgrade: ${out.stderr}`);
          }
          return {
            history: await history(bin, "app", namespace, env),
            objects: await objectsIn(namespace),
          };
        };
        const [helm, locked] = await Promise.all([recover("helm"), recover("helm-lock")]);
        assert.deepEqual(helm.objects, c.objects, `${what}: plain helm`);
        assert.deepEqual(locked, helm, `${what}: helm-lock against plain helm`);
        assert.match(locked.history.at(-1) ?? "", /:deployed$/, what);
      }),
    );
  });
}
