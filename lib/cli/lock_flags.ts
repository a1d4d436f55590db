/**
 * helm-lock's own flags, all named `--lock-*` so they never clash with helm's, taken out of
 * the argv wherever they stand before a lone `--` (by `lib/helm/argv.ts`).
 *
 * Every flag is a row of {@linkcode LOCK_FLAG_TABLE} and has an environment variable named
 * after it (`--lock-timeout` is `HELM_LOCK_TIMEOUT`): helmfile and wrapper scripts cannot
 * add a flag to only some of their helm calls, but they can set the environment. A flag on
 * the command line wins over its variable. A flag added to the table gets its variable, its
 * parsing and its line in the error messages with nothing else to change.
 *
 * @module
 */

import { checkDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { parseBool, splitInline } from "../helm/argv.ts";
import { DEFAULT_LEASE_SECONDS, MAX_LEASE_DURATION_MS } from "../lock/lease.ts";

/** `--lock-timeout` when not given: 10 minutes. */
export const DEFAULT_LOCK_TIMEOUT_MS = 600_000;

/**
 * The longest `--lock-timeout`: 24 hours. The wait keeps its own deadline, so a longer one
 * would work, but a deploy that waits a day for a lock is stuck, not queued, and no hosted
 * CI job lives that long (GitHub Actions ends them after 6 h); what is longer is a slip
 * (`--lock-timeout 1000h`) that would keep a job and its queue ticket waiting for weeks. A
 * day is also well within the runtime's single timer (2^31 - 1 ms, 24.8 days).
 */
const MAX_LOCK_TIMEOUT_MS = 24 * 3_600_000;

/** The largest `--lock-order-key`: the largest integer stored and compared exactly (2^53 - 1). */
const MAX_ORDER_KEY = Number.MAX_SAFE_INTEGER;

/** What the `--lock-*` flags set. */
export interface LockSettings {
  /** `--lock-timeout` in milliseconds. @default {600000} (10m) */
  lockTimeoutMs: number;
  /** `false` with `--lock-no-recover`: only lock, do not check or repair the release. */
  recover: boolean;
  /** `--lock-lease-duration` in whole seconds. @default {15} */
  leaseDurationSeconds: number;
  /** `--lock-queue`: who gets the lock when it frees. @default {"fifo"} */
  queue: "fifo" | "newest";
  /** `--lock-order-key`: orders the queue and refuses outdated deploys. */
  orderKey?: number;
  /** `--lock-superseded-ok`: a superseded job exits 0 instead of 8. @default {false} */
  supersededOk: boolean;
  /** `false` with `--lock-no-fence`: helm talks to the API server directly (`lib/fence/`). */
  fence: boolean;
}

/** How a flag takes its value. */
type FlagValue =
  /** A Go duration (`90s`, `5m`) that follows the flag or `=`; given to `set` in ms. */
  | "duration"
  /** A pflag boolean: bare means true, a value only after `=`. */
  | "bool"
  /** Any text that follows the flag or `=`. */
  | "string";

/** One `--lock-*` flag. */
export interface LockFlag {
  /** The long name without `--`, starting with `lock-`. */
  readonly name: string;
  readonly value: FlagValue;
  /** For the help and messages, e.g. `<duration>`. */
  readonly placeholder?: string;
  /** What a missing value should have been, e.g. `"fifo" or "newest"`. */
  readonly expected?: string;
  /** The values it takes, when they are fixed (for the help and shell completion). */
  readonly values?: readonly string[];
  /** One sentence for the help and shell completion (`help.ts`, `completion.ts`). */
  readonly description: string;
  /**
   * Stores the parsed value: milliseconds for a duration, a boolean, or the text.
   * @param text The value as written, for the reason.
   * @returns Why the value cannot be used (`it must be at least 1s: found "500ms"`).
   */
  set(settings: LockSettings, value: number | boolean | string, text: string): string | undefined;
}

const QUEUE_MODES = `"fifo" or "newest"`;
const ORDER_KEY = "a whole number such as $CI_PIPELINE_IID";

/**
 * The `--lock-*` flags. Other features add their rows here; each row is parsed from the
 * command line and from `HELM_LOCK_*` by the same code.
 */
export const LOCK_FLAG_TABLE: readonly LockFlag[] = [
  {
    name: "lock-timeout",
    value: "duration",
    placeholder: "<duration>",
    description: "How long to wait for the lock (Go duration: 90s, 5m, 1h30m). Default: 10m",
    set: (s, v, text) => {
      if ((v as number) > MAX_LOCK_TIMEOUT_MS) {
        return `it must be at most 24h: found ${JSON.stringify(text)}`;
      }
      s.lockTimeoutMs = v as number;
      return undefined;
    },
  },
  {
    name: "lock-lease-duration",
    value: "duration",
    placeholder: "<duration>",
    description: "How long the Lease outlives its last renewal, so how soon a killed job's " +
      "lock is taken over. Default: 15s",
    set: (s, v, text) => {
      // The Lease records whole seconds, and renewals every third of it need room.
      if ((v as number) < 1000) return `it must be at least 1s: found ${JSON.stringify(text)}`;
      if ((v as number) > MAX_LEASE_DURATION_MS) {
        return `it must be at most 1h: found ${JSON.stringify(text)}`;
      }
      s.leaseDurationSeconds = Math.round((v as number) / 1000);
      return undefined;
    },
  },
  {
    name: "lock-no-recover",
    value: "bool",
    description: "Only take the lock: do not roll back or uninstall a stuck or failed " +
      "release before running helm. A --dry-run never does",
    set: (s, v) => void (s.recover = !v),
  },
  {
    name: "lock-no-fence",
    value: "bool",
    description: "Let helm reach the API server directly, not through the local " +
      "pass-through that cuts it off when the lock is lost (fencing)",
    set: (s, v) => void (s.fence = !v),
  },
  {
    name: "lock-queue",
    value: "string",
    placeholder: "fifo|newest",
    expected: QUEUE_MODES,
    values: ["fifo", "newest"],
    description: "Who gets the lock when it frees: the job that came first, or only the " +
      "newest one (older waiters exit 8). Default: fifo",
    set: (s, v) => {
      if (v !== "fifo" && v !== "newest") {
        return `${JSON.stringify(v)} is no queue mode: expected ${QUEUE_MODES}`;
      }
      s.queue = v;
      return undefined;
    },
  },
  {
    name: "lock-order-key",
    value: "string",
    placeholder: "<integer>",
    expected: ORDER_KEY,
    description: "Queue by this number (e.g. $CI_PIPELINE_IID) and refuse (exit 8) a " +
      "deploy whose key is lower than the last successful one's",
    set: (s, v) => {
      if (!/^\d+$/.test(v as string)) {
        return `${JSON.stringify(v)} is not a whole number: expected ${ORDER_KEY}`;
      }
      const key = Number(v);
      if (key > MAX_ORDER_KEY) {
        return `${JSON.stringify(v)} is not a whole number up to ${MAX_ORDER_KEY}: ` +
          `expected ${ORDER_KEY}`;
      }
      s.orderKey = key;
      return undefined;
    },
  },
  {
    name: "lock-superseded-ok",
    value: "bool",
    description: "Exit 0, not 8, when --lock-queue newest supersedes this job",
    set: (s, v) => void (s.supersededOk = v as boolean),
  },
];

/** The environment variable of a flag: `lock-lease-duration` is `HELM_LOCK_LEASE_DURATION`. */
export function envName(flag: Pick<LockFlag, "name">): string {
  return `HELM_${flag.name.toUpperCase().replaceAll("-", "_")}`;
}

/** The flags, for messages: `--lock-timeout <duration>, ... or --lock-no-recover`. */
export const LOCK_FLAGS =
  ((names: string[]) => `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`)(
    LOCK_FLAG_TABLE.map((f) => `--${f.name}${f.placeholder ? ` ${f.placeholder}` : ""}`),
  );

/** The settings when no `--lock-*` flag is given and no `HELM_LOCK_*` variable is set. */
export function defaultLockSettings(): LockSettings {
  return {
    lockTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS,
    recover: true,
    leaseDurationSeconds: DEFAULT_LEASE_SECONDS,
    queue: "fifo",
    supersededOk: false,
    fence: true,
  };
}

const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);

/** Parses `text` as `flag`'s value and stores it; `what` names the source in messages. */
function applyValue(settings: LockSettings, flag: LockFlag, text: string, what: string): void {
  let value: number | boolean | string = text;
  if (flag.value === "duration") {
    const ms = checkDuration(text);
    if (typeof ms !== "number") throw usage(`Cannot use ${what} as ${ms.reason}: ${ms.expected}`);
    value = ms;
  } else if (flag.value === "bool") {
    value = parseBool(text, what, usage);
  }
  const problem = flag.set(settings, value, text);
  if (problem) throw usage(`Cannot use ${what} as ${problem}`);
}

/**
 * The settings from the defaults and the `HELM_LOCK_*` variables of the table's flags. An
 * empty variable counts as unset, as helm's own variables do.
 *
 * @param env The environment to read.
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} naming the variable whose value
 * cannot be used.
 */
export function lockSettingsFromEnv(env: Record<string, string | undefined>): LockSettings {
  const settings = defaultLockSettings();
  for (const flag of LOCK_FLAG_TABLE) {
    const name = envName(flag);
    const text = env[name];
    if (text === undefined || text === "") continue;
    if (flag.value === "bool") {
      // `HELM_LOCK_NO_RECOVER=true`; the message names the variable, not `--x=`.
      flag.set(settings, parseBool(text, name, usage), text);
      continue;
    }
    applyValue(settings, flag, text, `${name}=${text}`);
  }
  return settings;
}

/**
 * Applies one `--lock-*` token (and its value, `next`, when not inline) to `settings`.
 *
 * @param quote Renders a token for a message with secrets scrubbed.
 * @param found Makes the `found "..."` part of usage messages.
 * @returns How many tokens after `arg` were consumed (0 or 1).
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for an unknown flag, a missing
 * value or a bad value.
 */
export function applyLockFlag(
  settings: LockSettings,
  arg: string,
  next: string | undefined,
  quote: (token: string) => string,
  found: () => string,
): number {
  const [name = "", inline] = splitInline(arg.slice(2));
  const flag = LOCK_FLAG_TABLE.find((f) => f.name === name);
  if (!flag) {
    throw usage(`Cannot run as ${quote(arg)} is not a helm-lock flag: expected ${LOCK_FLAGS}`);
  }
  if (flag.value === "bool") {
    flag.set(settings, parseBool(inline, `--${name}`, usage), inline ?? "");
    return 0;
  }
  const value = inline ?? next;
  if (value === undefined) {
    const expected = flag.expected ?? `a duration such as "--${name} 5m"`;
    throw usage(`Cannot run as --${name} has no value: expected ${expected}, ${found()}`);
  }
  applyValue(settings, flag, value, `--${name}`);
  return inline === undefined ? 1 : 0;
}
