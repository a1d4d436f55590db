/**
 * Hides secrets in a helm command line before helm-lock prints it or stores it on the
 * Lease (DESIGN §4). What is hidden, always as `***`:
 *
 * - the values of `--set`, `--set-string`, `--set-json` and `--set-literal`; their keys stay,
 *   so `--set db.password=hunter2,image.tag=v2` reads `--set db.password=***,image.tag=***`
 *   and a reader still sees *what* was set;
 * - the whole value of `--kube-token`, `--password` and `--username` (registry and chart
 *   repository credentials), and of any flag whose name contains `token`, `password`,
 *   `passwd` or `secret`;
 * - the user info of URLs in any argument: `https://user:pass@host` becomes
 *   `https://***@host` (`--repo`, `oci://` chart references, `--kube-apiserver`).
 *
 * What stays: file paths (`-f`, `--values`, `--set-file`, `--kube-ca-file`, ...), since a
 * path is not a secret and helm-lock never reads those files. Both `--flag value` and
 * `--flag=value` forms are handled. Redaction errs on the side of hiding: a value helm-lock
 * cannot split safely (unbalanced quotes or braces) is hidden whole.
 *
 * Secrets are hidden by what they are, where they stand, never by searching helm-lock's own
 * lines for their text: a `--set env=staging` must not turn `namespace "staging"` into
 * `namespace "***"`. So a command line is redacted argument by argument
 * ({@linkcode redactArgs}); URL user info wherever it is ({@linkcode redactUrls}); and only
 * text helm-lock did not write (helm's error output, an unexpected error) is searched for the
 * secret values of the command line ({@linkcode redactText}).
 *
 * All of it is linear in the length of its input: a 1 MB argument costs milliseconds.
 *
 * @module
 */

/** The text that replaces a secret. */
export const MASK = "***";

// Flags whose value is `key=value[,key=value...]`: keep the keys, hide the values.
const KEY_VALUE_FLAGS = new Set(["set", "set-string", "set-json"]);
// `--set-literal key=value`: everything after the first "=" is one literal value.
const LITERAL_FLAGS = new Set(["set-literal"]);
// Flags whose whole value is a secret.
const SECRET_FLAGS = new Set(["kube-token", "password", "username"]);
const SECRET_NAME = /token|passw(or)?d|secret/i;

// `--name` or `--name=value`.
const FLAG = /^--([^=]+)(?:=(.*))?$/s;

// A character of a key as helm's strvals parser reads it (letters, digits, `_.-/`, the `\` of
// escaped dots and the brackets of list indexes), for non-ASCII code points.
const KEY_CHAR = /^[\p{L}\p{N}]$/u;

type Handling = "key-value" | "literal" | "secret";

function handlingOf(name: string): Handling | undefined {
  if (KEY_VALUE_FLAGS.has(name)) return "key-value";
  if (LITERAL_FLAGS.has(name)) return "literal";
  if (SECRET_FLAGS.has(name) || SECRET_NAME.test(name)) return "secret";
  return undefined;
}

/**
 * Redacts the secrets in a helm argv (see the module documentation for the rules).
 *
 * @example
 * ```ts
 * redactArgs(["upgrade", "app", "./chart", "--set", "db.password=hunter2"]);
 * // ["upgrade", "app", "./chart", "--set", "db.password=***"]
 * ```
 *
 * @param args The argv as given to helm, without the program name.
 * @returns A redacted copy; `args` is not changed.
 */
export function redactArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let pending: Handling | undefined;
  for (const arg of args) {
    if (pending) {
      out.push(redactValue(pending, arg));
      pending = undefined;
      continue;
    }
    const flag = FLAG.exec(arg);
    const handling = flag ? handlingOf(flag[1] ?? "") : undefined;
    if (flag && handling) {
      const [, name, inline] = flag;
      if (inline === undefined) {
        out.push(arg);
        pending = handling;
      } else {
        out.push(`--${name}=${redactValue(handling, inline)}`);
      }
      continue;
    }
    out.push(redactUrls(arg));
  }
  return out;
}

function redactValue(handling: Handling, value: string): string {
  switch (handling) {
    case "secret":
      return MASK;
    case "literal":
      return maskAfterKey(value, 0, value.length);
    case "key-value": {
      let out = "";
      forEachAssignment(value, (start, end) => {
        out += (start === 0 ? "" : ",") + maskAfterKey(value, start, end);
      });
      return out;
    }
  }
}

// `key=***` for the assignment value[start, end), or `***` when it does not start with a key.
function maskAfterKey(value: string, start: number, end: number): string {
  const eq = keyEnd(value, start, end);
  return eq < 0 ? MASK : `${value.slice(start, eq)}=${MASK}`;
}

// The index of the "=" that ends a non-empty key at value[start], before `end`; else -1.
// A loop, not a regular expression per part: a 1 MB `--set` of 250,000 assignments stays
// in the milliseconds.
function keyEnd(value: string, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const c = value.charCodeAt(i);
    if (c === 0x3d) return i > start ? i : -1;
    if (c < 0x80) {
      if (!isAsciiKeyChar(c)) return -1;
      i++;
    } else {
      const point = value.codePointAt(i) ?? 0;
      if (!KEY_CHAR.test(String.fromCodePoint(point))) return -1;
      i += point > 0xffff ? 2 : 1;
    }
  }
  return -1;
}

function isAsciiKeyChar(c: number): boolean {
  return isLetter(c) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2e || c === 0x2d ||
    c === 0x5c || c === 0x2f || c === 0x5b || c === 0x5d;
}

// Calls `part(start, end)` for each assignment of `a=1,b={x,y},c="p,q"`, split at the commas
// helm would split at: not escaped, not inside braces, brackets or double quotes. Unbalanced
// text stays in one part, which is hidden whole, so a value is never shown for want of
// parsing it.
function forEachAssignment(value: string, part: (start: number, end: number) => void): void {
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x5c) { // \
      i++;
    } else if (c === 0x22) { // "
      quoted = !quoted;
    } else if (!quoted && (c === 0x7b || c === 0x5b)) { // { [
      depth++;
    } else if (!quoted && (c === 0x7d || c === 0x5d)) { // } ]
      depth = Math.max(0, depth - 1);
    } else if (c === 0x2c && depth === 0 && !quoted) { // ,
      part(start, i);
      start = i + 1;
    }
  }
  part(start, value.length);
}

/**
 * Hides the user info of URLs: `https://user:pass@host/x` becomes `https://***@host/x`.
 *
 * @param text Any text.
 * @returns The text with every `scheme://userinfo@` replaced.
 */
export function redactUrls(text: string): string {
  // A scan rather than a regular expression: the obvious pattern
  // (/[a-z][a-z0-9+.-]*:\/\/[^\s/]+@/gi) backtracks over every start position, quadratic in
  // the length of a long argument (issue 9: 100 KB took 10 s). Each character here is looked
  // at a bounded number of times: the scheme scan stops at the previous "://" (its "/"), and
  // the authority scan at the next "/" or white space, before which no "://" can start.
  let out = "";
  let copied = 0;
  let at = text.indexOf("://");
  while (at >= 0) {
    let start = at;
    while (start > 0 && isSchemeChar(text.charCodeAt(start - 1))) start--;
    // A scheme starts with a letter: skip the digits and "+.-" a match could not start with.
    while (start < at && !isLetter(text.charCodeAt(start))) start++;
    const authority = at + 3;
    let end = authority;
    let lastAt = -1;
    while (end < text.length && !isAuthorityEnd(text.charCodeAt(end))) {
      if (text.charCodeAt(end) === AT_SIGN) lastAt = end;
      end++;
    }
    if (start < at && lastAt > authority) {
      out += text.slice(copied, authority) + MASK;
      copied = lastAt;
    }
    // The next "://" may begin with the authority's last character (`a://b://c@d`).
    at = text.indexOf("://", Math.max(authority, end - 1));
  }
  return copied === 0 ? text : out + text.slice(copied);
}

const AT_SIGN = 0x40;

function isLetter(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

// RFC 3986 scheme characters after the first: letters, digits, "+", "-", ".".
function isSchemeChar(c: number): boolean {
  return isLetter(c) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;
}

// Where the user info can no longer go on: "/" or white space (as \s: space, tab, line
// breaks). "?" and "#" do not end it, so an unescaped "#" in a password is still hidden.
function isAuthorityEnd(c: number): boolean {
  return c === 0x2f || c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0 ||
    c === 0x2028 || c === 0x2029 || c === 0xfeff || c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x3000;
}

/**
 * The arguments that hold secrets by their place in a helm argv: the values of the flags
 * {@linkcode redactArgs} redacts (`--kube-token`, `--password`, `--set`, ...) given as their
 * own argument (`--password hunter2`, `--set db.password=hunter2`). A message quoting one
 * argument (`Cannot lock release "x" ...`) hides it whole when it is one of these: helm-lock
 * may have read it as a positional argument (after a flag its tables do not know to take a
 * value), while the redaction of the command line hid it.
 *
 * @param args The argv as given to helm.
 * @returns The set of such arguments.
 */
export function secretArgs(args: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (let i = 0; i < args.length - 1; i++) {
    const flag = FLAG.exec(args[i] ?? "");
    if (flag && flag[2] === undefined && handlingOf(flag[1] ?? "") !== undefined) {
      found.add(args[++i] ?? "");
    }
  }
  return found;
}

/**
 * The secret values in a helm argv, for scrubbing other text (such as helm's error output)
 * with {@linkcode redactText}: whole values of secret flags, and the values of `--set*`
 * assignments that are at least 4 characters long (shorter ones like `v2` or `true` would
 * hide ordinary words).
 *
 * @param args The argv as given to helm.
 * @returns The secrets found, longest first, without duplicates.
 */
export function secretValues(args: readonly string[]): string[] {
  const found = new Set<string>();
  const add = (handling: Handling, value: string) => {
    if (handling === "secret") {
      found.add(value);
      return;
    }
    const addPart = (start: number, end: number) => {
      const eq = keyEnd(value, start, end);
      const from = eq < 0 ? start : eq + 1;
      if (end - from >= 4) found.add(value.slice(from, end));
    };
    if (handling === "literal") addPart(0, value.length);
    else forEachAssignment(value, addPart);
  };
  for (let i = 0; i < args.length; i++) {
    const flag = FLAG.exec(args[i] ?? "");
    const handling = flag ? handlingOf(flag[1] ?? "") : undefined;
    if (!flag || !handling) continue;
    const value = flag[2] ?? args[++i];
    if (value !== undefined && value !== "") add(handling, value);
  }
  return [...found].sort((a, b) => b.length - a.length);
}

/**
 * Replaces every occurrence of each secret in `text` with {@linkcode MASK}, and hides the
 * user info of URLs.
 *
 * @param text The text to scrub.
 * @param secrets The values to hide; empty strings are ignored.
 * @returns The scrubbed text.
 */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is hidden whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret !== "") out = out.replaceAll(secret, MASK);
  }
  return redactUrls(out);
}

/**
 * A redacted argv as one line a user can read (and, quoting aside, paste into a shell):
 * arguments with spaces or shell characters are single-quoted.
 *
 * @param args The argv, without the program name.
 * @returns The redacted command line, e.g. `upgrade app ./chart --set 'msg=***'`.
 */
export function redactCommandLine(args: readonly string[]): string {
  return redactArgs(args).map(quote).join(" ");
}

function quote(arg: string): string {
  if (/^[\p{L}\p{N}_@%+=:,./\-*[\]]+$/u.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'"'"'`)}'`;
}
