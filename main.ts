// deno-lint-ignore-file no-console
/**
 * helm-lock: serialize helm operations on a release with a Kubernetes Lease, and recover
 * releases left stuck by a killed helm. The entry point: parses our own flags, dispatches,
 * maps errors to exit codes. The only place that calls `Deno.exit`.
 *
 * @module
 */
// The command line's modules are imported when they are needed (`cli()`), not statically: the
// TLS warm-up starts before they load, and the compiled binary run as helm's watchdog loads
// only the watchdog.
import type { CommandIO, Reporter, Subcommand } from "./lib/cli/mod.ts";
import { ExitCode, HelmLockError } from "./lib/errors.ts";
import { runWatchdog, WATCHDOG_ENV } from "./lib/helm/watchdog.ts";
import { warmUpTls } from "./lib/kube/tls_warmup.ts";
import { redactText, redactUrls, secretValues } from "./lib/redact.ts";
import { printable } from "./lib/sanitize.ts";
import { VERSION } from "./lib/version.ts";

const cli = () => import("./lib/cli/mod.ts");

const HELP =
  `helm-lock ${VERSION}: one helm operation per release at a time, and stuck releases recovered

USAGE
  helm lock <HELM_COMMAND> <RELEASE> [CHART] [FLAGS]      (as a Helm plugin)
  helm-lock <HELM_COMMAND> <RELEASE> [CHART] [FLAGS]      (standalone)
  helm-lock lock-status <RELEASE> [-n NAMESPACE] [-o table|json]
  helm-lock lock-list [-n NAMESPACE | -A] [-o table|json]
  helm-lock lock-unlock <RELEASE> [-n NAMESPACE] [--force]

  HELM_COMMAND install, upgrade, rollback, uninstall or test takes the Lease
  helm-lock-<RELEASE> in the release namespace (waiting for it if another job holds it),
  recovers a release left pending-* or failed (install and upgrade only), runs helm, and
  releases the Lease. Everything except the --lock-* flags below reaches helm verbatim.

  Any other helm command (version, list, template, plugins, ...) runs helm as given,
  without a lock: helm-lock can stand in for helm (helmfile --helm-binary, PATH).

  lock-status shows who holds a release's lock, since when, its CI job and the release's
  state; lock-list lists the locks; lock-unlock removes a lock whose holder is gone (it
  watches one lease duration for renewals), or any lock with --force (its holder stops
  its helm).

OPTIONS
  --lock-timeout <duration>  How long to wait for the lock (Go duration: 90s, 5m, 1h30m).
                             Default: 10m
  --lock-lease-duration <duration>
                             How long the Lease outlives its last renewal, so how soon a
                             killed job's lock is taken over. Default: 15s
  --lock-no-recover          Only take the lock: do not roll back or uninstall a stuck or
                             failed release before running helm. A --dry-run never does
  --lock-queue fifo|newest   Who gets the lock when it frees: the job that came first, or
                             only the newest one (older waiters exit 8). Default: fifo
  --lock-order-key <integer> Queue by this number (e.g. $CI_PIPELINE_IID) and refuse (exit 8)
                             a deploy whose key is lower than the last successful one's
  --lock-superseded-ok       Exit 0, not 8, when --lock-queue newest supersedes this job
  --lock-no-fence            Let helm reach the API server directly, not through the local
                             pass-through that cuts it off when the lock is lost (fencing)
  -h, --help                 Show this help (helm's own help: helm lock upgrade --help)
  --version                  Show helm-lock's version

  Each --lock-* flag can also be set in the environment, --lock-x-y as HELM_LOCK_X_Y:
  HELM_LOCK_TIMEOUT=5m, HELM_LOCK_LEASE_DURATION=30s, HELM_LOCK_NO_RECOVER=true; a flag wins.

  Cluster, namespace and identity are helm's: -n/--namespace, --kube-context, --kubeconfig,
  --kube-token, ... and HELM_NAMESPACE, HELM_KUBECONTEXT, KUBECONFIG, ...; $HELM_BIN or
  helm on PATH runs the command. --debug or HELM_DEBUG=true prints more.

EXIT CODES
  helm's own exit code when helm ran
  2    usage error (also a bad HELM_LOCK_* value): nothing was written to the cluster
  3    the lock was not acquired within --lock-timeout: helm did not run
  4    the lock was lost while helm ran: helm was cut off from the API server and
       stopped with SIGTERM
  5    the release could not be recovered: helm did not run
  6    the Kubernetes API server could not be reached
  7    the API server refused a request (authentication or RBAC)
  8    superseded by a newer waiting job, or outdated by --lock-order-key: helm did not run
  127  helm cannot be started ($HELM_BIN or helm on PATH): found before the lock was taken
  1    any other error
  130, 143  interrupted by SIGINT, SIGTERM (forwarded to helm; the lock is released;
            a third signal kills helm)
`;

/** `HELM_DEBUG` as helm reads it (Go's strconv.ParseBool). */
function truthy(value: string | undefined): boolean {
  return value !== undefined && ["1", "t", "T", "TRUE", "true", "True"].includes(value);
}

/** The secret values of the command line, found when first needed (an error to print). */
let secrets: string[] | undefined;

/**
 * Every line helm-lock prints goes through here, prefixed. Its parts that carry secrets were
 * redacted where they were put in (command lines, helm's error output); the line itself is
 * not searched for secret values, which would mask helm-lock's own words and names (a
 * `--set env=staging` hiding `namespace "staging"`). URL user info is hidden once more here:
 * it is recognised by its form, which no name of helm-lock's has. Then it is made printable
 * (`lib/sanitize.ts`): text from the cluster or helm never reaches the terminal raw.
 */
function say(line: string): void {
  console.error(`helm-lock: ${printable(redactUrls(line))}`);
}

/** Text from no message of helm-lock's (an unexpected error, a stack): searched for secrets. */
function foreign(text: string): string {
  return redactText(text, secrets ??= secretValues(Deno.args));
}

function reporter(debug: boolean): Reporter {
  return {
    info: say,
    debug: (line) => {
      if (debug) say(`[debug] ${line}`);
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const loading = cli();
  // Deno loads its process module the first time `Deno.Command` is read (~6 ms here): read
  // while the command line's modules load, part of it overlaps their loading (helm starts ~2 ms
  // sooner).
  void Deno.Command;
  const { lockedRun, lockList, lockStatus, lockUnlock, parseArgs, runHelmDirectly } = await loading;
  const subcommands: Readonly<
    Record<Subcommand, (args: string[], io: CommandIO) => Promise<number>>
  > = {
    "lock-status": lockStatus,
    "lock-list": lockList,
    "lock-unlock": lockUnlock,
  };
  const parsed = parseArgs(argv);
  switch (parsed.kind) {
    case "help":
      console.log(HELP);
      return 0;
    case "version":
      console.log(`helm-lock ${VERSION}`);
      return 0;
    case "passthrough":
      return await runHelmDirectly(parsed.helmArgs);
    case "run": {
      const debug = parsed.invocation.debug || truthy(Deno.env.get("HELM_DEBUG"));
      return await lockedRun(parsed.invocation, reporter(debug));
    }
    case "subcommand": {
      const debug = parsed.args.includes("--debug") || truthy(Deno.env.get("HELM_DEBUG"));
      const report = reporter(debug);
      const io: CommandIO = { out: (line) => console.log(printable(line)), ...report };
      return await subcommands[parsed.name](parsed.args, io);
    }
  }
}

function describeCauses(error: unknown): string[] {
  const lines: string[] = [];
  let cause = error instanceof Error ? error.cause : undefined;
  while (cause !== undefined) {
    lines.push(cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause));
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return lines;
}

if (import.meta.main && Deno.env.get(WATCHDOG_ENV) === "1") {
  // The compiled binary started by itself as helm's watchdog (lib/helm/watchdog.ts).
  Deno.exit(await runWatchdog());
} else if (import.meta.main) {
  warmUpTls();
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    const debug = Deno.args.includes("--debug") || truthy(Deno.env.get("HELM_DEBUG"));
    if (error instanceof HelmLockError) {
      say(error.message);
      code = error.code;
    } else {
      say(`unexpected error: ${foreign(error instanceof Error ? error.message : String(error))}`);
      if (debug && error instanceof Error && error.stack) {
        foreign(error.stack).split("\n").forEach(say);
      }
      code = ExitCode.Internal;
    }
    if (debug) {
      for (const line of describeCauses(error)) say(`  caused by ${foreign(line)}`);
    }
  }
  Deno.exit(code);
}
