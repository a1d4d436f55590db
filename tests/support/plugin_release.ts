/**
 * Fixtures for the plugin packaging tests: a copy of the plugin source to install from, a
 * release directory shaped like a GitHub release (archive + checksums.txt), and a loopback
 * HTTP mirror serving it the way `HELM_LOCK_DOWNLOAD_URL` expects.
 *
 * @module
 */
import { join } from "node:path";
import { formatChecksums } from "../../scripts/compile.ts";
import { PLUGIN_FILES } from "../../scripts/package_plugin.ts";
import { sha256Hex } from "../../scripts/_util.ts";
import { VERSION } from "../../lib/version.ts";

const root = new URL("../..", import.meta.url).pathname;

/** What a finished process printed and returned. */
export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args...` (no shell) to completion with `env` added to the environment. */
export async function exec(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; clearEnv?: boolean } = {},
): Promise<Output> {
  const out = await new Deno.Command(cmd, {
    args,
    env: options.env ?? {},
    clearEnv: options.clearEnv ?? false,
    cwd: options.cwd ?? root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** stdout then stderr: all a process said, for assertion messages and matches. */
export function both(out: Output): string {
  return out.stdout + out.stderr;
}

/** Download retries off: a refused download fails at once instead of after the retries. */
export const NO_RETRY = { HELM_LOCK_DOWNLOAD_RETRIES: "0" };

/** Runs the install hook as helm would: `sh install-binary.sh [args]` with HELM_PLUGIN_DIR set. */
export function hook(
  src: string,
  env: Record<string, string>,
  args: string[] = [],
): Promise<Output> {
  return exec("sh", [join(src, "install-binary.sh"), ...args], {
    env: { HELM_PLUGIN_DIR: src, ...env },
  });
}

/**
 * A stand-in `helm-lock` that answers `--version` as this build and otherwise prints `mark`:
 * for tests that only look at which file landed in bin/.
 */
export function fakeBinary(mark: string): string {
  return `#!/bin/sh\nif [ "$1" = --version ]; then echo "helm-lock ${VERSION}"; exit; fi\necho "${mark}"\n`;
}

/** Like {@linkcode exec}, but throws with the output when the command fails. */
export async function execOk(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Output> {
  const out = await exec(cmd, args, options);
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${out.code}:\n${out.stdout}${out.stderr}`);
  }
  return out;
}

/**
 * Copies the plugin source into `<parent>/helm-lock` and returns that path. Tests install
 * from a copy because a local install is a symlink, and the hook writes `bin/` into it.
 */
export async function copyPluginSource(parent: string): Promise<string> {
  const dir = join(parent, "helm-lock");
  await Deno.mkdir(dir);
  await execOk("cp", ["-R", ...PLUGIN_FILES.map((f) => join(root, f)), dir]);
  return dir;
}

/**
 * Makes `<parent>/helm-lock` a git clone of a bare repository `<parent>/remote/helm-lock`
 * holding the plugin source, as `helm plugin install <clone>` users have it: `helm plugin
 * update` works only on git checkouts whose remote is named like the plugin directory.
 */
export async function clonePluginSource(parent: string): Promise<string> {
  const work = await copyPluginSource(await Deno.makeTempDir({ prefix: "helm-lock-work-" }));
  const git = (args: string[], cwd: string) =>
    execOk("git", ["-c", "user.name=test", "-c", "user.email=test@example.com", ...args], {
      cwd,
    });
  await git(["init", "-q"], work);
  await git(["add", "."], work);
  await git(["commit", "-q", "-m", "plugin source"], work);
  const remote = join(parent, "remote", "helm-lock");
  await git(["clone", "-q", "--bare", work, remote], parent);
  const clone = join(parent, "helm-lock");
  await git(["clone", "-q", remote, clone], parent);
  await Deno.remove(work, { recursive: true });
  return clone;
}

/** This machine's archive suffix, as install-binary.sh detects it (`linux-amd64`). */
export function hostPlatform(): string {
  const arch = Deno.build.arch === "x86_64" ? "amd64" : "arm64";
  return `${Deno.build.os}-${arch}`;
}

/** The name install-binary.sh downloads on this machine. */
export function hostArchiveName(version = VERSION): string {
  return `helm-lock-${version}-${hostPlatform()}.tar.gz`;
}

/** The deno launcher install-binary.sh writes, made by running it in a scratch plugin copy. */
export async function makeLauncher(): Promise<string> {
  const scratch = await Deno.makeTempDir({ prefix: "helm-lock-launcher-" });
  try {
    const dir = await copyPluginSource(scratch);
    await execOk("sh", [join(dir, "install-binary.sh")], {
      env: { HELM_PLUGIN_DIR: dir, HELM_LOCK_FROM_SOURCE: "1" },
    });
    return await Deno.readTextFile(join(dir, "bin", "helm-lock"));
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

/** A tar.gz holding one executable `helm-lock` with `content`. */
export async function tarGz(content: string): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "helm-lock-archive-" });
  try {
    await Deno.writeTextFile(join(dir, "helm-lock"), content, { mode: 0o755 });
    await Deno.chmod(join(dir, "helm-lock"), 0o755);
    await execOk("tar", ["-czf", join(dir, "a.tar.gz"), "-C", dir, "helm-lock"]);
    return await Deno.readFile(join(dir, "a.tar.gz"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Release files for this machine: `{archive name → tar.gz of binary, checksums.txt}`.
 * `tamper` changes the archive after its checksum was taken.
 */
export async function releaseFiles(
  binary: string,
  options: { tamper?: boolean; version?: string } = {},
): Promise<Map<string, Uint8Array>> {
  const name = hostArchiveName(options.version);
  const archive = await tarGz(binary);
  const sums = formatChecksums(new Map([[name, await sha256Hex(archive)]]));
  const served = options.tamper ? await tarGz(`${binary}\n# tampered\n`) : archive;
  return new Map([[name, served], ["checksums.txt", new TextEncoder().encode(sums)]]);
}

/** Writes release files into `dir` (as an air-gapped user would copy them). */
export async function writeRelease(dir: string, files: Map<string, Uint8Array>): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, data] of files) await Deno.writeFile(join(dir, name), data);
}

/** A loopback HTTP mirror: `files` (mutable) served under `url`, anything else 404. */
export interface Mirror extends AsyncDisposable {
  /** Base URL to put in `HELM_LOCK_DOWNLOAD_URL`, e.g. `http://127.0.0.1:4711/v0.1.0`. */
  url: string;
  files: Map<string, Uint8Array>;
  /** Paths requested so far. */
  requests: string[];
  /** Per file name, how many more requests get a 503 before the file is served. */
  flaky: Map<string, number>;
}

/** Serves `files` on 127.0.0.1 on a free port under `/v<version>/`. */
export function serveMirror(files: Map<string, Uint8Array>): Mirror {
  const requests: string[] = [];
  const flaky = new Map<string, number>();
  const prefix = `/v${VERSION}/`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const name = path.startsWith(prefix) ? path.slice(prefix.length) : "";
    const failures = flaky.get(name) ?? 0;
    if (failures > 0) {
      flaky.set(name, failures - 1);
      return new Response("try again\n", { status: 503 });
    }
    const data = files.get(name);
    if (data === undefined) return new Response("not found\n", { status: 404 });
    return new Response(data as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": "application/octet-stream" },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v${VERSION}`,
    files,
    requests,
    flaky,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** Environment that keeps helm's plugin directories inside `home` (Helm 4 ignores HELM_PLUGINS
 * for installs and uses `$HELM_DATA_HOME/plugins`, so both point there). */
export function pluginHome(home: string): Record<string, string> {
  return {
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_DATA_HOME: join(home, "data"),
    HELM_PLUGINS: join(home, "data", "plugins"),
  };
}

/** The path of `tool` on PATH, or `undefined`. */
export async function which(tool: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    try {
      const info = await Deno.stat(join(dir, tool));
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return join(dir, tool);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return undefined;
}
