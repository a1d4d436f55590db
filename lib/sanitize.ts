/**
 * Lines made safe to print: helm-lock's messages embed text it does not control (a Lease's
 * annotations, helm's error output), which printed raw could clear the screen or, with a bidi
 * override, show another name than the one stored (issue 27; docs/hostile-input.md).
 *
 * @module
 */

/** The longest text line printed, in UTF-16 code units before escaping. */
const MAX_LINE_LENGTH = 4096;

// C0; DEL and C1; the Arabic letter mark, LRM and RLM; line and paragraph separators, bidi
// embeddings and overrides (U+2028–U+202E); bidi isolates. JSON escapes C0 itself: in valid
// JSON, raw C0 controls can only be whitespace between tokens.
const NOT_C0 = "\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069";
const UNSAFE = `\\x00-\\x1f${NOT_C0}`;
const TEXT_ESCAPES = new RegExp(`\\\\(?=[\\\\xu${UNSAFE}])|[${UNSAFE}]`, "g");
const JSON_ESCAPES = new RegExp(`[${NOT_C0}]`, "g");

const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, "0");

/**
 * A line as it may be printed: a control `\xHH`, a bidi control `\uHHHH`, a backslash doubled
 * only where it would read as such an escape; a long line loses its middle. A JSON line
 * (`-o json`) stays valid JSON of the same meaning and is never cut.
 *
 * @param maxLength The longest text line kept whole. @default {MAX_LINE_LENGTH}
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

const UNSAFE_CHARS = new RegExp(`[${UNSAFE}]`, "g");

/** Whether `text` has a character {@linkcode printable} escapes (a newline counts). */
export function hasUnsafe(text: string): boolean {
  return text.search(UNSAFE_CHARS) >= 0;
}

/** `text` as a JSON string, unsafe characters escaped: also a YAML double-quoted scalar. */
export function quotedString(text: string): string {
  return JSON.stringify(text).replace(UNSAFE_CHARS, (c) => `\\u${hex(c, 4)}`);
}

/**
 * Lines of helm-lock's own making (help, a completion script, `-o yaml`): a safe line is kept
 * as it is (a shell script needs its backslashes single), any other made {@linkcode printable}.
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

/** `text` cut in its middle (where a message's embedded value usually is) to about `max`. */
function bounded(text: string, max: number): string {
  if (text.length <= max) return text;
  let head = Math.ceil(max / 2);
  let tail = text.length - Math.floor(max / 2);
  // Never split a surrogate pair: half a character prints as U+FFFD.
  if (/[\udc00-\udfff]/.test(text[head]!)) head--;
  if (/[\udc00-\udfff]/.test(text[tail] ?? "")) tail++;
  return `${text.slice(0, head)}[... ${tail - head} characters cut ...]${text.slice(tail)}`;
}
