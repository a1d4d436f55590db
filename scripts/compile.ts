// deno-lint-ignore-file no-console
/**
 * `deno task compile`: builds the release archives of helm-lock with `deno compile`.
 *
 *     deno task compile [--target <name>]... [--out <dir>] [--checksums-only]
 *
 * For each target (default: all five) it writes `<out>/helm-lock-<version>-<os>-<arch>.tar.gz`
 * (`.zip` for Windows) holding the one executable, then `<out>/checksums.txt` in `sha256sum`
 * format over every `helm-lock-*` archive in `<out>` (so release jobs that build one target
 * each can merge their archives and run `--checksums-only`). `install-binary.sh` downloads
 * exactly these names.
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
}

/** The five release targets. */
export const TARGETS: readonly Target[] = [
  { triple: "x86_64-unknown-linux-gnu", os: "linux", arch: "amd64" },
  { triple: "aarch64-unknown-linux-gnu", os: "linux", arch: "arm64" },
  { triple: "x86_64-apple-darwin", os: "darwin", arch: "amd64" },
  { triple: "aarch64-apple-darwin", os: "darwin", arch: "arm64" },
  { triple: "x86_64-pc-windows-msvc", os: "windows", arch: "amd64" },
];

/** Permissions baked into the executable: the same set the deno launcher passes. */
export const PERMISSIONS: readonly string[] = [
  "--no-prompt",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-read",
  "--allow-sys",
];

/** Seconds to wait for dl.deno.land before declaring it unreachable. @default 15 */
const PROBE_TIMEOUT_S = 15;
/** Seconds one `deno compile` may take before it is killed. @default 600 */
const COMPILE_TIMEOUT_S = 600;

/** The release archive name of `version` for `target`, e.g. `helm-lock-0.1.0-linux-amd64.tar.gz`. */
export function archiveName(version: string, target: Target): string {
  const ext = target.os === "windows" ? "zip" : "tar.gz";
  return `helm-lock-${version}-${target.os}-${target.arch}.${ext}`;
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
  const found = TARGETS.find((t) => t.triple === name || `${t.os}-${t.arch}` === name);
  if (found === undefined) {
    const known = TARGETS.map((t) => `${t.os}-${t.arch}`).join(", ");
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

async function compileTarget(target: Target, outDir: string): Promise<string> {
  const stage = await Deno.makeTempDir({ prefix: "helm-lock-compile-" });
  try {
    const exe = target.os === "windows" ? "helm-lock.exe" : "helm-lock";
    await run(Deno.execPath(), [
      "compile",
      "--quiet",
      "--target",
      target.triple,
      "--output",
      `${stage}/${exe}`,
      ...PERMISSIONS,
      "main.ts",
    ], COMPILE_TIMEOUT_S);
    const archive = `${outDir}/${archiveName(VERSION, target)}`;
    await Deno.remove(archive).catch(() => {});
    if (target.os === "windows") {
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
      await assertDenortReachable(target, dir === undefined ? {} : { denoDir: dir });
    }
    await Deno.mkdir(outDir, { recursive: true });
    for (const target of targets) {
      console.error(`compile: ${target.triple}`);
      console.error(`compile: wrote ${await compileTarget(target, outDir)}`);
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
