// Control characters are what these tests are about.
// deno-lint-ignore-file no-control-regex
import assert from "node:assert/strict";
import { hasUnsafe, printable, printableBlock, quotedString } from "../../lib/sanitize.ts";
import { assertLinear } from "../support/linear.ts";

/** Every character a terminal or a bidi-aware viewer acts on instead of showing. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
const UNSAFE_EXCEPT_NEWLINE =
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

/** Reads a text line of printable() back: the proof that its output is unambiguous. */
function unescape(text: string): string {
  return text.replace(
    /\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})?/g,
    (all, esc: string | undefined) =>
      esc === undefined
        ? all
        : esc === "\\"
        ? "\\"
        : String.fromCharCode(parseInt(esc.slice(1), 16)),
  );
}

Deno.test("printable() writes escape sequences, BEL and DEL visibly", () => {
  assert.equal(
    printable("held by ghost\x1b[2J, CI job \x1b[31mRED\x1b]0;title\x07\x7f"),
    "held by ghost\\x1b[2J, CI job \\x1b[31mRED\\x1b]0;title\\x07\\x7f",
  );
});

Deno.test("printable() makes one line of a line with newlines, tabs and carriage returns", () => {
  assert.equal(printable("a\nhelm-lock: forged\r\tb"), "a\\x0ahelm-lock: forged\\x0d\\x09b");
});

Deno.test("printable() writes C1 controls, bidi controls and line separators visibly", () => {
  assert.equal(printable("a\u009b31mb\u0085"), "a\\x9b31mb\\x85");
  const bidi = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c";
  assert.equal(
    printable(`x${bidi}\u2028\u2029y`),
    "x\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c" +
      "\\u2028\\u2029y",
  );
});

Deno.test("printable() leaves ordinary text alone, non-ASCII letters and lone backslashes too", () => {
  for (
    const line of [
      'acquired lock helm-lock-app in namespace "prod" after 0s',
      'Cannot use --set as "a\\"b" is odd: C:\\Users\\me',
      "Zürich, 東京, emoji 🚀, zero width\u200bspace",
      "ends with a backslash \\",
    ]
  ) assert.equal(printable(line), line);
});

Deno.test("printable() doubles a backslash only where it would read as an escape", () => {
  assert.equal(printable("literal \\x1b"), "literal \\\\x1b");
  assert.equal(printable("literal \\u202e"), "literal \\\\u202e");
  assert.equal(printable("two \\\\ and \\\x1b"), "two \\\\\\ and \\\\\\x1b");
  // The literal text and the control character it names come out different.
  assert.notEqual(printable("\\x1b"), printable("\x1b"));
});

Deno.test("printable() output reads back to its input: nothing is ambiguous", () => {
  const alphabet = ["\\", "x", "u", "1", "b", "a", "\x1b", "\n", "\x7f", "\u009b", "\u202e", "é"];
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 5000; i++) {
    const length = Math.floor(random() * 12);
    const text = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)])
      .join("");
    const out = printable(text);
    assert.doesNotMatch(out, UNSAFE, JSON.stringify(text));
    assert.equal(unescape(out), text, JSON.stringify(text));
  }
});

Deno.test("printable() keeps a JSON line valid JSON with the same meaning", () => {
  const value = {
    holder: "ghost\x1b[2J\u202eevil\u2066",
    url: "https://ci/\x07\x7f\u0085",
    path: "C:\\x1b\\u202e",
    list: [1, "\u200f", null],
  };
  for (const json of [JSON.stringify(value), JSON.stringify(value, null, 2)]) {
    const out = printable(json);
    assert.doesNotMatch(out, UNSAFE_EXCEPT_NEWLINE);
    assert.deepEqual(JSON.parse(out), value);
    assert.match(out, /\\u202eevil/);
  }
  // Pretty JSON keeps its lines; a JSON line is never cut.
  const pretty = JSON.stringify(value, null, 2);
  assert.equal(printable(pretty).split("\n").length, pretty.split("\n").length);
  const long = JSON.stringify({ holder: "x".repeat(100) });
  assert.equal(printable(long, 20), long);
});

Deno.test("printable() reads text that only looks like JSON as text", () => {
  assert.equal(printable("[debug] held by \x1b"), "[debug] held by \\x1b");
  assert.equal(printable('{"a":"\x1b"}'), '{"a":"\\x1b"}'); // a raw control: not JSON
});

Deno.test("printable() cuts the middle of a long line and says how much it cut", () => {
  const line = `start ${"x".repeat(10_000)} end`;
  const out = printable(line, 100);
  assert.equal(out, `start ${"x".repeat(44)}[... 9910 characters cut ...]${"x".repeat(46)} end`);
  // By default a line is cut at 4096 characters, and never through a surrogate pair.
  const emoji = "🚀".repeat(5000);
  const cut = printable(emoji);
  assert.ok(cut.length < 4200, `${cut.length}`);
  assert.ok(cut.isWellFormed());
  assert.match(cut, /^(🚀)+\[\.\.\. \d+ characters cut \.\.\.\](🚀)+$/);
  assert.equal(printable("🚀".repeat(10), 6), "🚀[... 16 characters cut ...]🚀");
  // Escapes are written after the cut: none is cut in half.
  assert.equal(printable("\x1b".repeat(10), 4), "\\x1b\\x1b[... 6 characters cut ...]\\x1b\\x1b");
});

Deno.test("printable() is linear in controls, backslashes and bidi marks", () => {
  assertLinear(
    "controls and backslashes",
    (n) => "\\\x1b\\x".repeat(n / 4),
    (s) => printable(s, Infinity),
  );
  assertLinear(
    "bidi marks in JSON",
    (n) => JSON.stringify({ a: "\u202e".repeat(n) }),
    (s) => printable(s),
  );
});

Deno.test("hasUnsafe() finds every character printable() escapes, and nothing else", () => {
  for (let code = 0; code < 0x2100; code++) {
    const c = String.fromCharCode(code);
    assert.equal(hasUnsafe(`a${c}b`), UNSAFE.test(c), `U+${code.toString(16)}`);
  }
  assert.equal(hasUnsafe("a\\x1b \\u202e"), false);
});

Deno.test("quotedString() is JSON and YAML of the same value, with no unsafe character", async () => {
  const { load } = await import("js-yaml");
  const hostile =
    "ghost\x1b[2J\x07\u202eevil\u202c\nhelm-lock: forged\r\t\u0085\u009b\x7f\u2028 \\x1b";
  const quoted = quotedString(hostile);
  assert.doesNotMatch(quoted, UNSAFE);
  assert.equal(JSON.parse(quoted), hostile);
  assert.deepEqual(load(`holder: ${quoted}`), { holder: hostile });
  assert.equal(quotedString("plain"), '"plain"');
});

Deno.test("printableBlock() keeps safe lines as they are and makes the others printable", () => {
  // A completion script's backslashes stay single; printable() would double the second.
  const script = "items+=(\"${line//:/\\\\:}\")\n  ok $'\\t'";
  assert.equal(printableBlock(script), script);
  assert.equal(
    printableBlock("safe \\x1b\nheld by ghost\x1b[2J \\x1b\n"),
    "safe \\x1b\nheld by ghost\\x1b[2J \\\\x1b\n",
  );
});
