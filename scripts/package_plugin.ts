// deno-lint-ignore-file no-console
/**
 * `deno task package-plugin`: the signed Helm 4 plugin package of a release.
 *
 *     deno task package-plugin --key <name> --keyring <secret keyring> [--passphrase-file <file>]
 *                              [--out <dir>]
 *
 * Copies the files the plugin needs ({@linkcode PLUGIN_FILES}) into a scratch directory and runs
 * `helm plugin package --sign` there with Helm 4 (`$HELM_BIN`, else `helm` on PATH), writing
 * `<out>/lock-<version>.tgz` and `<out>/lock-<version>.tgz.prov`. Helm names the package after
 * the plugin (`lock`) and the `.prov` lists that file name, so the name stays: a renamed package
 * fails verification. `--keyring` is a keyring file holding the secret key (Helm reads the
 * classic format: `gpg --export-secret-keys <name> > secring.gpg`).
 *
 * @module
 */
import { join } from "node:path";
import { VERSION } from "../lib/version.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The repository files an installed plugin needs (the deno launcher needs the sources). */
export const PLUGIN_FILES: readonly string[] = [
  "plugin.yaml",
  "completion.yaml",
  "plugin.complete",
  "install-binary.sh",
  "main.ts",
  "deno.json",
  "deno.lock",
  "lib",
  ".gitignore",
];

/** The file names `helm plugin package` writes for `version`. */
export function packageNames(version: string = VERSION): { tgz: string; prov: string } {
  return { tgz: `lock-${version}.tgz`, prov: `lock-${version}.tgz.prov` };
}

/** What {@linkcode packagePlugin} needs. */
export interface PackageOptions {
  /** Helm 4 executable. */
  helm: string;
  /** Directory the package and its `.prov` are written to. */
  out: string;
  /** Name (or part of it) of the signing key. */
  key: string;
  /** Keyring file holding the secret key. */
  keyring: string;
  /** File holding the key's passphrase, when it has one. */
  passphraseFile?: string;
  /** Environment for helm (tests keep helm's own directories apart). */
  env?: Record<string, string>;
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `Cannot package the plugin: '${cmd} ${args.join(" ")}' exited ${out.code}: ${text.trim()}`,
    );
  }
  return text;
}

/**
 * Stages the plugin and signs its package with Helm 4.
 *
 * @returns the paths of the `.tgz` and the `.prov`
 * @throws {Error} when helm is not Helm 4 or `helm plugin package` fails
 */
export async function packagePlugin(
  options: PackageOptions,
): Promise<{ tgz: string; prov: string }> {
  const helmVersion =
    (await run(options.helm, ["version", "--template", "{{.Version}}"], options.env))
      .trim();
  if (!helmVersion.startsWith("v4.")) {
    throw new Error(
      `Cannot package the plugin with helm ${helmVersion}: expected Helm 4, whose 'helm plugin ` +
        `package --sign' writes the provenance file Helm 4 verifies`,
    );
  }
  const stage = await Deno.makeTempDir({ prefix: "helm-lock-package-" });
  try {
    const dir = join(stage, "lock");
    await Deno.mkdir(dir);
    await run("cp", ["-R", ...PLUGIN_FILES.map((f) => join(ROOT, f)), dir]);
    await Deno.mkdir(options.out, { recursive: true });
    await run(options.helm, [
      "plugin",
      "package",
      dir,
      "--sign",
      "--key",
      options.key,
      "--keyring",
      options.keyring,
      ...(options.passphraseFile ? ["--passphrase-file", options.passphraseFile] : []),
      "--destination",
      options.out,
    ], options.env);
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
  const names = packageNames();
  return { tgz: join(options.out, names.tgz), prov: join(options.out, names.prov) };
}

function parseArgs(args: string[]): Omit<PackageOptions, "helm"> {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i]!, args[i + 1]];
    if (!["--key", "--keyring", "--passphrase-file", "--out"].includes(flag)) {
      throw new TypeError(
        `Cannot parse argument '${flag}': expected --key, --keyring, --passphrase-file or --out`,
      );
    }
    if (value === undefined) throw new TypeError(`Cannot parse ${flag}: expected a value after it`);
    values.set(flag, value);
  }
  const key = values.get("--key");
  const keyring = values.get("--keyring");
  if (key === undefined || keyring === undefined) {
    throw new TypeError(
      "Cannot sign the plugin package: expected --key <name> and --keyring <file>",
    );
  }
  const passphraseFile = values.get("--passphrase-file");
  return {
    key,
    keyring,
    out: values.get("--out") ?? "dist",
    ...(passphraseFile === undefined ? {} : { passphraseFile }),
  };
}

if (import.meta.main) {
  try {
    const options = { helm: Deno.env.get("HELM_BIN") ?? "helm", ...parseArgs(Deno.args) };
    const { tgz, prov } = await packagePlugin(options);
    console.error(`package-plugin: wrote ${tgz} and ${prov}`);
  } catch (error) {
    console.error(
      `package-plugin: error: ${error instanceof Error ? error.message : String(error)}`,
    );
    Deno.exit(1);
  }
}
