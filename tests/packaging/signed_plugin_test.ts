/**
 * The signed plugin package (issue 16): `deno task package-plugin` signs with a throwaway GPG
 * key; Helm 4 installs it from a loopback HTTP server with verification on and lists it as
 * signed, and refuses a tampered package; Helm 3 installs the release's plugin source tarball
 * the way the README says.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { helms } from "../support/cluster.ts";
import { packageNames, packagePlugin } from "../../scripts/package_plugin.ts";
import {
  both,
  copyPluginSource,
  exec,
  execOk,
  fakeBinary,
  pluginHome,
  releaseFiles,
  serveMirror,
  which,
} from "../support/plugin_release.ts";
import { VERSION } from "../../lib/version.ts";

const root = new URL("../..", import.meta.url).pathname;
const helm3 = helms.find((h) => h.name === "helm3")!;
const helm4 = helms.find((h) => h.name === "helm4")!;
const KEY = "helm-lock test signing key";
const gpg = await which("gpg");
/** A stand-in binary for the install hook, so installs need no network. */
const FAKE = fakeBinary("fake");

/** A throwaway key: `{ secring, pubkey (armored, as the release publishes it), keyring }`. */
async function throwawayKey(dir: string) {
  const home = join(dir, "gnupg");
  await Deno.mkdir(home, { mode: 0o700 });
  const env = { GNUPGHOME: home };
  const g = (args: string[]) => execOk(gpg!, ["--batch", "--quiet", ...args], { env });
  try {
    await g(["--passphrase", "", "--quick-gen-key", KEY, "rsa2048", "sign", "never"]);
    const secring = join(dir, "secring.gpg");
    const pubkey = join(dir, "helm-lock-signing-key.asc");
    await g(["--output", secring, "--export-secret-keys", KEY]);
    await g(["--output", pubkey, "--armor", "--export", KEY]);
    // What the README tells users to do with the published key.
    const keyring = join(dir, "helm-lock.gpg");
    await g(["--output", keyring, "--dearmor", pubkey]);
    return { secring, pubkey, keyring };
  } finally {
    await exec("gpgconf", ["--kill", "gpg-agent"], { env });
  }
}

Deno.test({
  name: "helm 4 installs the signed plugin package with verification on; a tampered one is refused",
  ignore: gpg === undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "helm-lock-signed-" });
    try {
      const { secring, keyring } = await throwawayKey(dir);
      const out = join(dir, "dist");
      const { tgz, prov } = await packagePlugin({
        helm: helm4.bin,
        out,
        key: KEY,
        keyring: secring,
        env: pluginHome(join(dir, "packager")),
      });
      const names = packageNames();
      assert.equal(tgz, join(out, names.tgz));
      assert.match(await Deno.readTextFile(prov), new RegExp(`${names.tgz}: sha256:[0-9a-f]{64}`));

      // Served like a GitHub release: application/octet-stream, with the hook's binary beside it.
      const files = await releaseFiles(FAKE);
      files.set(names.tgz, await Deno.readFile(tgz));
      files.set(names.prov, await Deno.readFile(prov));
      await using mirror = serveMirror(files);
      const env = { ...pluginHome(join(dir, "home")), HELM_LOCK_DOWNLOAD_URL: mirror.url };
      const url = `${mirror.url}/${names.tgz}`;
      const install = await exec(helm4.bin, ["plugin", "install", url, "--keyring", keyring], {
        env,
      });
      assert.equal(install.code, 0, both(install));
      assert.match(both(install), new RegExp(`Signed by: ${KEY}`));
      assert.match(both(install), /Plugin Hash Verified: sha256:[0-9a-f]{64}/);
      assert.match(both(install), /Installed plugin: lock/);
      const list = await exec(helm4.bin, ["plugin", "list"], { env });
      assert.match(
        list.stdout,
        new RegExp(`^lock\\s+${VERSION}\\s+cli/v1\\s+legacy\\s+signed\\b`, "m"),
      );
      const version = await exec(helm4.bin, ["lock", "--version"], { env });
      assert.equal(version.stdout, `helm-lock ${VERSION}\n`, both(version));

      // Any changed byte: refused before anything is installed.
      const tampered = await Deno.readFile(tgz);
      const bad = new Uint8Array(tampered.length + 1);
      bad.set(tampered);
      mirror.files.set(names.tgz, bad);
      const env2 = { ...pluginHome(join(dir, "home2")), HELM_LOCK_DOWNLOAD_URL: mirror.url };
      const refused = await exec(helm4.bin, ["plugin", "install", url, "--keyring", keyring], {
        env: env2,
      });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /plugin verification failed/);
      assert.doesNotMatch(both(refused), /Installed plugin/);
      const none = await exec(helm4.bin, ["plugin", "list"], { env: env2 });
      assert.doesNotMatch(none.stdout, /^lock\s/m);

      // The README's Helm 4 command: the release URL of this file name, no --verify=false.
      const readme = await Deno.readTextFile(join(root, "README.md"));
      assert.ok(
        readme.includes(
          `helm plugin install https://github.com/helm-lock/helm-lock/releases/download/v${VERSION}/${names.tgz} --keyring helm-lock.gpg`,
        ),
        "README gives the signed install for Helm 4",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("helm 3 installs the release's plugin source tarball the README's way", async () => {
  const dir = await Deno.makeTempDir({ prefix: "helm-lock-h3tar-" });
  try {
    // The plugin source tarball as release.yml makes it (everything under helm-lock/).
    const src = await copyPluginSource(join(dir));
    const name = `helm-lock-plugin-${VERSION}.tar.gz`;
    await execOk("tar", ["-czf", join(dir, name), "-C", dir, "helm-lock"]);
    await Deno.remove(src, { recursive: true });
    const files = await releaseFiles(FAKE);
    files.set(name, await Deno.readFile(join(dir, name)));
    await using mirror = serveMirror(files);
    // Served as GitHub does (application/octet-stream), a tarball URL is no route for Helm 3.
    const env = { ...pluginHome(join(dir, "home")), HELM_LOCK_DOWNLOAD_URL: mirror.url };
    const direct = await exec(helm3.bin, ["plugin", "install", `${mirror.url}/${name}`], { env });
    assert.notEqual(direct.code, 0);

    // The README's route: download, unpack, install the directory.
    const work = join(dir, "work");
    await Deno.mkdir(work);
    await execOk("curl", ["-fsSLO", `${mirror.url}/${name}`], { cwd: work });
    await execOk("tar", ["-xzf", name], { cwd: work });
    const install = await exec(helm3.bin, ["plugin", "install", "./helm-lock"], { env, cwd: work });
    assert.equal(install.code, 0, both(install));
    const version = await exec(helm3.bin, ["lock", "--version"], { env });
    assert.equal(version.stdout, `helm-lock ${VERSION}\n`, both(version));

    const readme = await Deno.readTextFile(join(root, "README.md"));
    for (
      const line of [
        `curl -fsSLO https://github.com/helm-lock/helm-lock/releases/download/v${VERSION}/${name}`,
        `tar -xzf ${name}`,
        "helm plugin install ./helm-lock",
      ]
    ) {
      assert.ok(readme.includes(line), `README has: ${line}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
