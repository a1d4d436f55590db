/**
 * helmfile with helm-lock as its helm (`helmfile --helm-binary helm-lock sync`), end to end
 * with helm 3 and helm 4: helmfile v1.8.0 built from the Go module proxy by `tests/run.ts`,
 * the helmfile.yaml of the README, two releases synced twice, then a third time while
 * another holder has one release's lock: both releases sync, that one only after the other
 * holder let go.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FAST } from "../support/charts.ts";
import { createNamespace, helmEnv, helms } from "../support/cluster.ts";
import { revisions, run, waitFor } from "../support/helm.ts";
import { writeLauncher } from "../support/cli.ts";
import { adminWorker } from "../support/lock_procs.ts";

const ROOT = join(import.meta.dirname!, "..", "..");
const HELMFILE = Deno.env.get("HELM_LOCK_TEST_HELMFILE") ?? "";

/** The helmfile.yaml shown in the README's helmfile section. */
async function readmeHelmfile(): Promise<string> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const m = readme.match(/```yaml\n(# helmfile\.yaml\n[\s\S]*?)```/);
  if (!m?.[1]) throw new Error("README.md has no helmfile.yaml block");
  return m[1];
}

for (const helm of helms) {
  Deno.test(`${helm.name}: helmfile --helm-binary helm-lock sync, twice, then against another holder`, async () => {
    assert.ok(HELMFILE, "HELM_LOCK_TEST_HELMFILE is not set: run through deno task test");
    const namespace = await createNamespace(`helmfile-${helm.name}`);
    const dir = await Deno.makeTempDir({ prefix: "helm-lock-helmfile-" });
    await Deno.mkdir(join(dir, "charts"));
    await run("cp", ["-R", FAST, join(dir, "charts", "fast")]);
    await Deno.writeTextFile(join(dir, "helmfile.yaml"), await readmeHelmfile());
    const launcher = await writeLauncher(dir);
    const env = await helmEnv({
      HELM_BIN: helm.bin,
      // helmfile runs helm-lock for every call; the settings come from the environment.
      HELM_LOCK_TIMEOUT: "3m",
      HELM_LOCK_LEASE_DURATION: "10s",
    });
    const sync = () =>
      new Deno.Command(HELMFILE, {
        args: ["--helm-binary", launcher, "--namespace", namespace, "sync"],
        cwd: dir,
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    const text = (out: Deno.CommandOutput) =>
      new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);

    for (const round of [1, 2]) {
      const out = await sync();
      assert.equal(out.code, 0, text(out));
      for (const release of ["web", "api"]) {
        const revs = await revisions(helm.bin, release, namespace, env);
        assert.deepEqual(revs.map((r) => r.revision).at(-1), round, `${release}: ${text(out)}`);
        assert.equal(revs.at(-1)?.status, "deployed");
      }
    }

    // Another job holds web's lock: helmfile's helm-lock for web waits, api goes ahead.
    const other = adminWorker(namespace, {
      release: "web",
      leaseDurationSeconds: 10,
      mode: "hold",
    });
    await other.next("acquired", 60_000);
    const third = sync();
    await waitFor("api to be synced a third time", async () => {
      const revs = await revisions(helm.bin, "api", namespace, env);
      return revs.at(-1)?.revision === 3 && revs.at(-1)?.status === "deployed" ? true : undefined;
    }, 120_000);
    assert.equal((await revisions(helm.bin, "web", namespace, env)).at(-1)?.revision, 2);
    assert.equal(await other.close(), 0);
    const released = other.events.find((e) => e.event === "released");
    assert.ok(released?.t, JSON.stringify(other.events));

    const out = await third;
    assert.equal(out.code, 0, text(out));
    const web = (await revisions(helm.bin, "web", namespace, env)).at(-1);
    assert.deepEqual([web?.revision, web?.status], [3, "deployed"]);
    // Serialized: web's third revision was written after the other holder released the lock.
    assert.ok(
      Date.parse(web!.updated) >= released.t!,
      `web updated ${web!.updated} before the other holder released at ${
        new Date(released.t!).toISOString()
      }`,
    );
  });
}
