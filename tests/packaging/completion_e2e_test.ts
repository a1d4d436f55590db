/**
 * The plugin's shell completion with the real Helm 3 and Helm 4: `helm plugin install` of the
 * plugin directory (its completion.yaml and plugin.complete included), then helm's own
 * `__complete` for `helm lock ...`, and completion.yaml kept equal to what the declarations
 * generate.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { helms } from "../support/cluster.ts";
import { copyPluginSource, exec, pluginHome } from "../support/plugin_release.ts";
import { completionYaml } from "../../scripts/completion_yaml.ts";
import { PLUGIN_FILES } from "../../scripts/package_plugin.ts";

const root = new URL("../..", import.meta.url).pathname;

Deno.test("completion.yaml is what `deno task completion-yaml` writes", async () => {
  assert.equal(await Deno.readTextFile(join(root, "completion.yaml")), completionYaml());
});

Deno.test("the plugin package carries completion.yaml and an executable plugin.complete", async () => {
  assert.ok(PLUGIN_FILES.includes("completion.yaml") && PLUGIN_FILES.includes("plugin.complete"));
  assert.equal(((await Deno.stat(join(root, "plugin.complete"))).mode ?? 0) & 0o111, 0o111);
});

for (const helm of helms) {
  Deno.test(`helm __complete lock (${helm.name}) lists helm-lock's commands, flags and values`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "helm-lock-completion-" });
    try {
      const src = await copyPluginSource(dir);
      const env = { ...pluginHome(join(dir, "home")), HELM_LOCK_FROM_SOURCE: "1" };
      const install = await exec(helm.bin, ["plugin", "install", src], { env });
      assert.equal(install.code, 0, install.stdout + install.stderr);
      const complete = async (words: string[]) => {
        const out = await exec(helm.bin, ["__complete", "lock", ...words], { env });
        assert.equal(out.code, 0, out.stderr);
        return out.stdout.trimEnd().split("\n").map((l) => l.split("\t")[0]);
      };
      // Static: completion.yaml.
      assert.deepEqual(await complete([""]), [
        "install",
        "lock-list",
        "lock-status",
        "lock-unlock",
        "rollback",
        "test",
        "uninstall",
        "upgrade",
        ":4",
      ]);
      assert.deepEqual(await complete(["--lock-q"]), ["--lock-queue", ":4"]);
      // Dynamic: plugin.complete, helm-lock's __complete.
      assert.deepEqual(await complete(["lock-status", "app", "-o", ""]), [
        "table",
        "json",
        "yaml",
        ":4",
      ]);
      assert.deepEqual(await complete(["upgrade", "--lock-queue", ""]), ["fifo", "newest", ":4"]);
      const flags = await complete(["lock-list", "--"]);
      for (const flag of ["--output", "--all-namespaces", "--help"]) {
        assert.ok(flags.includes(flag), `${flag} in ${flags}`);
      }
      // helm's own answer for helm's words, through helm-lock: a flag of helm upgrade.
      assert.ok((await complete(["upgrade", "app", "./c", "--wai"])).includes("--wait"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
