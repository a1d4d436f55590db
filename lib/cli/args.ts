/**
 * The command line of `helm lock` / `helm-lock` (README, Usage): our `--lock-*` flags are taken
 * out wherever they stand before a lone `--`; the rest reaches helm verbatim. The release is the
 * first positional after the command, read with helm's flag tables as pflag reads them
 * (`lib/helm/argv.ts`). A command that changes no release passes through, without a lock.
 *
 * @module
 */

import type { ClusterFlags } from "../kube/cluster_flags.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { canonicalCommand, type FlagUse, parseBool, scanHelmArgs } from "../helm/argv.ts";
import { flagTable, isGlobalFlag, LOCKABLE_COMMANDS, type LockableCommand } from "../helm/flags.ts";
import { MASK, redactArgs, redactCommandLine, secretArgs } from "../redact.ts";
import {
  applyLockFlag,
  defaultLockSettings,
  LOCK_FLAG_TABLE,
  type LockSettings,
  lockSettingsFromEnv,
  withoutLockFlags,
} from "./lock_flags.ts";

/**
 * How helm-lock was invoked, so a command a message quotes runs as written: `helm lock` as the
 * plugin (`HELM_BIN` alone says nothing: users set it for the standalone binary too).
 */
export function programName(env: Record<string, string | undefined> = Deno.env.toObject()): string {
  return env.HELM_PLUGIN_DIR && env.HELM_PLUGIN_NAME === "lock" ? "helm lock" : "helm-lock";
}

/** helm-lock's own commands, named so that no helm command (3 or 4) has the name. */
const SUBCOMMANDS = ["lock-status", "lock-list", "lock-unlock", "lock-completion"] as const;
export type Subcommand = typeof SUBCOMMANDS[number];

/** What the command line asks for; `passthrough` runs helm without a lock. */
export type ParsedArgs =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "passthrough"; helmArgs: string[] }
  | { kind: "run"; invocation: Invocation }
  | { kind: "subcommand"; name: Subcommand; args: string[] }
  | { kind: "complete"; words: string[] };

/** A helm command to run under the lock. */
export interface Invocation extends LockSettings {
  command: LockableCommand;
  release: string;
  /** The chart of `install` and `upgrade`, when given. */
  chart?: string;
  /** The argv for helm, verbatim and in order, with only helm-lock's `--lock-*` flags removed. */
  helmArgs: string[];
  cluster: ClusterFlags;
  /** Helm's global flags from `helmArgs`, for helm-lock's own helm calls (`-in p` as `-n p`). */
  globalArgs: string[];
  /** Whether the command can create the release: `install`, or `upgrade -i/--install`. */
  install: boolean;
  debug: boolean;
  createNamespace: boolean;
  /** `--dry-run` given (any value but `false`/`none`): helm-lock then changes nothing itself. */
  dryRun: boolean;
}

const USAGE = "<HELM_COMMAND> <RELEASE_NAME> [CHART] [FLAGS]";
const COMMAND_USAGE: Readonly<Record<LockableCommand, string>> = {
  install: "install <release> <chart>",
  upgrade: "upgrade <release> <chart>",
  rollback: "rollback <release> [revision]",
  uninstall: "uninstall <release>",
  test: "test <release>",
};
// chartutil.ValidateReleaseName in Helm 3.17 and 4.1.
const RELEASE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_RELEASE_NAME = 53;

/**
 * Parses the command line of helm-lock (`Deno.args`).
 *
 * @param program How the user invoked helm-lock, for messages. @default {programName()}
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} when the command line cannot be used.
 */
export function parseArgs(
  argv: readonly string[],
  program: string = programName(),
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ParsedArgs {
  // A quoted positional may be the value of a secret flag our tables do not know (`--token x`).
  let hidden: Set<string> | undefined;
  const quote = (token: string) =>
    JSON.stringify((hidden ??= secretArgs(argv)).has(token) ? MASK : redactArgs([token])[0] ?? "");
  let foundText: string | undefined;
  const found = () =>
    foundText ??= `found "${program}${argv.length ? " " : ""}${redactCommandLine(argv)}"`;
  const expected = (usage: string) => `expected "${program} ${usage}"`;
  const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);

  if (argv[0] === "__complete") return { kind: "complete", words: argv.slice(1) };
  const first = commandOf(argv);
  if (first !== undefined && (SUBCOMMANDS as readonly string[]).includes(first.command)) {
    return {
      kind: "subcommand",
      name: first.command as Subcommand,
      args: [...argv.slice(0, first.at), ...argv.slice(first.at + 1)],
    };
  }
  if (first !== undefined && !canonicalCommand(first.command)) {
    // Not ours to lock: helm gets it, less our flags (still checked, so a typo is caught).
    const unused = defaultLockSettings();
    const take = (arg: string, next?: string) => applyLockFlag(unused, arg, next, quote, found);
    return { kind: "passthrough", helmArgs: withoutLockFlags(argv, take) };
  }

  const settings = first === undefined ? defaultLockSettings() : lockSettingsFromEnv(env);
  const { helmArgs, flags, command, positionals } = scanHelmArgs(
    argv,
    (arg, next) => applyLockFlag(settings, arg, next, quote, found),
    found,
  );

  const lastBool = (name: string, flag: string) =>
    flags.reduce(
      (on, use) => use.name === name ? parseBool(use.value, flag, usage) : on,
      false,
    );

  if (command === undefined) {
    if (lastBool("help", "--help")) return { kind: "help" };
    if (flags.some((use) => use.name === "version")) return { kind: "version" };
    throw usage(`Cannot run as the helm command is missing: ${expected(USAGE)}, ${found()}`);
  }
  const canonical = canonicalCommand(command);
  if (!canonical) {
    // commandOf() and scanHelmArgs() read the same global flags: not reached.
    throw usage(
      `Cannot lock as ${quote(command)} does not change a release: expected ` +
        `a helm command that does (${LOCKABLE_COMMANDS.join(", ")}), ${found()}`,
    );
  }
  if (lastBool("help", "--help")) return { kind: "passthrough", helmArgs };

  if (canonical === "install") {
    const generated = flags.find((use) =>
      (use.name === "generate-name" && parseBool(use.value, "--generate-name", usage)) ||
      use.name === "name-template"
    );
    if (generated) {
      throw usage(
        `Cannot lock as the release name is generated by --${generated.name}: ` +
          `${expected(COMMAND_USAGE.install)} with the name given, ${found()}`,
      );
    }
  }
  const [release, second] = positionals;
  if (release === undefined) {
    throw usage(
      `Cannot lock as the release name is missing: ${expected(COMMAND_USAGE[canonical])}, ` +
        found(),
    );
  }
  if (release.length > MAX_RELEASE_NAME || !RELEASE_NAME.test(release)) {
    throw usage(
      `Cannot lock release ${quote(release)} as it is not a valid ` +
        `release name: expected lowercase letters, digits, "-" and "." (at most ` +
        `${MAX_RELEASE_NAME} characters), ${found()}`,
    );
  }
  if (canonical === "uninstall" && second !== undefined) {
    throw usage(
      `Cannot lock more than one release: ${expected(COMMAND_USAGE.uninstall)} ` +
        `once per release, ${found()}`,
    );
  }

  const invocation: Invocation = {
    command: canonical,
    release,
    helmArgs,
    cluster: clusterFlags(flags, usage),
    globalArgs: flags
      .filter((use) => isGlobalFlag(use.name) && use.name !== "help")
      .flatMap((use) => use.tokens),
    install: canonical === "install" ||
      (canonical === "upgrade" && lastBool("install", "--install")),
    debug: lastBool("debug", "--debug"),
    ...settings,
    createNamespace: canonical !== "rollback" && canonical !== "uninstall" &&
      lastBool("create-namespace", "--create-namespace"),
    // helm's --dry-run takes client, server, none, or pflag booleans, the last one winning.
    dryRun: flags.reduce(
      (on, use) =>
        use.name === "dry-run"
          ? use.value === undefined || !/^(none|false|f|0|FALSE|False|F)$/.test(use.value)
          : on,
      false,
    ),
  };
  if ((canonical === "install" || canonical === "upgrade") && second !== undefined) {
    invocation.chart = second;
  }
  return { kind: "run", invocation };
}

/**
 * The first positional (the command) and its index, reading helm's global flags, ours and
 * `own` as {@linkcode scanHelmArgs} does, but leaving a flag without its value to it (or helm).
 */
export function commandOf(
  argv: readonly string[],
  own: readonly { name: string; short?: string; value?: string }[] = [],
): { command: string; at: number } | undefined {
  const global = flagTable("global");
  const takesValue = (name: string) =>
    global.long.get(name) === "value" ||
    [...LOCK_FLAG_TABLE, ...own].some((f) => f.name === name && f.value !== undefined);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") return i + 1 < argv.length ? { command: argv[i + 1]!, at: i + 1 } : undefined;
    if (arg.startsWith("--")) {
      if (!arg.includes("=") && takesValue(arg.slice(2))) i++;
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") {
      const letters = arg.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const letter = letters[j] ?? "";
        const name = own.find((f) => f.short === letter)?.name ?? global.short.get(letter);
        if (name !== undefined && takesValue(name)) {
          if (j === letters.length - 1) i++;
          break;
        }
      }
      continue;
    }
    return { command: arg, at: i };
  }
  return undefined;
}

// The cluster flags of one string each, stored under their camelCase names.
const CLUSTER_FLAG =
  /^(namespace|kubeconfig|kube-(context|apiserver|token|ca-file|as-user|tls-server-name))$/;

/**
 * Cluster connection flags from scanned flag uses (also for helm-lock's own commands).
 *
 * @throws The error `usage` makes for a bad `--kube-insecure-skip-tls-verify` value.
 */
export function clusterFlags(
  flags: readonly FlagUse[],
  usage: (message: string) => HelmLockError,
): ClusterFlags {
  const cluster: ClusterFlags = {};
  for (const { name, value } of flags) {
    if (name === "kube-insecure-skip-tls-verify") {
      cluster.kubeInsecureSkipTlsVerify = parseBool(value, `--${name}`, usage);
    } else if (value !== undefined && name === "kube-as-group") {
      // A stringArray: repeatable, and a comma is part of the group name.
      cluster.kubeAsGroups = [...cluster.kubeAsGroups ?? [], value];
    } else if (value !== undefined && CLUSTER_FLAG.test(name)) {
      (cluster as Record<string, string>)[name.replace(/-(.)/g, (_, c) => c.toUpperCase())] = value;
    }
  }
  return cluster;
}
