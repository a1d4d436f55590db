/**
 * The install hook re-installs when asked (issue 17, item 5): `HELM_LOCK_FROM_SOURCE=1` and
 * `-u` replace whatever an earlier install left in bin/, also after `helm plugin uninstall` of a
 * linked local directory (which leaves bin/ in that directory), with Helm 3 and Helm 4.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { helms } from "../support/cluster.ts";
import { exists } from "../../scripts/_util.ts";
import {
  both,
  copyPluginSource,
  exec,
  fakeBinary,
  hook,
  NO_RETRY,
  pluginHome,
  releaseFiles,
  serveMirror,
} from "../support/plugin_release.ts";
import { withTempDir } from "../support/temp.ts";
import { VERSION } from "../../lib/version.ts";

const LAUNCHER = /launcher written by install-binary\.sh/;

/** The install hook with download retries off. */
const hookNoRetry = (src: string, env: Record<string, string>, args?: string[]) =>
  hook(src, { ...NO_RETRY, ...env }, args);

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir("helm-lock-reinstall-", fn);

Deno.test("install-binary.sh with HELM_LOCK_FROM_SOURCE=1 replaces a current binary left in bin/", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    await Deno.mkdir(join(src, "bin"));
    await Deno.writeTextFile(join(src, "bin", "helm-lock"), fakeBinary("left over"), {
      mode: 0o755,
    });
    await Deno.chmod(join(src, "bin", "helm-lock"), 0o755);
    const out = await hookNoRetry(src, { HELM_LOCK_FROM_SOURCE: "1" });
    assert.equal(out.code, 0, both(out));
    assert.doesNotMatch(out.stderr, /already installed/);
    assert.match(out.stderr, /installed a launcher that runs .*main\.ts/);
    assert.match(await Deno.readTextFile(join(src, "bin", "helm-lock")), LAUNCHER);
    const ran = await exec(join(src, "bin", "helm-lock"), ["--version"]);
    assert.equal(ran.stdout, `helm-lock ${VERSION}\n`);
  }));

Deno.test("install-binary.sh -u replaces a directory and a stale runtime left in bin/", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    await Deno.mkdir(join(src, "bin", "helm-lock"), { recursive: true });
    await Deno.writeTextFile(join(src, "bin", "helm-lock", "junk"), "junk\n");
    await Deno.mkdir(join(src, "bin", "helm-lock.runtime"));
    await using mirror = serveMirror(await releaseFiles(fakeBinary("release")));
    const out = await hookNoRetry(src, { HELM_LOCK_DOWNLOAD_URL: mirror.url }, ["-u"]);
    assert.equal(out.code, 0, both(out));
    assert.equal((await exec(join(src, "bin", "helm-lock"), [])).stdout, "release\n");
    assert.equal(await exists(join(src, "bin", "helm-lock.runtime")), false);
    // A symbolic link to a directory is replaced, not written through.
    const elsewhere = join(dir, "elsewhere");
    await Deno.mkdir(elsewhere);
    await Deno.remove(join(src, "bin", "helm-lock"));
    await Deno.symlink(elsewhere, join(src, "bin", "helm-lock"));
    const again = await hookNoRetry(src, { HELM_LOCK_DOWNLOAD_URL: mirror.url }, ["-u"]);
    assert.equal(again.code, 0, both(again));
    assert.ok((await Deno.lstat(join(src, "bin", "helm-lock"))).isFile);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(elsewhere)), []);
    const entries = (await Array.fromAsync(Deno.readDir(src))).map((e) => e.name);
    assert.ok(!entries.some((n) => n.startsWith(".helm-lock-install")), "no stage left behind");
  }));

for (const helm of helms) {
  Deno.test(`helm plugin install (${helm.name}) with HELM_LOCK_FROM_SOURCE=1 after uninstall of a linked dir installs the launcher`, () =>
    withTemp(async (dir) => {
      const src = await copyPluginSource(dir);
      const home = pluginHome(join(dir, "home"));
      await using mirror = serveMirror(await releaseFiles(fakeBinary("release")));
      const env = { ...home, HELM_LOCK_DOWNLOAD_URL: mirror.url, HELM_LOCK_DOWNLOAD_RETRIES: "0" };
      const first = await exec(helm.bin, ["plugin", "install", src], { env });
      assert.equal(first.code, 0, both(first));
      assert.equal((await exec(helm.bin, ["lock"], { env })).stdout, "release\n");
      const gone = await exec(helm.bin, ["plugin", "uninstall", "lock"], { env });
      assert.equal(gone.code, 0, both(gone));
      assert.ok(await exists(join(src, "bin", "helm-lock")), "uninstall leaves the linked bin/");

      const again = await exec(helm.bin, ["plugin", "install", src], {
        env: { ...env, HELM_LOCK_FROM_SOURCE: "1" },
      });
      assert.equal(again.code, 0, both(again));
      assert.doesNotMatch(both(again), /already installed/);
      assert.match(await Deno.readTextFile(join(src, "bin", "helm-lock")), LAUNCHER);
      const version = await exec(helm.bin, ["lock", "--version"], { env });
      assert.equal(version.stdout, `helm-lock ${VERSION}\n`, both(version));
    }));
}
