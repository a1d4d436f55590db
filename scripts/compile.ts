// deno-lint-ignore-file no-console
/**
 * `deno task compile`: builds the release archives of helm-lock with `deno compile`.
 *
 *     deno task compile [--target <name>]... [--out <dir>] [--checksums-only]
 *
 * For each target (default: all seven) it writes `<out>/helm-lock-<version>-<os>-<arch>.tar.gz`
 * (`.zip` for Windows) holding the one executable, then `<out>/checksums.txt` in `sha256sum`
 * format over every `helm-lock-*` archive in `<out>` (so release jobs that build one target
 * each can merge their archives and run `--checksums-only`). `install-binary.sh` downloads
 * exactly these names.
 *
 * Deno publishes no musl build, so `linux-<arch>-musl` (Alpine) is the glibc build plus the
 * glibc loader and the few libraries it needs, taken from the build host, with a launcher that
 * starts it through that loader (see {@linkcode muslLauncher}); it must be built on a glibc
 * Linux host of the same architecture.
 *
 * Before anything is published, every archive the build host can run is unpacked and run
 * (`--version`, `--help`): a binary that cannot start fails the build (smoke test).
 *
 * `deno compile` for another platform downloads that platform's `denort` from dl.deno.land.
 * Where that host is unreachable, compiling used to mean a hang or a late failure; this script
 * probes first, with a timeout, and fails at once with a message naming the URL. Set
 * `DENORT_BIN` (a `denort` for the host target, honoured by `deno compile`) to skip the probe.
 *
 * @module
 */

import { resolve } from "node:path";
import { VERSION } from "../lib/version.ts";
import { exists, sha256File } from "./_util.ts";

/** The repository root: `deno compile` runs there, so it finds deno.json and deno.lock. */
const ROOT = new URL("..", import.meta.url).pathname;

/** A platform helm-lock is released for. */
export interface Target {
  /** Rust target triple, as `deno compile --target` takes it. */
  triple: string;
  /** Operating system name in archive names (helm's own naming: `linux-amd64`). */
  os: "linux" | "darwin" | "windows";
  /** CPU architecture name in archive names. */
  arch: "amd64" | "arm64";
  /** `musl`: for Linux without glibc, carrying glibc's loader (archive suffix `-musl`). */
  libc?: "musl";
}

/** The seven release targets. */
export const TARGETS: readonly Target[] = [
  { triple: "x86_64-unknown-linux-gnu", os: "linux", arch: "amd64" },
  { triple: "aarch64-unknown-linux-gnu", os: "linux", arch: "arm64" },
  { triple: "x86_64-unknown-linux-gnu", os: "linux", arch: "amd64", libc: "musl" },
  { triple: "aarch64-unknown-linux-gnu", os: "linux", arch: "arm64", libc: "musl" },
  { triple: "x86_64-apple-darwin", os: "darwin", arch: "amd64" },
  { triple: "aarch64-apple-darwin", os: "darwin", arch: "arm64" },
  { triple: "x86_64-pc-windows-msvc", os: "windows", arch: "amd64" },
];

/** A target's name in archive names and on the command line: `linux-amd64-musl`. */
export function targetName(target: Target): string {
  return `${target.os}-${target.arch}${target.libc ? `-${target.libc}` : ""}`;
}

/** glibc's dynamic loader on `arch`, as the glibc build names it in its program header. */
export function glibcLoaderName(arch: Target["arch"]): string {
  return arch === "amd64" ? "ld-linux-x86-64.so.2" : "ld-linux-aarch64.so.1";
}

/** The directory beside the musl launcher holding the glibc build, loader and libraries. */
export const RUNTIME_DIR = "helm-lock.runtime";

/** Permissions baked into the executable: the same set the deno launcher passes. */
export const PERMISSIONS: readonly string[] = [
  "--no-prompt",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-read",
  "--allow-sys",
  // Only for helm's client-go cache of a fenced run (lib/fence/kube_cache.ts).
  "--allow-write=/tmp",
];

/** `deno compile`'s arguments for `triple`, writing the executable to `output`. */
export function compileArgs(triple: string, output: string): string[] {
  return [
    "compile",
    "--quiet",
    "--target",
    triple,
    "--output",
    output,
    ...PERMISSIONS,
    // Imported by URL (lib/kube/auth.ts), which deno compile does not follow by itself.
    "--include",
    "lib/kube/client_node.ts",
    "main.ts",
  ];
}

/** Seconds to wait for dl.deno.land before declaring it unreachable. @default 15 */
const PROBE_TIMEOUT_S = 15;
/** Seconds one `deno compile` may take before it is killed. @default 600 */
const COMPILE_TIMEOUT_S = 600;

/** The release archive name of `version` for `target`, e.g. `helm-lock-0.1.0-linux-amd64.tar.gz`. */
export function archiveName(version: string, target: Target): string {
  const ext = target.os === "windows" ? "zip" : "tar.gz";
  return `helm-lock-${version}-${targetName(target)}.${ext}`;
}

/** Where `deno compile` downloads the runtime for `triple`. */
export function denortUrl(denoVersion: string, triple: string): string {
  return `https://dl.deno.land/release/v${denoVersion}/denort-${triple}.zip`;
}

/** `checksums.txt` content in `sha256sum` format (two spaces), sorted by file name. */
export function formatChecksums(sums: ReadonlyMap<string, string>): string {
  return [...sums].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([name, hash]) => `${hash}  ${name}\n`).join("");
}

/** Finds a target by triple (`x86_64-apple-darwin`) or archive name (`darwin-amd64`). */
export function findTarget(name: string): Target {
  const found = TARGETS.find((t) => (t.triple === name && !t.libc) || targetName(t) === name);
  if (found === undefined) {
    const known = TARGETS.map(targetName).join(", ");
    throw new TypeError(`Cannot compile for target '${name}': expected one of ${known}`);
  }
  return found;
}

/**
 * Fails fast when `deno compile` could not download denort for `target`: passes when it is
 * cached in `options.denoDir` or `DENORT_BIN` is set, else probes `options.url` (default: the
 * download URL) with a HEAD request bounded by `options.timeoutMs` (default 15 s).
 *
 * @throws {Error} naming the URL and the cause when dl.deno.land does not answer in time
 */
export async function assertDenortReachable(
  target: Target,
  options: { timeoutMs?: number; denoDir?: string; url?: string } = {},
): Promise<void> {
  if (Deno.env.get("DENORT_BIN")) return;
  const url = options.url ?? denortUrl(Deno.version.deno, target.triple);
  if (options.denoDir !== undefined) {
    const cached =
      `${options.denoDir}/dl/release/v${Deno.version.deno}/denort-${target.triple}.zip`;
    if (await exists(cached)) return;
  }
  let cause: unknown;
  try {
    const res = await fetch(url, {
      method: "HEAD",
      signal: AbortSignal.timeout(options.timeoutMs ?? PROBE_TIMEOUT_S * 1000),
    });
    await res.body?.cancel();
    if (res.ok) return;
    cause = new Error(`HTTP ${res.status}`);
  } catch (error) {
    cause = error;
  }
  const why = describe(cause);
  throw new Error(
    `Cannot compile for ${target.triple}: deno compile needs denort from ${url}, which is ` +
      `unreachable (${why}): run 'deno task compile' where dl.deno.land is reachable, such as ` +
      `the release workflow, or set DENORT_BIN to a local denort for the host target`,
    { cause },
  );
}

// fetch's own message is a bare "fetch failed"; the reason (DNS, refused, timeout) is in `cause`.
function describe(error: unknown): string {
  const messages: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages.at(-1) ?? String(error);
}

async function run(cmd: string, args: string[], timeoutS: number): Promise<void> {
  const child = new Deno.Command(cmd, { args, cwd: ROOT, stdin: "null" }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // It exited meanwhile.
    }
  }, timeoutS * 1000);
  try {
    const status = await child.status;
    if (!status.success) {
      const how = status.signal ? `was killed after ${timeoutS}s` : `exited ${status.code}`;
      throw new Error(`Cannot build release archives: '${cmd} ${args.join(" ")}' ${how}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The launcher at the top of a musl archive: starts `helm-lock.runtime/helm-lock` (the glibc
 * build) through the glibc loader beside it, with the libraries beside it, so nothing of the
 * system's C library is used; it resolves symbolic links to itself, so a link on PATH works.
 * `standIn` are arguments put before the user's (tests, where deno stands in for denort,
 * pass `run` and a script); each is emitted in double quotes, so `$rt` names the runtime dir.
 */
export function muslLauncher(target: Target, standIn: readonly string[] = []): string {
  const loader = glibcLoaderName(target.arch);
  const extra = standIn.map((a) => ` "${a}"`).join("");
  return `#!/bin/sh
# helm-lock for Linux without glibc (musl, as on Alpine), written by scripts/compile.ts: starts
# the glibc build in ${RUNTIME_DIR}/ through the glibc loader shipped beside it, so the
# system's C library is never used. Licences: ${RUNTIME_DIR}/NOTICE.
self=$0
while [ -L "$self" ]; do
  link=$(readlink "$self")
  case $link in
    /*) self=$link ;;
    *) self=$(dirname -- "$self")/$link ;;
  esac
done
here=$(CDPATH='' cd -- "$(dirname -- "$self")" && pwd) || exit 1
rt=$here/${RUNTIME_DIR}
if [ ! -f "$rt/${loader}" ]; then
  printf 'helm-lock: error: Cannot start helm-lock: expected the glibc loader at %s, found none: reinstall helm-lock from helm-lock-<version>-${
    targetName(target)
  }.tar.gz\\n' "$rt/${loader}" >&2
  exit 127
fi
# How helm-lock starts itself again (its watchdog): it sees the loader as its own executable.
HELM_LOCK_LAUNCHER=$here/$(basename -- "$self")
export HELM_LOCK_LAUNCHER
exec "$rt/${loader}" --library-path "$rt" "$rt/helm-lock"${extra} "$@"
`;
}

async function output(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `Cannot build the musl runtime: '${cmd} ${args.join(" ")}' exited ${out.code}: ` +
        new TextDecoder().decode(out.stderr).trim(),
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** The host's shared libraries `binary` loads, by file name (the loader first), via glibc's loader. */
export async function glibcLibraries(binary: string, arch: Target["arch"]): Promise<string[]> {
  const hostArch = Deno.build.arch === "x86_64" ? "amd64" : "arm64";
  if (Deno.build.os !== "linux" || hostArch !== arch) {
    throw new Error(
      `Cannot build linux-${arch}-musl on ${Deno.build.os}-${hostArch}: expected a glibc Linux ` +
        `${arch} build host, whose glibc loader and libraries the archive carries`,
    );
  }
  const loader = arch === "amd64" ? "/lib64/ld-linux-x86-64.so.2" : "/lib/ld-linux-aarch64.so.1";
  const listed = await output(loader, ["--list", binary]);
  const libs = [...listed.matchAll(/=> (\/\S+)/g)].map((m) => m[1]!);
  return [loader, ...libs];
}

/** Licence files of the host's glibc and libgcc, copied into the runtime directory. */
const NOTICE_FILES: ReadonlyArray<readonly [from: string, to: string]> = [
  ["/usr/share/common-licenses/LGPL-2.1", "COPYING.LIB"],
  ["/usr/share/doc/libc6/copyright", "copyright.glibc"],
  ["/usr/share/doc/libgcc-s1/copyright", "copyright.libgcc"],
];

function notice(target: Target, glibc: string, libs: readonly string[]): string {
  return `helm-lock for Linux without glibc (${targetName(target)})

This directory holds the glibc build of helm-lock (helm-lock) with the GNU C Library's
dynamic loader and the shared libraries it needs, copied unmodified from the build host's
distribution (${glibc}), so that helm-lock starts on systems whose C library is musl. The
launcher ../helm-lock runs "${glibcLoaderName(target.arch)} --library-path <this directory>
helm-lock ARGS"; nothing else on the system uses these libraries. Files:
${libs.map((l) => `  ${l}`).join("\n")}

The GNU C Library (the loader, libc, libm, libdl, libpthread, librt) is free software under
the GNU Lesser General Public License, version 2.1 or later: COPYING.LIB; copyright notices:
copyright.glibc. Its complete source code is published by the build host's distribution for
the version above, and by the GNU project at https://www.gnu.org/software/libc/. You may
replace these libraries with any compatible build of your own.

libgcc_s.so.1 (GCC's runtime library) is under the GNU General Public License, version 3,
with the GCC Runtime Library Exception: copyright.libgcc.
`;
}

/** Options of {@linkcode writeMuslArchive}: for tests, where deno stands in for denort. */
export interface MuslArchiveOptions {
  /** Arguments the launcher puts before the user's (see {@linkcode muslLauncher}). */
  standIn?: readonly string[];
  /** More files for the runtime directory: name → path on the build host. */
  extraFiles?: Readonly<Record<string, string>>;
}

/**
 * Writes a musl archive at `archive`: the launcher `helm-lock` and `helm-lock.runtime/` with
 * `binary` (the glibc build, as `helm-lock`), the host's glibc loader and the libraries
 * `binary` needs, and the licence notices.
 */
export async function writeMuslArchive(
  binary: string,
  archive: string,
  target: Target,
  options: MuslArchiveOptions = {},
): Promise<void> {
  const libs = await glibcLibraries(binary, target.arch);
  const stage = await Deno.makeTempDir({ prefix: "helm-lock-musl-" });
  try {
    const rt = `${stage}/${RUNTIME_DIR}`;
    await Deno.mkdir(rt);
    const names: string[] = [];
    for (const lib of libs) {
      const name = lib.slice(lib.lastIndexOf("/") + 1);
      await Deno.copyFile(await Deno.realPath(lib), `${rt}/${name}`);
      names.push(name);
    }
    await Deno.copyFile(binary, `${rt}/helm-lock`);
    await Deno.chmod(`${rt}/helm-lock`, 0o755);
    for (const [name, from] of Object.entries(options.extraFiles ?? {})) {
      await Deno.copyFile(from, `${rt}/${name}`);
    }
    for (const [from, to] of NOTICE_FILES) {
      if (!await exists(from)) {
        throw new Error(
          `Cannot build ${targetName(target)}: expected the licence file ${from} on the build ` +
            `host (Debian or Ubuntu), found none: the archive must carry glibc's licence notice`,
        );
      }
      await Deno.copyFile(from, `${rt}/${to}`);
    }
    const glibc = (await output(libs[0]!, ["--version"])).split("\n")[0]!.trim();
    await Deno.writeTextFile(`${rt}/NOTICE`, notice(target, glibc, names));
    await Deno.writeTextFile(`${stage}/helm-lock`, muslLauncher(target, options.standIn));
    await Deno.chmod(`${stage}/helm-lock`, 0o755);
    await Deno.remove(archive).catch(() => {});
    await run("tar", ["-czf", archive, "-C", stage, "helm-lock", RUNTIME_DIR], 300);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

/** Whether the build host can run `target`'s binaries (then they are smoke-tested). */
export function runnableHere(target: Target): boolean {
  const arch = Deno.build.arch === "x86_64" ? "amd64" : "arm64";
  return target.os === Deno.build.os && target.arch === arch;
}

/**
 * Unpacks `archive` and runs its helm-lock with `--version` and `--help`: both must exit 0,
 * the first printing exactly `helm-lock <version>`.
 *
 * @throws {Error} naming the archive, the command and what it printed
 */
export async function smokeTest(archive: string, version: string = VERSION): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "helm-lock-smoke-" });
  const name = archive.slice(archive.lastIndexOf("/") + 1);
  try {
    if (archive.endsWith(".zip")) await run("unzip", ["-q", archive, "-d", dir], 120);
    else await run("tar", ["-xzf", archive, "-C", dir], 120);
    const exe = await exists(`${dir}/helm-lock.exe`) ? "helm-lock.exe" : "helm-lock";
    const checks: Array<[string, (out: string) => boolean, string]> = [
      ["--version", (out) => out.trim() === `helm-lock ${version}`, `'helm-lock ${version}'`],
      ["--help", (out) => out.startsWith(`helm-lock ${version}:`), `help for ${version}`],
    ];
    for (const [flag, ok, expected] of checks) {
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(`${dir}/${exe}`, {
          args: [flag],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
      } catch (error) {
        throw new Error(
          `Cannot publish ${name}: expected 'helm-lock ${flag}' to start, found: ${
            error instanceof Error ? error.message : String(error)
          }`,
          { cause: error },
        );
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const out = await child.output().finally(() => clearTimeout(timer));
      const stdout = new TextDecoder().decode(out.stdout);
      if (out.code !== 0 || !ok(stdout)) {
        const said = (stdout + new TextDecoder().decode(out.stderr)).trim().split("\n")
          .slice(0, 3).join(" | ");
        throw new Error(
          `Cannot publish ${name}: expected 'helm-lock ${flag}' to exit 0 with ${expected}, ` +
            `found exit ${out.code}${out.signal ? ` (${out.signal})` : ""}: ${said || "no output"}`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function compileTarget(target: Target, outDir: string): Promise<string> {
  const stage = await Deno.makeTempDir({ prefix: "helm-lock-compile-" });
  try {
    const exe = target.os === "windows" ? "helm-lock.exe" : "helm-lock";
    await run(Deno.execPath(), compileArgs(target.triple, `${stage}/${exe}`), COMPILE_TIMEOUT_S);
    const archive = `${outDir}/${archiveName(VERSION, target)}`;
    await Deno.remove(archive).catch(() => {});
    if (target.libc === "musl") {
      await writeMuslArchive(`${stage}/${exe}`, archive, target);
    } else if (target.os === "windows") {
      await run("zip", ["-q", "-j", archive, `${stage}/${exe}`], 120);
    } else {
      await run("tar", ["-czf", archive, "-C", stage, exe], 120);
    }
    return archive;
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

/** Writes `<outDir>/checksums.txt` over every release archive in `outDir`. */
export async function writeChecksums(outDir: string): Promise<string> {
  const sums = new Map<string, string>();
  for await (const entry of Deno.readDir(outDir)) {
    if (entry.isFile && /^helm-lock-.*\.(tar\.gz|zip)$/.test(entry.name)) {
      sums.set(entry.name, await sha256File(`${outDir}/${entry.name}`));
    }
  }
  const path = `${outDir}/checksums.txt`;
  await Deno.writeTextFile(path, formatChecksums(sums));
  return path;
}

async function denoDir(): Promise<string | undefined> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" })
    .output();
  if (!out.success) return undefined;
  const info: unknown = JSON.parse(new TextDecoder().decode(out.stdout));
  const dir = (info as { denoDir?: unknown }).denoDir;
  return typeof dir === "string" ? dir : undefined;
}

function parseArgs(args: string[]): { targets: Target[]; outDir: string; checksumsOnly: boolean } {
  const targets: Target[] = [];
  let outDir = "dist";
  let checksumsOnly = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new TypeError(`Cannot parse ${arg}: expected a value after it`);
      return v;
    };
    if (arg === "--target") targets.push(findTarget(value()));
    else if (arg === "--out") outDir = value();
    else if (arg === "--checksums-only") checksumsOnly = true;
    else {
      throw new TypeError(
        `Cannot parse argument '${arg}': expected --target <name>, --out <dir> or --checksums-only`,
      );
    }
  }
  return {
    targets: targets.length > 0 ? targets : [...TARGETS],
    outDir: resolve(outDir),
    checksumsOnly,
  };
}

async function main(args: string[]): Promise<void> {
  const { targets, outDir, checksumsOnly } = parseArgs(args);
  if (!checksumsOnly) {
    const dir = await denoDir();
    // Probe every target before compiling any, so an unreachable host costs seconds, not builds.
    for (const target of targets) {
      if (target.libc === "musl" && !runnableHere(target)) {
        await glibcLibraries("", target.arch); // throws: the host's glibc cannot be carried
      }
      await assertDenortReachable(target, dir === undefined ? {} : { denoDir: dir });
    }
    await Deno.mkdir(outDir, { recursive: true });
    for (const target of targets) {
      console.error(`compile: ${targetName(target)} (${target.triple})`);
      const archive = await compileTarget(target, outDir);
      console.error(`compile: wrote ${archive}`);
      if (runnableHere(target)) {
        await smokeTest(archive);
        console.error(`compile: smoke test passed: helm-lock --version, --help`);
      } else {
        console.error(`compile: not smoke-tested: this host cannot run ${targetName(target)}`);
      }
    }
  }
  console.error(`compile: wrote ${await writeChecksums(outDir)}`);
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (error) {
    console.error(`compile: error: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
