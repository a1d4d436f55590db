// deno-lint-ignore-file no-console
/**
 * helm-lock: serialize helm operations on a release with a Kubernetes Lease, and recover
 * releases left stuck by a killed helm. The entry point: parses our own flags, dispatches,
 * maps errors to exit codes. The only place that calls `Deno.exit`.
 *
 * @module
 */
import { parseArgs, type Subcommand } from "./lib/cli/args.ts";
import type { CommandIO } from "./lib/cli/own_args.ts";
import { runHelmDirectly } from "./lib/helm/exec.ts";
import { run } from "./lib/cli/run.ts";
import { ExitCode, HelmLockError } from "./lib/errors.ts";
import { runWatchdog, WATCHDOG_ENV } from "./lib/helm/watchdog.ts";
import { redactText, redactUrls, secretValues } from "./lib/redact.ts";
import type { Reporter } from "./lib/report.ts";
import { printable, printableBlock } from "./lib/sanitize.ts";
import { VERSION } from "./lib/version.ts";

/** helm-lock's own commands by name, each loaded when it runs. */
const ownCommands: Readonly<
  Record<Subcommand, (args: string[], io: CommandIO) => Promise<number>>
> = {
  "lock-status": async (args, io) =>
    (await import("./lib/cli/lock_status.ts")).lockStatus(args, io),
  "lock-list": async (args, io) => (await import("./lib/cli/lock_list.ts")).lockList(args, io),
  "lock-unlock": async (args, io) =>
    (await import("./lib/cli/lock_unlock.ts")).lockUnlock(args, io),
  "lock-completion": async (args, io) =>
    (await import("./lib/cli/completion.ts")).lockCompletion(args, io),
};

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

function reporter(debug: boolean): Omit<Reporter, "event"> {
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
      console.log((await import("./lib/cli/help.ts")).mainHelp());
      return 0;
    case "version":
      console.log(`helm-lock ${VERSION}`);
      return 0;
    case "complete":
      return await (await import("./lib/cli/complete.ts")).runComplete(
        parsed.words,
        (line) => console.log(line),
      );
    case "passthrough":
      return await runHelmDirectly(parsed.helmArgs);
    case "run": {
      const debug = parsed.invocation.debug || truthy(Deno.env.get("HELM_DEBUG"));
      return await run(parsed.invocation, reporter(debug));
    }
    case "subcommand": {
      const debug = parsed.args.includes("--debug") || truthy(Deno.env.get("HELM_DEBUG"));
      const report = reporter(debug);
      const io: CommandIO = {
        out: (line) => console.log(printable(line)),
        print: (text) => console.log(printableBlock(text)),
        ...report,
      };
      return await ownCommands[parsed.name](parsed.args, io);
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
