/**
 * Lines made safe to print. helm-lock's messages embed text it does not control: a Lease's
 * holder identity and annotations (anyone who may write Leases in the namespace sets them),
 * helm's error output, the command line. Printed raw, an escape sequence in such text
 * clears the user's screen, sets the terminal title or hides log lines in CI, and a bidi
 * override shows a different name than the one stored (issue 27).
 *
 * Text lines: every C0 control (newline included: one message, one line), DEL and C1
 * control is written `\xHH`, every bidi control and line or paragraph separator `\uHHHH`.
 * A backslash is doubled where it would otherwise start what reads as such an escape
 * (before `x`, `u`, a backslash or an escaped character), so the output is unambiguous:
 * `\x1b` in the output is an ESC, `\\x1b` the four characters `\x1b`. Elsewhere a backslash
 * stays single (a quoted `"a\"b"`, a Windows path). A line longer than
 * {@linkcode MAX_LINE_LENGTH} loses its middle to a visible marker.
 *
 * JSON lines (`-o json`): JSON already escapes C0 controls, not DEL, C1 or bidi controls. A
 * line that is valid JSON has those only inside strings, where `\uHHHH` means the same, so
 * they are written so; the line stays valid JSON with the same meaning, newlines and all,
 * and is never cut.
 *
 * @module
 */

/** The longest text line printed, in UTF-16 code units before escaping. */
const MAX_LINE_LENGTH = 4096;

// C0, DEL, C1; the Arabic letter mark, LRM and RLM; line and paragraph separators and the
// bidi embeddings and overrides (U+2028–U+202E); the bidi isolates (U+2066–U+2069).
const UNSAFE = "\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069";
const TEXT_ESCAPES = new RegExp(`\\\\(?=[\\\\xu${UNSAFE}])|[${UNSAFE}]`, "g");
// In valid JSON, raw C0 controls can only be whitespace between tokens.
const JSON_ESCAPES = new RegExp(
  `[\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]`,
  "g",
);

const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, "0");

/**
 * A line as it may be printed: see the module documentation.
 *
 * @example
 * ```ts
 * printable("held by ghost\x1b[2J"); // "held by ghost\\x1b[2J"
 * printable('{"holder":"\u202eevil"}'); // '{"holder":"\\u202eevil"}'
 * ```
 *
 * @param line One line of output, without its final newline.
 * @param maxLength The longest text line kept whole. @default {MAX_LINE_LENGTH}
 * @returns The line with no control character left but a JSON line's newlines.
 */
export function printable(line: string, maxLength: number = MAX_LINE_LENGTH): string {
  if (isJson(line)) {
    return line.replace(JSON_ESCAPES, (c) => `\\u${hex(c, 4)}`).replace(/[\t\r]/g, " ");
  }
  return bounded(line, maxLength).replace(
    TEXT_ESCAPES,
    (c) => c === "\\" ? "\\\\" : c.charCodeAt(0) < 0x100 ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`,
  );
}

const UNSAFE_CHAR = new RegExp(`[${UNSAFE}]`);
const UNSAFE_CHARS = new RegExp(`[${UNSAFE}]`, "g");

/** Whether `text` has a character {@linkcode printable} escapes (a newline counts). */
export function hasUnsafe(text: string): boolean {
  return UNSAFE_CHAR.test(text);
}

/**
 * `text` as a JSON string literal with every character {@linkcode printable} escapes written
 * as an escape (`\n`, `\uHHHH`): valid JSON, and a valid YAML double-quoted scalar (YAML 1.2 reads JSON's
 * escapes), of the same value, printable as it is.
 *
 * @example
 * ```ts
 * quotedString("ghost\x1b[2J\u202e"); // '"ghost\\u001b[2J\\u202e"'
 * ```
 */
export function quotedString(text: string): string {
  // JSON escapes C0 controls (\n, \u001b), not DEL, C1 or bidi controls.
  return JSON.stringify(text).replace(UNSAFE_CHARS, (c) => `\\u${hex(c, 4)}`);
}

/**
 * A block of lines of helm-lock's own making (help, a completion script, `-o yaml`, which
 * quotes unsafe values itself with {@linkcode quotedString}), as it may be printed: a line
 * without an unsafe character is kept as it is (its backslashes stay single, as a shell
 * script needs them), any other is made {@linkcode printable}, so nothing unsafe gets
 * through even when a value was not quoted.
 */
export function printableBlock(text: string): string {
  return text.split("\n").map((line) => hasUnsafe(line) ? printable(line) : line).join("\n");
}

function isJson(line: string): boolean {
  if (!/^\s*[[{]/.test(line)) return false;
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/**
 * `text` at most about `max` code units long: when longer, its middle (where a message's
 * embedded value usually is; its start and its advice stay) is replaced by
 * `[... N characters cut ...]`. Linear in the length of `text`.
 */
function bounded(text: string, max: number): string {
  if (text.length <= max) return text;
  let head = Math.ceil(max / 2);
  let tail = text.length - Math.floor(max / 2);
  // Never split a surrogate pair: half a character prints as U+FFFD.
  if (isLowSurrogate(text, head)) head--;
  if (isLowSurrogate(text, tail)) tail++;
  return `${text.slice(0, head)}[... ${tail - head} characters cut ...]${text.slice(tail)}`;
}

function isLowSurrogate(text: string, at: number): boolean {
  const code = text.charCodeAt(at);
  return code >= 0xdc00 && code <= 0xdfff;
}
