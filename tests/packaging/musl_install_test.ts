/**
 * helm-lock on Alpine (issue 16): install-binary.sh inside a musl-only root file system (Debian's
 * musl + busybox-static, no glibc), run with chroot, picks the -musl archive from a loopback
 * mirror, and the installed helm-lock starts through the glibc loader the archive carries. The
 * deno binary stands in for denort (deno compile cannot run here), running a bundle of main.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  archiveName,
  findTarget,
  muslLauncher,
  RUNTIME_DIR,
  writeMuslArchive,
} from "../../scripts/compile.ts";
import { exists, sha256Hex } from "../../scripts/_util.ts";
import { cacheDir } from "../controlplane/binaries.ts";
import { chrootUnavailable, glibcFiles, inChroot, muslRootfs } from "../support/musl_rootfs.ts";
import { both, exec, execOk, hostPlatform, serveMirror } from "../support/plugin_release.ts";
import { formatChecksums } from "../../scripts/compile.ts";
import { VERSION } from "../../lib/version.ts";

const root = new URL("../..", import.meta.url).pathname;
const target = findTarget(`${hostPlatform()}-musl`);
const MUSL = archiveName(VERSION, target);
/** The launcher runs deno with the bundle (a stand-in for a compiled binary) at this path. */
const STAND_IN = ["run", "--quiet", "--no-config", "-A", "/opt/helm-lock.js"];

const unavailable = Deno.build.os === "linux"
  ? await chrootUnavailable()
  : "the musl chroot test needs Linux";
if (unavailable !== undefined) {
  // deno-lint-ignore no-console
  console.error(`musl_install_test: skipped: ${unavailable}`);
}

/** The musl archive with deno as its glibc binary, cached: it only changes with these inputs. */
async function standInArchive(): Promise<string> {
  const key = (await sha256Hex(
    new TextEncoder().encode(
      [Deno.version.deno, VERSION, muslLauncher(target, STAND_IN)].join("\n"),
    ),
  )).slice(0, 12);
  const dir = join(cacheDir(), `musl-test-archive-${key}`);
  const archive = join(dir, MUSL);
  if (await exists(archive)) return archive;
  await Deno.mkdir(dir, { recursive: true });
  const partial = `${archive}.${Deno.pid}.tmp`;
  await writeMuslArchive(Deno.execPath(), partial, target, { standIn: STAND_IN });
  await Deno.rename(partial, archive);
  return archive;
}

/** A tar.gz of `dir`'s top-level `names`. */
async function tarOf(dir: string, names: string[]): Promise<Uint8Array> {
  await execOk("tar", ["-czf", join(dir, "out.tar.gz"), "-C", dir, ...names]);
  return await Deno.readFile(join(dir, "out.tar.gz"));
}

async function release(name: string, data: Uint8Array): Promise<Map<string, Uint8Array>> {
  const sums = formatChecksums(new Map([[name, await sha256Hex(data)]]));
  return new Map([[name, data], ["checksums.txt", new TextEncoder().encode(sums)]]);
}

Deno.test({
  name: "install-binary.sh on a musl-only system installs the -musl archive, and helm-lock runs",
  ignore: unavailable !== undefined,
  fn: async () => {
    const work = await Deno.makeTempDir({ prefix: "helm-lock-musl-" });
    try {
      const fs = join(work, "root");
      await execOk("cp", ["-a", await muslRootfs(), fs]);
      assert.deepEqual(await glibcFiles(fs), [], "no glibc in the root file system");
      const loader = target.arch === "amd64" ? "ld-musl-x86_64.so.1" : "ld-musl-aarch64.so.1";
      assert.ok(await exists(join(fs, "lib", loader)), "musl's loader is there");

      // The plugin as helm lays it out, and the stand-in's program.
      await Deno.mkdir(join(fs, "plugin"));
      for (const f of ["plugin.yaml", "install-binary.sh"]) {
        await Deno.copyFile(join(root, f), join(fs, "plugin", f));
      }
      await Deno.mkdir(join(fs, "opt"));
      await execOk(Deno.execPath(), [
        "bundle",
        "--quiet",
        "--platform=deno",
        "-o",
        join(fs, "opt", "helm-lock.js"),
        "main.ts",
      ]);

      await using mirror = serveMirror(
        await release(MUSL, await Deno.readFile(await standInArchive())),
      );
      const env = {
        PATH: "/bin",
        HOME: "/root",
        DENO_DIR: "/tmp/deno",
        HELM_PLUGIN_DIR: "/plugin",
        HELM_LOCK_DOWNLOAD_URL: mirror.url,
        HELM_LOCK_DOWNLOAD_RETRIES: "0",
      };
      const hook = (args: string[] = [], extra: Record<string, string> = {}) =>
        inChroot(fs, ["/bin/sh", "/plugin/install-binary.sh", ...args], { ...env, ...extra });

      const install = await hook();
      assert.equal(install.code, 0, both(install));
      assert.match(install.stderr, new RegExp(`downloading ${mirror.url}/${MUSL}`));
      assert.match(install.stderr, new RegExp(`verified sha256 of ${MUSL}`));
      assert.match(install.stderr, /installed helm-lock .* to \/plugin\/bin\/helm-lock/);
      const version = await inChroot(fs, ["/plugin/bin/helm-lock", "--version"], env);
      assert.equal(version.code, 0, both(version));
      assert.equal(version.stdout, `helm-lock ${VERSION}\n`);
      assert.ok(await exists(join(fs, "plugin", "bin", RUNTIME_DIR, "NOTICE")));

      // helm's watchdog is helm-lock started again through the launcher (its own executable is
      // the glibc loader here). A locked run starts it before taking the lock; this one ends at
      // the refusing API server, with nothing but its own error on stderr.
      await Deno.writeTextFile(
        join(fs, "root", "kubeconfig"),
        JSON.stringify({
          clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:9" } }],
          users: [{ name: "u", user: { token: "t" } }],
          contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
          "current-context": "c",
        }),
      );
      const locked = await inChroot(
        fs,
        ["/plugin/bin/helm-lock", "upgrade", "app", "/opt", "--kubeconfig", "/root/kubeconfig"],
        { ...env, HELM_BIN: "/bin/true" },
      );
      assert.equal(locked.code, 6, both(locked));
      assert.match(locked.stderr, /^helm-lock: Cannot reach the Kubernetes API server [^\n]*\n$/);
      // The watchdog itself, as the run starts it: at the end of its input it stops the helm it
      // was given.
      const watchdog = await inChroot(fs, [
        "/bin/sh",
        "-c",
        "sleep 30 & printf '+%s\\n' $! | /plugin/bin/helm-lock; wait $!; echo \"sleep: $?\"",
      ], { ...env, HELM_LOCK_INTERNAL_WATCHDOG: "1" });
      assert.match(watchdog.stderr, /helm-lock is gone: stopping helm \(pid \d+\) with SIGTERM/);
      assert.equal(watchdog.stdout, "sleep: 143\n", both(watchdog));

      // An archive whose loader bundle is missing: the update fails saying so, and keeps the
      // working install.
      const broken = join(work, "broken");
      await Deno.mkdir(join(broken, RUNTIME_DIR), { recursive: true });
      await Deno.writeTextFile(join(broken, "helm-lock"), muslLauncher(target, STAND_IN), {
        mode: 0o755,
      });
      await Deno.writeTextFile(join(broken, RUNTIME_DIR, "helm-lock"), "not a binary\n");
      for (const [n, d] of await release(MUSL, await tarOf(broken, ["helm-lock", RUNTIME_DIR]))) {
        mirror.files.set(n, d);
      }
      const update = await hook(["-u"]);
      assert.equal(update.code, 1, both(update));
      assert.match(
        update.stderr,
        new RegExp(
          `helm-lock: error: Cannot start helm-lock on this system: expected 'helm-lock ${VERSION}' ` +
            `from 'helm-lock --version', found exit 127: helm-lock: error: Cannot start helm-lock: ` +
            `expected the glibc loader at .*, found none.*: the archive's glibc loader bundle ` +
            `\\(helm-lock\\.runtime/ld-linux-\\*\\) is missing: install an intact ${MUSL}`,
        ),
      );
      const still = await inChroot(fs, ["/plugin/bin/helm-lock", "--version"], env);
      assert.equal(still.stdout, `helm-lock ${VERSION}\n`, both(still));

      // The glibc build alone (no bundle), forced with HELM_LOCK_LIBC=gnu: the system lacks glibc.
      const gnu = join(work, "gnu");
      await Deno.mkdir(gnu);
      await Deno.copyFile("/bin/true", join(gnu, "helm-lock")); // any glibc executable
      const gnuName = archiveName(VERSION, findTarget(hostPlatform()));
      for (const [n, d] of await release(gnuName, await tarOf(gnu, ["helm-lock"]))) {
        mirror.files.set(n, d);
      }
      const plain = await hook(["-u"], { HELM_LOCK_LIBC: "gnu" });
      assert.equal(plain.code, 1, both(plain));
      assert.match(
        plain.stderr,
        new RegExp(
          `Cannot start helm-lock on this system: expected 'helm-lock ${VERSION}' from 'helm-lock ` +
            `--version', found exit 127: .*: this system has no glibc \\(no /lib.*/ld-linux-.*; ` +
            `musl libc, as on Alpine\\) and the archive brings none: install ${MUSL}`,
        ),
      );
      const left = (await Array.fromAsync(Deno.readDir(join(fs, "plugin", "bin")))).map((e) =>
        e.name
      ).sort();
      assert.deepEqual(left, ["helm-lock", RUNTIME_DIR]);
    } finally {
      await exec("rm", ["-rf", work]);
    }
  },
});
