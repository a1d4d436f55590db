/**
 * Go duration syntax, so `--lock-timeout` reads like helm's own `--timeout`: `300ms`, `90s`,
 * `5m`, `1h30m`, `1.5h`, `0`. Follows Go's `time.ParseDuration`, except that negative
 * durations are refused (a timeout cannot be negative).
 *
 * @module
 */

const NANOS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3, // µs, MICRO SIGN, as Go accepts
  "\u03bcs": 1e3, // μs, GREEK SMALL LETTER MU, as Go accepts
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const UNITS = `"ns", "us", "ms", "s", "m", "h"`;
const EXAMPLES = `such as "90s", "5m" or "1h30m"`;
// Go stores durations as int64 nanoseconds: about 292 years.
const MAX_NANOS = 9223372036854775807;

/** Why a text is not a duration, in two halves a caller can put in its own sentence. */
export interface DurationProblem {
  /** What is wrong, naming the text: `"5x" has an unknown unit "x"`. */
  reason: string;
  /** What was expected: `expected one of "ns", "us", "ms", "s", "m", "h"`. */
  expected: string;
}

/**
 * Reads a Go duration without throwing.
 *
 * @param text The duration, e.g. `"1h30m"`.
 * @returns The duration in milliseconds (fractional below 1 ms), or why it is invalid.
 */
export function checkDuration(text: string): number | DurationProblem {
  const quoted = JSON.stringify(text);
  const invalid = {
    reason: `${quoted} is not a duration`,
    expected: `expected a number with a unit ${EXAMPLES}`,
  };
  if (text === "") {
    return { reason: "the duration is empty", expected: `expected a duration ${EXAMPLES}` };
  }
  let rest = text;
  if (rest.startsWith("-")) {
    return { reason: `${quoted} is negative`, expected: `expected a duration ${EXAMPLES}` };
  }
  if (rest.startsWith("+")) rest = rest.slice(1);
  if (rest === "0") return 0;
  if (rest === "") return invalid;

  let nanos = 0;
  while (rest !== "") {
    const number = /^(\d*)(?:\.(\d*))?/.exec(rest);
    const whole = number?.[1] ?? "";
    const fraction = number?.[2] ?? "";
    if (whole === "" && fraction === "") return invalid;
    rest = rest.slice(number?.[0].length ?? 0);
    // Like Go, the unit is everything up to the next digit or dot.
    const unit = /^[^\d.]*/.exec(rest)?.[0] ?? "";
    if (unit === "") {
      return {
        reason: `${quoted} has no unit`,
        expected: `expected a unit after the number, one of ${UNITS}`,
      };
    }
    const scale = NANOS_PER_UNIT[unit];
    if (scale === undefined) {
      return {
        reason: `${quoted} has an unknown unit ${JSON.stringify(unit)}`,
        expected: `expected one of ${UNITS}`,
      };
    }
    rest = rest.slice(unit.length);
    nanos += Number(`${whole || "0"}.${fraction || "0"}`) * scale;
    if (nanos > MAX_NANOS) {
      return { reason: `${quoted} is too long`, expected: "expected at most 2562047h" };
    }
  }
  return nanos / 1e6;
}

/**
 * Formats milliseconds like Go's `Duration.String()`: `1h30m0s`, `1m30.5s`, `300ms`, `0s`.
 *
 * @param ms A non-negative duration in milliseconds.
 * @returns The duration in Go syntax, which {@linkcode checkDuration} reads back.
 */
function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1e-3) return `${trim(ms * 1e6)}ns`;
  if (ms < 1) return `${trim(ms * 1e3)}\u00b5s`;
  if (ms < 1000) return `${trim(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = trim((ms % 60_000) / 1000);
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/**
 * A duration for messages to people: {@linkcode formatDuration} of `ms` rounded to whole
 * milliseconds below a second and to whole seconds above (`350ms`, `12s`, `4m0s`, `1h30m30s`).
 *
 * @param ms A non-negative duration in milliseconds.
 * @returns The rounded duration in Go syntax.
 */
export function roughDuration(ms: number): string {
  const positive = Math.max(0, ms);
  return formatDuration(
    positive < 1000 ? Math.round(positive) : Math.round(positive / 1000) * 1000,
  );
}

// Up to nanosecond precision, without float noise such as 0.30000000000000004.
function trim(value: number): string {
  return String(Number(value.toFixed(9)));
}
