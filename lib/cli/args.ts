/**
 * The command line of `helm lock` / `helm-lock` (DESIGN §1):
 *
 *     helm lock <HELM_COMMAND> <RELEASE_NAME> [CHART] [FLAGS]
 *
 * Our own flags (`--lock-timeout <duration>`, `--lock-lease-duration <duration>`,
 * `--lock-no-recover`, `--lock-queue fifo|newest`, `--lock-order-key <integer>`,
 * `--lock-superseded-ok`; see `lock_flags.ts`) are taken out wherever
 * they stand before a lone `--`; every other argument reaches helm verbatim and in order.
 * The release is the first positional argument after the command, found with helm's own
 * flag tables (`lib/helm/flags.ts`) the way pflag reads them (`lib/helm/argv.ts`); a flag
 * neither helm version documents is assumed boolean unless written `--x=y`, so write unknown
 * value-taking flags with `=` to keep the release detection right.
 *
 * Helm's global flags are also accepted before the command (`helm-lock -n prod upgrade ...`),
 * as helm accepts them.
 *
 * Decisions where DESIGN is silent:
 * - Lockable commands are install, upgrade, rollback, uninstall (and its aliases del,
 *   delete, un) and test. Every other helm command (`version`, `list`, `template`, plugins,
 *   unknown words, ...) passes through: helm runs with the argv verbatim, only `--lock-*`
 *   flags taken out (helmfile's `--args` appends them to every call), without a lock or any
 *   cluster call by helm-lock. So helm-lock can stand in for helm.
 * - helm-lock's own commands use names no helm command uses (`lock-status`, `lock-list`,
 *   `lock-unlock`, `lock-completion`; see {@linkcode SUBCOMMANDS}); each parses the rest of
 *   its argv itself. `__complete` is helm's (cobra's) completion request, answered with
 *   helm-lock's words added to helm's (`complete.ts`).
 * - `HELM_LOCK_*` variables set the `--lock-*` settings of a locked command; flags win.
 * - `--help`/`-h` with a lockable command is helm's help for that command: the result is
 *   `{ kind: "passthrough" }`, meaning "run helm with these args, without a lock".
 * - `install --generate-name`/`--name-template` and `uninstall` of several releases are
 *   usage errors, since one lock names one release.
 * - The release name must be valid for helm (lowercase DNS name, at most 53 characters),
 *   which also keeps the Lease name `helm-lock-<release>` valid.
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
} from "./lock_flags.ts";
import { programName } from "./program.ts";

/** helm-lock's own commands, named so that no helm command (3 or 4) has the name. */
export const SUBCOMMANDS = ["lock-status", "lock-list", "lock-unlock", "lock-completion"] as const;

/** One of {@linkcode SUBCOMMANDS}. */
export type Subcommand = typeof SUBCOMMANDS[number];

/** What the command line asks for. */
export type ParsedArgs =
  | { kind: "help" }
  | { kind: "version" }
  /**
   * Run helm directly, without a lock: a command that does not change a release, or helm's
   * own `--help` for a command. `helmArgs` is the argv without helm-lock's `--lock-*` flags.
   */
  | { kind: "passthrough"; helmArgs: string[] }
  | { kind: "run"; invocation: Invocation }
  /** One of helm-lock's own commands; `args` is the argv after its name. */
  | { kind: "subcommand"; name: Subcommand; args: string[] }
  /** Shell completion (`complete.ts`): the words after `__complete`, the last one completed. */
  | { kind: "complete"; words: string[] };

/** A helm command to run under the lock. */
export interface Invocation extends LockSettings {
  /** The canonical helm command: `install`, `upgrade`, `rollback`, `uninstall` or `test`. */
  command: LockableCommand;
  /** The release name: the first positional argument after the command. */
  release: string;
  /** The chart (second positional argument) of `install` and `upgrade`, when given. */
  chart?: string;
  /** The argv for helm, verbatim and in order, with only helm-lock's `--lock-*` flags removed. */
  helmArgs: string[];
  /** The cluster connection flags found in `helmArgs`. */
  cluster: ClusterFlags;
  /**
   * Helm's global flags from `helmArgs` as written (`["-n", "prod", "--kube-context=x"]`),
   * for helm-lock's own helm calls. A shorthand combined with others (`-in prod`) is given
   * on its own (`["-n", "prod"]`).
   */
  globalArgs: string[];
  /** Whether the command can create the release: `install`, or `upgrade -i/--install`. */
  install: boolean;
  /** Whether `--debug` was given. */
  debug: boolean;
  /** `--create-namespace` given: the release namespace may not exist yet. */
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
 * Parses the command line of helm-lock (see the module documentation).
 *
 * @param argv The arguments after the program name (`Deno.args`).
 * @param program How the user invoked helm-lock, for messages. @default {programName()}
 * @returns What to do: print help or the version, run helm directly, or run under the lock.
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} and a one-line message when the
 * command line cannot be used.
 */
export function parseArgs(
  argv: readonly string[],
  program: string = programName(),
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ParsedArgs {
  // Secrets are hidden by their place on the command line, never by searching a message for
  // their text (which would mask a release or namespace that happens to equal a --set value).
  // A quoted positional may really be the value of a secret flag helm-lock's flag tables do
  // not know (`--my-token xyz`): it is hidden when the redaction reads it so.
  // Only messages need these, made when one is: on helm's way they cost about 1 ms.
  let hidden: Set<string> | undefined;
  const quote = (token: string) =>
    JSON.stringify((hidden ??= secretArgs(argv)).has(token) ? MASK : redactArgs([token])[0] ?? "");
  let foundText: string | undefined;
  const found = () =>
    foundText ??= `found "${program}${argv.length ? " " : ""}${redactCommandLine(argv)}"`;
  const expected = (usage: string) => `expected "${program} ${usage}"`;
  const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);

  // cobra's completion request, as helm's own (and so as a helm-lock standing in for helm).
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
    const helmArgs: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i] ?? "";
      if (arg === "--") {
        helmArgs.push(...argv.slice(i));
        break;
      }
      if (arg.startsWith("--lock-")) i += applyLockFlag(unused, arg, argv[i + 1], quote, found);
      else helmArgs.push(arg);
    }
    return { kind: "passthrough", helmArgs };
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
 * The command (first positional) and its index, reading helm's global flags and ours the way
 * {@linkcode scanHelmArgs} does, but without failing: a flag missing its value is for the
 * full scan (or helm) to report.
 */
function commandOf(argv: readonly string[]): { command: string; at: number } | undefined {
  const global = flagTable("global");
  const takesValue = (name: string) =>
    global.long.get(name) === "value" ||
    LOCK_FLAG_TABLE.some((f) => f.name === name && f.value !== "bool");
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
        const name = global.short.get(letters[j] ?? "");
        if (name !== undefined && global.long.get(name) === "value") {
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
      continue;
    }
    if (value === undefined) continue;
    switch (name) {
      case "namespace":
        cluster.namespace = value;
        break;
      case "kube-context":
        cluster.kubeContext = value;
        break;
      case "kubeconfig":
        cluster.kubeconfig = value;
        break;
      case "kube-apiserver":
        cluster.kubeApiserver = value;
        break;
      case "kube-token":
        cluster.kubeToken = value;
        break;
      case "kube-ca-file":
        cluster.kubeCaFile = value;
        break;
      case "kube-as-user":
        cluster.kubeAsUser = value;
        break;
      case "kube-as-group":
        // A stringArray: repeatable, and a comma is part of the group name.
        cluster.kubeAsGroups = [...cluster.kubeAsGroups ?? [], value];
        break;
      case "kube-tls-server-name":
        cluster.kubeTlsServerName = value;
        break;
    }
  }
  return cluster;
}
