// deno-lint-ignore-file no-console
/**
 * helm-lock: serialize helm operations on a release with a Kubernetes Lease, and recover
 * releases left stuck by a killed helm. The entry point: parses our own flags, dispatches,
 * maps errors to exit codes. The only place that calls `Deno.exit`.
 *
 * @module
 */
import { lockedRun, parseArgs, type Reporter } from "./lib/cli/mod.ts";
import { ExitCode, HelmLockError } from "./lib/errors.ts";
import { helmSpawn } from "./lib/helm/mod.ts";
import { redactText, secretValues } from "./lib/redact.ts";
import { VERSION } from "./lib/version.ts";

const HELP =
  `helm-lock ${VERSION}: one helm operation per release at a time, and stuck releases recovered

USAGE
  helm lock <HELM_COMMAND> <RELEASE> [CHART] [FLAGS]      (as a Helm plugin)
  helm-lock <HELM_COMMAND> <RELEASE> [CHART] [FLAGS]      (standalone)

  HELM_COMMAND is install, upgrade, rollback, uninstall or test. Everything except the
  --lock-* flags below reaches helm verbatim and in order.

  Takes the Lease helm-lock-<RELEASE> in the release namespace (waiting for it if another
  job holds it), recovers a release left pending-* or failed (install and upgrade only),
  runs helm, and releases the Lease.

OPTIONS
  --lock-timeout <duration>  How long to wait for the lock (Go duration: 90s, 5m, 1h30m).
                             Default: 10m
  --lock-lease-duration <duration>
                             How long the Lease outlives its last renewal, so how soon a
                             killed job's lock is taken over. Default: 15s
  --lock-no-recover          Only take the lock: do not roll back or uninstall a stuck or
                             failed release before running helm. A --dry-run never does
  --lock-no-fence            Let helm reach the API server directly, not through the local
                             pass-through that cuts it off when the lock is lost (fencing)
  -h, --help                 Show this help (helm's own help: helm lock upgrade --help)
  --version                  Show helm-lock's version

  Cluster, namespace and identity are helm's: -n/--namespace, --kube-context, --kubeconfig,
  --kube-token, ... and HELM_NAMESPACE, HELM_KUBECONTEXT, KUBECONFIG, ...; $HELM_BIN or
  helm on PATH runs the command. --debug or HELM_DEBUG=true prints more.

EXIT CODES
  helm's own exit code when helm ran
  2    usage error: nothing was written to the cluster
  3    the lock was not acquired within --lock-timeout: helm did not run
  4    the lock was lost while helm ran: helm was cut off from the API server and
       stopped with SIGTERM
  5    the release could not be recovered: helm did not run
  6    the Kubernetes API server could not be reached
  7    the API server refused a request (authentication or RBAC)
  1    any other error
  130, 143  interrupted by SIGINT, SIGTERM (forwarded to helm; the lock is released;
            a third signal kills helm)
`;

/** `HELM_DEBUG` as helm reads it (Go's strconv.ParseBool). */
function truthy(value: string | undefined): boolean {
  return value !== undefined && ["1", "t", "T", "TRUE", "true", "True"].includes(value);
}

const SECRETS = secretValues(Deno.args);

/**
 * Every line helm-lock prints goes through here: prefixed, and scrubbed of the secret values
 * on the command line, whatever message (helm's error output included) carries them.
 */
function say(line: string): void {
  console.error(`helm-lock: ${redactText(line, SECRETS)}`);
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
  const parsed = parseArgs(argv);
  switch (parsed.kind) {
    case "help":
      console.log(HELP);
      return 0;
    case "version":
      console.log(`helm-lock ${VERSION}`);
      return 0;
    case "passthrough":
      return (await helmSpawn(parsed.helmArgs).status).code;
    case "run": {
      const debug = parsed.invocation.debug || truthy(Deno.env.get("HELM_DEBUG"));
      return await lockedRun(parsed.invocation, reporter(debug));
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

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    const debug = Deno.args.includes("--debug") || truthy(Deno.env.get("HELM_DEBUG"));
    if (error instanceof HelmLockError) {
      say(error.message);
      code = error.code;
    } else {
      say(`unexpected error: ${error instanceof Error ? error.message : error}`);
      if (debug && error instanceof Error && error.stack) say(error.stack);
      code = ExitCode.Internal;
    }
    if (debug) {
      for (const line of describeCauses(error)) say(`  caused by ${line}`);
    }
  }
  Deno.exit(code);
}
