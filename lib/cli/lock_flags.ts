/**
 * helm-lock's own flags, all named `--lock-*` so they never clash with helm's, each with an
 * environment variable (`HELM_LOCK_TIMEOUT`): helmfile and wrapper scripts cannot add a flag to
 * only some of their helm calls. A flag on the command line wins over its variable.
 *
 * @module
 */

import { checkDuration } from "../duration.ts";
import { ExitCode, HelmLockError } from "../errors.ts";
import { parseBool, splitInline } from "../helm/argv.ts";
import { DEFAULT_LEASE_SECONDS, MAX_LEASE_DURATION_MS } from "../lock/lease.ts";

// A deploy that waits a day for a lock is stuck, not queued, and no hosted CI job lives that
// long; a longer value is a slip (`1000h`). Also well within one timer (2^31 - 1 ms).
const MAX_LOCK_TIMEOUT_MS = 24 * 3_600_000;

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

/** One `--lock-*` flag, also as help and completion show it (`help.ts`'s `OwnFlag`). */
export interface LockFlag {
  readonly name: string;
  readonly type: "duration" | "bool" | "string";
  readonly value?: string;
  /** What a missing value should have been. */
  readonly expected?: string;
  readonly values?: readonly string[];
  readonly description: string;
  /** Stores the value (milliseconds for a duration), or returns why it cannot be used. */
  set(settings: LockSettings, value: number | boolean | string): string | undefined;
}

const QUEUE_MODES = `"fifo" or "newest"`;
const ORDER_KEY = "a whole number such as $CI_PIPELINE_IID";

/** The `--lock-*` flags, parsed from the command line and from `HELM_LOCK_*` alike. */
export const LOCK_FLAG_TABLE: readonly LockFlag[] = [
  {
    name: "lock-timeout",
    type: "duration",
    value: "<duration>",
    description: "How long to wait for the lock (Go duration: 90s, 5m, 1h30m). Default: 10m",
    set: (s, v) => {
      if ((v as number) > MAX_LOCK_TIMEOUT_MS) return "it must be at most 24h";
      s.lockTimeoutMs = v as number;
      return undefined;
    },
  },
  {
    name: "lock-lease-duration",
    type: "duration",
    value: "<duration>",
    description: "How long the Lease outlives its last renewal, so how soon a killed job's " +
      "lock is taken over. Default: 15s",
    set: (s, v) => {
      // The Lease records whole seconds, and renewals every third of it need room.
      if ((v as number) < 1000) return "it must be at least 1s";
      if ((v as number) > MAX_LEASE_DURATION_MS) return "it must be at most 1h";
      s.leaseDurationSeconds = Math.round((v as number) / 1000);
      return undefined;
    },
  },
  {
    name: "lock-no-recover",
    type: "bool",
    description: "Only take the lock: do not roll back or uninstall a stuck or failed " +
      "release before running helm. A --dry-run never does",
    set: (s, v) => void (s.recover = !v),
  },
  {
    name: "lock-no-fence",
    type: "bool",
    description: "Let helm reach the API server directly, not through the local " +
      "pass-through that cuts it off when the lock is lost (fencing)",
    set: (s, v) => void (s.fence = !v),
  },
  {
    name: "lock-queue",
    type: "string",
    value: "fifo|newest",
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
    type: "string",
    value: "<integer>",
    expected: ORDER_KEY,
    description: "Queue by this number (e.g. $CI_PIPELINE_IID) and refuse (exit 8) a " +
      "deploy whose key is lower than the last successful one's",
    set: (s, v) => {
      if (!/^\d+$/.test(v as string)) {
        return `${JSON.stringify(v)} is not a whole number: expected ${ORDER_KEY}`;
      }
      // The largest integer stored and compared exactly.
      if (Number(v) > Number.MAX_SAFE_INTEGER) {
        return `${JSON.stringify(v)} is not a whole number up to ${Number.MAX_SAFE_INTEGER}: ` +
          `expected ${ORDER_KEY}`;
      }
      s.orderKey = Number(v);
      return undefined;
    },
  },
  {
    name: "lock-superseded-ok",
    type: "bool",
    description: "Exit 0, not 8, when --lock-queue newest supersedes this job",
    set: (s, v) => void (s.supersededOk = v as boolean),
  },
];

/** How a flag is written in help and messages: `-o, --output <format>`. */
export function flagUsage(flag: { name: string; short?: string; value?: string }): string {
  return [flag.short && `-${flag.short},`, `--${flag.name}`, flag.value].filter(Boolean).join(" ");
}

/** `argv` less its `--lock-*` flags before a lone `--`; `take` tells how many words follow one. */
export function withoutLockFlags(
  argv: readonly string[],
  take: (arg: string, next: string | undefined) => number,
): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") return [...rest, ...argv.slice(i)];
    if (arg.startsWith("--lock-")) i += take(arg, argv[i + 1]);
    else rest.push(arg);
  }
  return rest;
}

/** The settings when no `--lock-*` flag is given and no `HELM_LOCK_*` variable is set. */
export function defaultLockSettings(): LockSettings {
  return {
    lockTimeoutMs: 600_000,
    recover: true,
    leaseDurationSeconds: DEFAULT_LEASE_SECONDS,
    queue: "fifo",
    supersededOk: false,
    fence: true,
  };
}

const usage = (message: string) => new HelmLockError(ExitCode.Usage, message);

/** Parses and stores `flag`'s value (a bare boolean has none); `what` names its source. */
function applyValue(s: LockSettings, flag: LockFlag, text: string | undefined, what: string) {
  let value: number | boolean | string | undefined = text;
  if (flag.type === "duration") {
    const ms = checkDuration(text ?? "");
    if (typeof ms !== "number") throw usage(`Cannot use ${what} as ${ms.reason}: ${ms.expected}`);
    value = ms;
  } else if (flag.type === "bool") {
    value = parseBool(text, what, usage);
  }
  const problem = flag.set(s, value ?? "");
  // A duration's bounds are checked on its value: the message quotes the text too.
  const quoted = flag.type === "duration" ? `: found ${JSON.stringify(text)}` : "";
  if (problem) throw usage(`Cannot use ${what} as ${problem}${quoted}`);
}

/**
 * The settings from the defaults and the `HELM_LOCK_*` variables; an empty one counts as
 * unset, as helm's own variables do.
 *
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} naming a variable it cannot use.
 */
export function lockSettingsFromEnv(env: Record<string, string | undefined>): LockSettings {
  const settings = defaultLockSettings();
  for (const flag of LOCK_FLAG_TABLE) {
    const name = `HELM_${flag.name.toUpperCase().replaceAll("-", "_")}`;
    const text = env[name];
    // A boolean's message names the variable, not `HELM_LOCK_X=`.
    if (text) applyValue(settings, flag, text, flag.type === "bool" ? name : `${name}=${text}`);
  }
  return settings;
}

/**
 * Applies one `--lock-*` token (and its value, `next`, when not inline) to `settings`; `quote`
 * renders a token for a message with secrets scrubbed, `found` the `found "..."` part.
 *
 * @returns How many tokens after `arg` were consumed (0 or 1).
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for an unknown flag or a bad value.
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
    const all = LOCK_FLAG_TABLE.map(flagUsage);
    throw usage(
      `Cannot run as ${quote(arg)} is not a helm-lock flag: expected ` +
        `${all.slice(0, -1).join(", ")} or ${all.at(-1)}`,
    );
  }
  const bool = flag.type === "bool";
  const value = bool ? inline : inline ?? next;
  if (value === undefined && !bool) {
    const expected = flag.expected ?? `a duration such as "--${name} 5m"`;
    throw usage(`Cannot run as --${name} has no value: expected ${expected}, ${found()}`);
  }
  applyValue(settings, flag, value, `--${name}`);
  return inline === undefined && !bool ? 1 : 0;
}
