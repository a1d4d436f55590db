/**
 * Go duration syntax, so `--lock-timeout` reads like helm's own `--timeout` (Go's
 * `time.ParseDuration`, but a timeout cannot be negative).
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

/**
 * Reads a Go duration (`"1h30m"`) without throwing.
 *
 * @returns The duration in milliseconds (fractional below 1 ms), or why it is invalid in two
 * halves a caller can put in its own sentence: `"5x" has an unknown unit "x"`, and
 * `expected one of "ns", "us", "ms", "s", "m", "h"`.
 */
export function checkDuration(text: string): number | { reason: string; expected: string } {
  const quoted = JSON.stringify(text);
  const problem = (reason: string, expected = `expected a duration ${EXAMPLES}`) => ({
    reason,
    expected,
  });
  if (text === "") return problem("the duration is empty");
  if (text.startsWith("-")) return problem(`${quoted} is negative`);
  let rest = text.startsWith("+") ? text.slice(1) : text;
  if (rest === "0") return 0;
  const invalid = problem(
    `${quoted} is not a duration`,
    `expected a number with a unit ${EXAMPLES}`,
  );
  if (rest === "") return invalid;
  let nanos = 0;
  while (rest !== "") {
    const [number = "", whole = "", fraction = ""] = /^(\d*)(?:\.(\d*))?/.exec(rest) ?? [];
    if (whole === "" && fraction === "") return invalid;
    rest = rest.slice(number.length);
    // Like Go, the unit is everything up to the next digit or dot.
    const unit = /^[^\d.]*/.exec(rest)?.[0] ?? "";
    if (unit === "") {
      return problem(`${quoted} has no unit`, `expected a unit after the number, one of ${UNITS}`);
    }
    const scale = NANOS_PER_UNIT[unit];
    if (scale === undefined) {
      return problem(
        `${quoted} has an unknown unit ${JSON.stringify(unit)}`,
        `expected one of ${UNITS}`,
      );
    }
    rest = rest.slice(unit.length);
    nanos += Number(`${whole || "0"}.${fraction || "0"}`) * scale;
    if (nanos > MAX_NANOS) return problem(`${quoted} is too long`, "expected at most 2562047h");
  }
  return nanos / 1e6;
}

/**
 * A duration for messages to people, as Go's `Duration.String()` writes it, rounded to whole
 * milliseconds below a second and to whole seconds above: `350ms`, `12s`, `4m0s`, `1h30m30s`.
 *
 * @param ms A duration in milliseconds; a negative one is `0s`.
 */
export function roughDuration(ms: number): string {
  const rounded = ms < 1000 ? Math.round(Math.max(0, ms)) : Math.round(ms / 1000) * 1000;
  if (rounded < 1000) return rounded === 0 ? "0s" : `${rounded}ms`;
  const s = rounded / 1000;
  const [hours, minutes] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  if (hours > 0) return `${hours}h${minutes}m${s % 60}s`;
  return minutes > 0 ? `${minutes}m${s % 60}s` : `${s}s`;
}
