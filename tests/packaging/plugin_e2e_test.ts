/**
 * Plugin packaging end to end (issue 5, DESIGN §6): install-binary.sh on its own, then
 * `helm plugin install|update` with the real Helm 3 and Helm 4 against a loopback mirror.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { adminKubeConfig, adminKubeconfig, createNamespace, helms } from "../support/cluster.ts";
import { exists } from "../../scripts/_util.ts";
import { DENO_RUN } from "../support/cli.ts";
import { shellcheck } from "../support/debian_packages.ts";
import { releaseStatus } from "../support/helm.ts";
import {
  both,
  clonePluginSource,
  copyPluginSource,
  exec,
  fakeBinary,
  hook,
  hostArchiveName,
  makeLauncher,
  NO_RETRY,
  pluginHome,
  releaseFiles,
  serveMirror,
  which,
  writeRelease,
} from "../support/plugin_release.ts";
import { VERSION } from "../../lib/version.ts";
import { FAST } from "../support/charts.ts";
import { withTempDir } from "../support/temp.ts";

const root = new URL("../..", import.meta.url).pathname;
/** Marks the launcher served in release archives, to tell it from the fallback one. */
const ARCHIVE_MARK = "# served from the test mirror";

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir("helm-lock-plugin-", fn);

/** A directory for PATH with what install-binary.sh needs, plus `extra`, and no deno. */
async function toolsDir(parent: string, extra: string[]): Promise<string> {
  const tools = join(parent, "tools");
  await Deno.mkdir(tools);
  const needed = ["sh", "sed", "awk", "tr", "cut", "mktemp", "rm", "uname", "dirname", "basename"];
  const more = ["mkdir", "cp", "chmod", "mv", "tar", "gzip", "sha256sum", "sleep", "cat", "grep"];
  for (const tool of [...needed, ...more, ...extra]) {
    const found = await which(tool);
    if (found === undefined) throw new Error(`Cannot find ${tool} on PATH`);
    await Deno.symlink(found, join(tools, tool));
  }
  return tools;
}

Deno.test("install-binary.sh and the launcher it writes are shellcheck clean", () =>
  withTemp(async (dir) => {
    await Deno.writeTextFile(join(dir, "launcher"), await makeLauncher());
    const { cmd, env } = await shellcheck();
    const out = await exec(cmd, ["-s", "sh", "install-binary.sh", join(dir, "launcher")], { env });
    assert.equal(out.code, 0, both(out));
  }));

Deno.test("install-binary.sh installs the mirror's archive after retrying a 503 and verifying it", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    await using mirror = serveMirror(await releaseFiles(fakeBinary("release")));
    mirror.flaky.set(hostArchiveName(), 1);
    const out = await hook(src, { HELM_LOCK_DOWNLOAD_URL: mirror.url });
    assert.equal(out.code, 0, both(out));
    assert.match(out.stderr, new RegExp(`verified sha256 of ${hostArchiveName()}`));
    assert.equal(mirror.requests.filter((p) => p.endsWith(hostArchiveName())).length, 2);
    assert.ok(mirror.requests.every((p) => p.startsWith(`/v${VERSION}/`)));
    const ran = await exec(join(src, "bin", "helm-lock"), []);
    assert.equal(ran.stdout, "release\n");
  }));

Deno.test("install-binary.sh refuses a tampered archive and leaves bin/ absent", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    await using mirror = serveMirror(await releaseFiles(fakeBinary("evil"), { tamper: true }));
    const out = await hook(src, { HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY });
    assert.equal(out.code, 1);
    assert.match(
      out.stderr,
      new RegExp(
        `helm-lock: error: Checksum mismatch for ${hostArchiveName()}: expected sha256 [0-9a-f]{64} ` +
          `\\(from ${mirror.url}/checksums.txt\\), found [0-9a-f]{64}: refusing to install`,
      ),
    );
    assert.equal(await exists(join(src, "bin")), false);
  }));

Deno.test("install-binary.sh refuses when checksums.txt lacks the archive or is missing", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    const files = await releaseFiles(fakeBinary("release"));
    files.set("checksums.txt", new TextEncoder().encode(`${"0".repeat(64)}  other.tar.gz\n`));
    await using mirror = serveMirror(files);
    const unlisted = await hook(src, { HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY });
    assert.equal(unlisted.code, 1);
    assert.match(
      unlisted.stderr,
      new RegExp(`Checksum for ${hostArchiveName()} not found in ${mirror.url}/checksums.txt`),
    );
    files.delete("checksums.txt");
    const missing = await hook(src, { HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY });
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      new RegExp(`Cannot download ${mirror.url}/checksums.txt: refusing to install`),
    );
    assert.equal(await exists(join(src, "bin")), false);
  }));

Deno.test("install-binary.sh verifies a mirror's archive against HELM_LOCK_CHECKSUMS instead", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    const trusted = await releaseFiles(fakeBinary("release"));
    await Deno.writeFile(join(dir, "trusted.txt"), trusted.get("checksums.txt")!);
    // The mirror was tampered with as a whole: archive and checksums.txt agree.
    const evil = await releaseFiles(fakeBinary("evil"));
    await using mirror = serveMirror(evil);
    const env = { HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY };
    const out = await hook(src, { ...env, HELM_LOCK_CHECKSUMS: join(dir, "trusted.txt") });
    assert.equal(out.code, 1);
    assert.match(out.stderr, new RegExp(`Checksum mismatch .*\\(from ${dir}/trusted\\.txt\\)`));
    assert.ok(!mirror.requests.some((p) => p.endsWith("/checksums.txt")));
    assert.equal(await exists(join(src, "bin")), false);
    mirror.files.set(hostArchiveName(), trusted.get(hostArchiveName())!);
    const ok = await hook(src, { ...env, HELM_LOCK_CHECKSUMS: join(dir, "trusted.txt") });
    assert.equal(ok.code, 0, both(ok));
    assert.equal((await exec(join(src, "bin", "helm-lock"), [])).stdout, "release\n");
  }));

Deno.test("install-binary.sh falls back to the deno launcher when the mirror refuses connections", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    const closed = serveMirror(new Map());
    const url = closed.url;
    await closed[Symbol.asyncDispose]();
    const out = await hook(src, { HELM_LOCK_DOWNLOAD_URL: url, ...NO_RETRY });
    assert.equal(out.code, 0, both(out));
    assert.match(
      out.stderr,
      /Cannot download .*; deno is on PATH: installing the launcher instead/,
    );
    const launcher = await Deno.readTextFile(join(src, "bin", "helm-lock"));
    assert.match(launcher, /launcher written by install-binary\.sh/);
    assert.match(
      launcher,
      /run --quiet --no-prompt --allow-env --allow-run --allow-net --allow-read \\\n {2}--allow-sys --allow-write="\$\{TMPDIR:-\/tmp\}" \\\n {2}--config "\$plugin_dir\/deno\.json" "\$plugin_dir\/main\.ts" "\$@"/,
    );
  }));

Deno.test("install-binary.sh without deno on PATH fails on a 404 naming the ways out", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    const tools = await toolsDir(dir, ["curl"]);
    await using mirror = serveMirror(new Map());
    const out = await exec(join(tools, "sh"), [join(src, "install-binary.sh")], {
      env: { PATH: tools, HELM_PLUGIN_DIR: src, HELM_LOCK_DOWNLOAD_URL: mirror.url },
    });
    assert.equal(out.code, 1, both(out));
    assert.match(
      out.stderr,
      new RegExp(
        `helm-lock: error: Cannot download ${mirror.url}/${hostArchiveName()}, and deno is not ` +
          "on PATH: set HELM_LOCK_DOWNLOAD_URL to a mirror, HELM_LOCK_ARCHIVE to a local " +
          "archive, or install deno",
      ),
    );
    assert.equal(await exists(join(src, "bin")), false);
  }));

Deno.test("install-binary.sh downloads with wget when curl is missing, retrying a 503", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    const tools = await toolsDir(dir, ["wget"]);
    await using mirror = serveMirror(await releaseFiles(fakeBinary("via wget")));
    mirror.flaky.set("checksums.txt", 1);
    const out = await exec(join(tools, "sh"), [join(src, "install-binary.sh")], {
      env: { PATH: tools, HELM_PLUGIN_DIR: src, HELM_LOCK_DOWNLOAD_URL: mirror.url },
    });
    assert.equal(out.code, 0, both(out));
    assert.match(out.stderr, /verified sha256/);
    assert.equal(mirror.requests.filter((p) => p.endsWith("/checksums.txt")).length, 2);
    assert.equal((await exec(join(src, "bin", "helm-lock"), [])).stdout, "via wget\n");
    // A 404 is not retried.
    mirror.files.clear();
    mirror.requests.length = 0;
    const gone = await exec(join(tools, "sh"), [join(src, "install-binary.sh"), "-u"], {
      env: { PATH: tools, HELM_PLUGIN_DIR: src, HELM_LOCK_DOWNLOAD_URL: mirror.url },
    });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /Cannot download .*, and deno is not on PATH/);
    assert.equal(mirror.requests.length, 1);
  }));

Deno.test("install-binary.sh keeps a binary of this version, replaces it with -u", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    await using mirror = serveMirror(await releaseFiles(fakeBinary("first")));
    const env = { HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY };
    assert.equal((await hook(src, env)).code, 0);
    for (const [name, data] of await releaseFiles(fakeBinary("second"))) {
      mirror.files.set(name, data);
    }
    const again = await hook(src, env);
    assert.equal(again.code, 0, both(again));
    assert.match(again.stderr, /helm-lock [\d.]+ is already installed in .*-u to replace it/);
    assert.equal((await exec(join(src, "bin", "helm-lock"), [])).stdout, "first\n");
    const update = await hook(src, env, ["-u"]);
    assert.equal(update.code, 0, both(update));
    assert.equal((await exec(join(src, "bin", "helm-lock"), [])).stdout, "second\n");
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(join(src, "bin")))).map((e) => e.name),
      ["helm-lock"],
    );
  }));

Deno.test("install-binary.sh installs HELM_LOCK_ARCHIVE, verified when checksums are at hand", () =>
  withTemp(async (dir) => {
    const src = await copyPluginSource(dir);
    const release = join(dir, "release");
    const files = await releaseFiles(fakeBinary("local"));
    await writeRelease(release, files);
    const archive = join(release, hostArchiveName());

    const verified = await hook(src, { HELM_LOCK_ARCHIVE: archive });
    assert.equal(verified.code, 0, both(verified));
    assert.match(verified.stderr, /verified sha256/);
    assert.equal((await exec(join(src, "bin", "helm-lock"), [])).stdout, "local\n");

    // Checksums elsewhere: HELM_LOCK_CHECKSUMS; a mismatch there is refused.
    const sums = join(dir, "sums.txt");
    await Deno.rename(join(release, "checksums.txt"), sums);
    await Deno.writeFile(
      archive,
      (await releaseFiles(fakeBinary("other"))).get(hostArchiveName())!,
    );
    const mismatch = await hook(src, { HELM_LOCK_ARCHIVE: archive, HELM_LOCK_CHECKSUMS: sums }, [
      "-u",
    ]);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stderr, new RegExp(`Checksum mismatch for ${hostArchiveName()}`));
    assert.equal((await exec(join(src, "bin", "helm-lock"), [])).stdout, "local\n");

    // No checksums at all: the user's own file is installed with a warning.
    const unverified = await hook(src, { HELM_LOCK_ARCHIVE: archive }, ["-u"]);
    assert.equal(unverified.code, 0, both(unverified));
    assert.match(
      unverified.stderr,
      /warning: no checksums\.txt beside .* installing it unverified/,
    );
    assert.equal((await exec(join(src, "bin", "helm-lock"), [])).stdout, "other\n");
  }));

Deno.test("the launcher grants main.ts the permissions the CLI tests run it with", async () => {
  const text = await makeLauncher();
  const runLine = text.slice(text.indexOf('exec "$deno" run'));
  const launcherFlags: string[] = runLine.match(/--[a-z-]+/g) ?? [];
  // By name: the launcher grants the write to $TMPDIR (else /tmp), the tests to /tmp.
  const testFlags = DENO_RUN.filter((a) => a.startsWith("--")).map((a) => a.replace(/=.*/, ""));
  assert.deepEqual(launcherFlags, testFlags);
  assert.ok(launcherFlags.includes("--allow-sys"));
});

// --- Through the plugin systems of Helm 3 and Helm 4 -------------------------------------

/** The launcher, as shipped in the test release archive (so it works from any plugin dir). */
const launcher = `${await makeLauncher()}${ARCHIVE_MARK}\n`;

for (const helm of helms) {
  const run = (args: string[], env: Record<string, string>) =>
    exec(helm.bin || `${helm.name}-is-not-set`, args, { env });

  Deno.test(`helm plugin install (${helm.name}) fetches the verified binary; helm lock --version works`, () =>
    withTemp(async (dir) => {
      const src = await copyPluginSource(dir);
      const home = pluginHome(join(dir, "home"));
      await using mirror = serveMirror(await releaseFiles(launcher));
      const env = { ...home, HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY };
      const install = await run(["plugin", "install", src], env);
      assert.equal(install.code, 0, both(install));
      assert.match(install.stdout, /Installed plugin: lock/);
      assert.match(install.stderr, /verified sha256/);
      assert.ok(
        (await Deno.readTextFile(join(src, "bin", "helm-lock"))).endsWith(ARCHIVE_MARK + "\n"),
      );
      const version = await run(["lock", "--version"], env);
      assert.equal(version.code, 0, both(version));
      assert.equal(version.stdout.trim(), `helm-lock ${VERSION}`);
    }));

  Deno.test(`helm -n X lock upgrade --install (${helm.name}) through the plugin deploys into X`, () =>
    withTemp(async (dir) => {
      const src = await copyPluginSource(dir);
      const home = pluginHome(join(dir, "home"));
      await using mirror = serveMirror(await releaseFiles(launcher));
      const env = {
        ...home,
        KUBECONFIG: adminKubeconfig(),
        HELM_LOCK_DOWNLOAD_URL: mirror.url,
        ...NO_RETRY,
      };
      const install = await run(["plugin", "install", src], env);
      assert.equal(install.code, 0, both(install));
      const namespace = await createNamespace(`plugin-${helm.name}`);
      const upgrade = await run(
        ["-n", namespace, "lock", "upgrade", "--install", "rel", FAST],
        env,
      );
      assert.equal(upgrade.code, 0, both(upgrade));
      // helm-lock ran (its own log lines), in X from HELM_NAMESPACE, and released its Lease.
      assert.match(upgrade.stderr, /^helm-lock: /m);
      const status = await releaseStatus(helm.bin, "rel", namespace, env);
      assert.equal(status?.status, "deployed");
      assert.equal(await releaseStatus(helm.bin, "rel", "default", env), undefined);
      const leases = await adminKubeConfig().makeApiClient(k8s.CoordinationV1Api)
        .listNamespacedLease({ namespace });
      // Uncontended, it took the lock without a ticket or queue state: nothing is left.
      assert.deepEqual(leases.items.map((l) => l.metadata?.name), []);
    }));

  Deno.test(`helm plugin install (${helm.name}) fails on a tampered archive, leaving no bin/`, () =>
    withTemp(async (dir) => {
      const src = await copyPluginSource(dir);
      const home = pluginHome(join(dir, "home"));
      await using mirror = serveMirror(await releaseFiles(launcher, { tamper: true }));
      const env = { ...home, HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY };
      const install = await run(["plugin", "install", src], env);
      assert.notEqual(install.code, 0);
      assert.match(both(install), /Checksum mismatch for helm-lock-.*refusing to install/);
      assert.equal(await exists(join(src, "bin")), false);
    }));

  Deno.test(`helm plugin install (${helm.name}) falls back to the deno launcher on a 404`, () =>
    withTemp(async (dir) => {
      const src = await copyPluginSource(dir);
      const home = pluginHome(join(dir, "home"));
      await using mirror = serveMirror(new Map());
      const env = { ...home, HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY };
      const install = await run(["plugin", "install", src], env);
      assert.equal(install.code, 0, both(install));
      assert.match(install.stderr, /404|not found/i);
      assert.match(install.stderr, /installing the launcher instead/);
      const bin = await Deno.readTextFile(join(src, "bin", "helm-lock"));
      assert.ok(!bin.includes(ARCHIVE_MARK));
      const version = await run(["lock", "--version"], env);
      assert.equal(version.code, 0, both(version));
      assert.equal(version.stdout.trim(), `helm-lock ${VERSION}`);
    }));

  Deno.test(`helm plugin install (${helm.name}) with SKIP_BIN_INSTALL=1 installs no binary`, () =>
    withTemp(async (dir) => {
      const src = await copyPluginSource(dir);
      const home = pluginHome(join(dir, "home"));
      await using mirror = serveMirror(await releaseFiles(launcher));
      const env = { ...home, HELM_LOCK_DOWNLOAD_URL: mirror.url, SKIP_BIN_INSTALL: "1" };
      const install = await run(["plugin", "install", src], env);
      assert.equal(install.code, 0, both(install));
      assert.match(install.stderr, /SKIP_BIN_INSTALL=1: not installing bin\/helm-lock/);
      assert.deepEqual(mirror.requests, []);
      assert.equal(await exists(join(src, "bin")), false);
      const list = await run(["plugin", "list"], env);
      assert.match(list.stdout, /^lock\s+[\d.]+/m);
    }));

  Deno.test(`helm plugin install (${helm.name}) installs HELM_LOCK_ARCHIVE without network`, () =>
    withTemp(async (dir) => {
      const src = await copyPluginSource(dir);
      const home = pluginHome(join(dir, "home"));
      const release = join(dir, "release");
      await writeRelease(release, await releaseFiles(launcher));
      const env = {
        ...home,
        HELM_LOCK_ARCHIVE: join(release, hostArchiveName()),
        // Nothing listens there: any download attempt would fail the install.
        HELM_LOCK_DOWNLOAD_URL: "http://127.0.0.1:9/nowhere",
      };
      const install = await run(["plugin", "install", src], env);
      assert.equal(install.code, 0, both(install));
      assert.match(install.stderr, /verified sha256/);
      const version = await run(["lock", "--version"], env);
      assert.equal(version.code, 0, both(version));
      assert.equal(version.stdout.trim(), `helm-lock ${VERSION}`);
    }));

  Deno.test(`helm plugin update (${helm.name}) runs the update hook, which replaces the binary`, () =>
    withTemp(async (dir) => {
      // Helm updates only git checkouts whose remote is named like the plugin directory.
      const src = await clonePluginSource(dir);
      const home = pluginHome(join(dir, "home"));
      await using mirror = serveMirror(await releaseFiles(fakeBinary("first")));
      const env = { ...home, HELM_LOCK_DOWNLOAD_URL: mirror.url, ...NO_RETRY };
      const install = await run(["plugin", "install", src], env);
      assert.equal(install.code, 0, both(install));
      assert.equal((await run(["lock"], env)).stdout, "first\n");
      for (const [name, data] of await releaseFiles(fakeBinary("second"))) {
        mirror.files.set(name, data);
      }
      const update = await run(["plugin", "update", "lock"], env);
      assert.equal(update.code, 0, both(update));
      assert.match(update.stdout, /Updated plugin: lock/);
      assert.equal((await run(["lock"], env)).stdout, "second\n");
    }));
}

Deno.test("helm 4 installs a plugin from a git URL only with --verify=false, as docs/install.md says", async () => {
  const helm4 = helms.find((h) => h.name === "helm4")!;
  await withTemp(async (dir) => {
    // Helm 4 refuses before any network access, so a real URL is safe here.
    const out = await exec(helm4.bin, [
      "plugin",
      "install",
      "https://github.com/helm-lock/helm-lock",
    ], {
      env: pluginHome(dir),
    });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /plugin source does not support verification\. Use --verify=false/);
    const docs = await Deno.readTextFile(join(root, "docs/install.md"));
    assert.ok(
      docs.includes("helm plugin install https://github.com/helm-lock/helm-lock --verify=false"),
    );
  });
});

Deno.test("helm 4 installs the release's plugin tarball from a URL with --verify=false", async () => {
  const helm4 = helms.find((h) => h.name === "helm4")!;
  await withTemp(async (dir) => {
    // The plugin source tarball as release.yml makes it: everything under helm-lock/.
    const src = await copyPluginSource(dir);
    const tarball = join(dir, `helm-lock-plugin-${VERSION}.tar.gz`);
    const tar = await exec("tar", ["-czf", tarball, "-C", dir, "helm-lock"]);
    assert.equal(tar.code, 0, both(tar));
    await Deno.remove(src, { recursive: true });
    const files = await releaseFiles(launcher);
    files.set(`helm-lock-plugin-${VERSION}.tar.gz`, await Deno.readFile(tarball));
    await using mirror = serveMirror(files);
    const env = { ...pluginHome(join(dir, "home")), HELM_LOCK_DOWNLOAD_URL: mirror.url };
    const url = `${mirror.url}/helm-lock-plugin-${VERSION}.tar.gz`;
    const install = await exec(helm4.bin, ["plugin", "install", url, "--verify=false"], { env });
    assert.equal(install.code, 0, both(install));
    assert.match(install.stderr, /verified sha256/);
    const version = await exec(helm4.bin, ["lock", "--version"], { env });
    assert.equal(version.code, 0, both(version));
    assert.equal(version.stdout.trim(), `helm-lock ${VERSION}`);
  });
});

Deno.test("helm 3 rejects --verify, so docs/install.md gives it the command without", async () => {
  const helm3 = helms.find((h) => h.name === "helm3")!;
  await withTemp(async (dir) => {
    const out = await exec(helm3.bin, ["plugin", "install", "--verify=false", "/nonexistent"], {
      env: pluginHome(dir),
    });
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /unknown flag: --verify/);
    const docs = await Deno.readTextFile(join(root, "docs/install.md"));
    assert.match(docs, /^helm plugin install https:\/\/github\.com\/helm-lock\/helm-lock$/m);
  });
});
