/**
 * The command line of `helm lock` / `helm-lock` (DESIGN §1):
 *
 *     helm lock <HELM_COMMAND> <RELEASE_NAME> [CHART] [FLAGS]
 *
 * Our own flags (`--lock-timeout <duration>`, `--lock-lease-duration <duration>`,
 * `--lock-no-recover`) are taken out wherever
 * they stand before a lone `--`; every other argument reaches helm verbatim and in order.
 * The release is the first positional argument after the command, found with helm's own
 * flag tables (`lib/helm_flags.ts`) the way pflag reads them:
 *
 * - a value-taking flag consumes the next argument even when it starts with `-`
 *   (`--namespace prod`, `-n prod`), or takes it inline (`--namespace=prod`, `-nprod`,
 *   `-n=prod`); shorthands combine (`-in prod` is `--install -n prod`);
 * - booleans and optional-value flags never consume the next argument: in Helm 4,
 *   `--wait watcher` is `--wait` followed by the positional `watcher`;
 * - positionals after `--` still count (`helm upgrade -- my-rel ./chart` works in helm);
 * - a flag neither helm version documents is assumed boolean unless written `--x=y`, so
 *   write unknown value-taking flags with `=` to keep the release detection right.
 *
 * Helm's global flags are also accepted before the command (`helm-lock -n prod upgrade ...`),
 * as helm accepts them.
 *
 * Decisions where DESIGN is silent:
 * - Lockable commands are install, upgrade, rollback, uninstall (and its aliases del,
 *   delete, un) and test. Any other command is a usage error: helm-lock is for changing a
 *   release; run plain helm for the rest.
 * - `--help`/`-h` with a lockable command is helm's help for that command: the result is
 *   `{ kind: "passthrough" }`, meaning "run helm with these args, without a lock".
 * - `install --generate-name`/`--name-template` and `uninstall` of several releases are
 *   usage errors, since one lock names one release.
 * - The release name must be valid for helm (lowercase DNS name, at most 53 characters),
 *   which also keeps the Lease name `helm-lock-<release>` valid.
 *
 * @module
 */

import type { ClusterFlags } from "./cluster_flags.ts";
import { checkDuration } from "./duration.ts";
import { ExitCode, HelmLockError } from "./errors.ts";
import {
  COMMAND_ALIASES,
  type FlagTable,
  flagTable,
  isGlobalFlag,
  LOCKABLE_COMMANDS,
  type LockableCommand,
} from "./helm_flags.ts";
import { redactCommandLine, redactText, secretValues } from "./redact.ts";

/** What the command line asks for. */
export type ParsedArgs =
  | { kind: "help" }
  | { kind: "version" }
  /** Run helm directly, without a lock (helm's own `--help` for a command). */
  | { kind: "passthrough"; helmArgs: string[] }
  | { kind: "run"; invocation: Invocation };

/** A helm command to run under the lock. */
export interface Invocation {
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
  /** `--lock-timeout` in milliseconds. @default {600000} (10m) */
  lockTimeoutMs: number;
  /** `false` with `--lock-no-recover`: only lock, do not check or repair the release. */
  recover: boolean;
  /**
   * `--lock-lease-duration` in whole seconds: how long a Lease outlives its last renewal,
   * so how soon a killed holder's lock can be taken over. @default {15}
   */
  leaseDurationSeconds: number;
  /** `--create-namespace` given: the release namespace may not exist yet. */
  createNamespace: boolean;
  /** `--dry-run` given (any value but `false`/`none`): helm-lock then changes nothing itself. */
  dryRun: boolean;
}

/** `--lock-timeout` when not given: 10 minutes. */
export const DEFAULT_LOCK_TIMEOUT_MS = 600_000;

const USAGE = "helm lock <HELM_COMMAND> <RELEASE_NAME> [CHART] [FLAGS]";
const LOCK_FLAGS =
  "--lock-timeout <duration>, --lock-lease-duration <duration> or --lock-no-recover";

/** `--lock-lease-duration` when not given: client-go's leader-election default. */
export const DEFAULT_LEASE_DURATION_SECONDS = 15;
const COMMAND_USAGE: Readonly<Record<LockableCommand, string>> = {
  install: "helm lock install <release> <chart>",
  upgrade: "helm lock upgrade <release> <chart>",
  rollback: "helm lock rollback <release> [revision]",
  uninstall: "helm lock uninstall <release>",
  test: "helm lock test <release>",
};
// chartutil.ValidateReleaseName in Helm 3.17 and 4.1.
const RELEASE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_RELEASE_NAME = 53;

interface FlagUse {
  name: string;
  value: string | undefined;
  /** The argv tokens to repeat this flag on its own. */
  tokens: string[];
}

/**
 * Parses the command line of helm-lock (see the module documentation).
 *
 * @param argv The arguments after the program name (`Deno.args`).
 * @returns What to do: print help or the version, run helm directly, or run under the lock.
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} and a one-line message when the
 * command line cannot be used.
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  // A positional may really be the value of a flag helm-lock does not know (`--x secret`):
  // whatever a message quotes is scrubbed of the secret values on the command line.
  const secrets = secretValues(argv);
  const quote = (token: string) => redactText(JSON.stringify(token), secrets);
  const found = `found "helm lock${argv.length ? " " : ""}${
    redactText(redactCommandLine(argv), secrets)
  }"`;
  const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);

  const helmArgs: string[] = [];
  const flags: FlagUse[] = [];
  const positionals: string[] = [];
  let command: string | undefined;
  let table: FlagTable = flagTable("global");
  let lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS;
  let recover = true;
  let leaseDurationSeconds = DEFAULT_LEASE_DURATION_SECONDS;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      helmArgs.push(...argv.slice(i));
      for (const rest of argv.slice(i + 1)) {
        if (command === undefined) command = rest;
        else positionals.push(rest);
      }
      break;
    }
    if (arg.startsWith("--lock-")) {
      const [name = "", inline] = splitInline(arg.slice(2));
      if (name === "lock-timeout" || name === "lock-lease-duration") {
        const value = inline ?? argv[++i];
        if (value === undefined) {
          throw usage(
            `Cannot run as --${name} has no value: expected a duration such as ` +
              `"--${name} 5m", ${found}`,
          );
        }
        const ms = checkDuration(value);
        if (typeof ms !== "number") {
          throw usage(`Cannot use --${name} as ${ms.reason}: ${ms.expected}`);
        }
        if (name === "lock-timeout") {
          lockTimeoutMs = ms;
        } else if (ms < 1000) {
          // The Lease records whole seconds, and renewals every third of it need room.
          throw usage(
            `Cannot use --lock-lease-duration as it must be at least 1s: found ${
              JSON.stringify(value)
            }`,
          );
        } else {
          leaseDurationSeconds = Math.round(ms / 1000);
        }
      } else if (name === "lock-no-recover") {
        recover = !parseBool(inline, "--lock-no-recover", usage);
      } else {
        throw usage(
          `Cannot run as ${quote(arg)} is not a helm-lock flag: expected ` +
            `${LOCK_FLAGS}`,
        );
      }
      continue;
    }
    if (arg.startsWith("--")) {
      const [name = "", inline] = splitInline(arg.slice(2));
      const tokens = [arg];
      let value = inline;
      if (inline === undefined && table.long.get(name) === "value") {
        value = argv[++i];
        if (value === undefined) throw missingValue(`--${name}`, found);
        tokens.push(value);
      }
      helmArgs.push(...tokens);
      flags.push({ name, value, tokens });
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") {
      helmArgs.push(arg);
      const letters = arg.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const letter = letters[j] ?? "";
        // Unknown shorthands are assumed boolean, as unknown long flags are.
        const name = table.short.get(letter) ?? letter;
        const combined = j > 0;
        if (letters[j + 1] === "=") {
          const value = letters.slice(j + 2);
          flags.push({ name, value, tokens: combined ? [`-${letter}`, value] : [arg] });
          break;
        }
        if (table.long.get(name) === "value") {
          let value = letters.slice(j + 1);
          let tokens = [arg];
          if (value === "") {
            value = argv[++i] ?? "";
            if (i >= argv.length) throw missingValue(`-${letter}`, found);
            helmArgs.push(value);
            tokens = [arg, value];
          }
          flags.push({ name, value, tokens: combined ? [`-${letter}`, value] : tokens });
          break;
        }
        flags.push({ name, value: undefined, tokens: [`-${letter}`] });
      }
      continue;
    }
    helmArgs.push(arg);
    if (command === undefined) {
      command = arg;
      const canonical = canonicalCommand(arg);
      if (canonical) table = flagTable(canonical);
    } else {
      positionals.push(arg);
    }
  }

  const lastBool = (name: string, flag: string) =>
    flags.reduce(
      (on, use) => use.name === name ? parseBool(use.value, flag, usage) : on,
      false,
    );

  if (command === undefined) {
    if (lastBool("help", "--help")) return { kind: "help" };
    if (flags.some((use) => use.name === "version")) return { kind: "version" };
    throw usage(`Cannot run as the helm command is missing: expected "${USAGE}", ${found}`);
  }
  const canonical = canonicalCommand(command);
  if (!canonical) {
    throw usage(
      `Cannot lock as ${quote(command)} does not change a release: expected ` +
        `a helm command that does (${LOCKABLE_COMMANDS.join(", ")}), ${found}`,
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
          `expected "${COMMAND_USAGE.install}" with the name given, ${found}`,
      );
    }
  }
  const [release, second] = positionals;
  if (release === undefined) {
    throw usage(
      `Cannot lock as the release name is missing: expected ` +
        `"${COMMAND_USAGE[canonical]}", ${found}`,
    );
  }
  if (release.length > MAX_RELEASE_NAME || !RELEASE_NAME.test(release)) {
    throw usage(
      `Cannot lock release ${quote(release)} as it is not a valid ` +
        `release name: expected lowercase letters, digits, "-" and "." (at most ` +
        `${MAX_RELEASE_NAME} characters), ${found}`,
    );
  }
  if (canonical === "uninstall" && second !== undefined) {
    throw usage(
      `Cannot lock more than one release: expected "${COMMAND_USAGE.uninstall}" ` +
        `once per release, ${found}`,
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
    lockTimeoutMs,
    recover,
    leaseDurationSeconds,
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

function canonicalCommand(command: string): LockableCommand | undefined {
  return (LOCKABLE_COMMANDS as readonly string[]).includes(command)
    ? command as LockableCommand
    : COMMAND_ALIASES[command];
}

function splitInline(text: string): [string, string | undefined] {
  const at = text.indexOf("=");
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function missingValue(flag: string, found: string): HelmLockError {
  return new HelmLockError(
    ExitCode.Usage,
    `Cannot run as ${flag} has no value: expected "${flag} <value>", ${found}`,
  );
}

// Go's strconv.ParseBool, which pflag uses for `--flag=value` of a boolean.
function parseBool(
  value: string | undefined,
  flag: string,
  usage: (message: string) => HelmLockError,
): boolean {
  if (value === undefined) return true;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw usage(
    `Cannot use ${flag}=${value} as the value is not a boolean: expected ` +
      `${flag}=true or ${flag}=false`,
  );
}

function clusterFlags(
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
