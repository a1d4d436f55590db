/**
 * Hides secrets, always as `***`, in a helm command line before helm-lock prints it or stores
 * it on the Lease (docs/design.md, Secrets): by where they stand, never by searching
 * helm-lock's own lines for their text. Linear in the length of its input (issue 9).
 *
 * @module
 */

/** The text that replaces a secret. */
export const MASK = "***";

const SECRET_NAME = /token|passw(or)?d|secret/i;
// `--name` or `--name=value`.
const FLAG = /^--([^=]+)(?:=(.*))?$/s;
// A key as helm's strvals parser reads it (with the `\` of escaped dots and list brackets),
// then its "=". Sticky, so a 1 MB `--set` of 250,000 assignments stays in the milliseconds.
const KEY = /[\p{L}\p{N}_.\-\\/[\]]+=/uy;

type Handling = "key-value" | "literal" | "secret";

function handlingOf(name: string): Handling | undefined {
  if (name === "set" || name === "set-string" || name === "set-json") return "key-value";
  // `--set-literal key=value`: everything after the first "=" is one value.
  if (name === "set-literal") return "literal";
  // --kube-token, --password and --username (registry and repository credentials) among them.
  if (name === "username" || SECRET_NAME.test(name)) return "secret";
  return undefined;
}

/** A redacted copy of a helm argv: `["--set", "db.password=hunter2"]` reads `db.password=***`. */
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
    if (!flag || !handling) out.push(redactUrls(arg));
    else if (flag[2] !== undefined) out.push(`--${flag[1]}=${redactValue(handling, flag[2])}`);
    else {
      out.push(arg);
      pending = handling;
    }
  }
  return out;
}

function redactValue(handling: Handling, value: string): string {
  if (handling === "secret") return MASK;
  // `key=***` for each assignment, or `***` for one that does not start with a key.
  const masked = (start: number) => {
    const eq = keyEnd(value, start);
    return eq < 0 ? MASK : `${value.slice(start, eq)}=${MASK}`;
  };
  return handling === "literal" ? masked(0) : assignments(value).map(([s]) => masked(s)).join(",");
}

// The index of the "=" that ends a non-empty key at value[start]; else -1. A key has no
// comma, so it never reaches past its assignment.
function keyEnd(value: string, start: number): number {
  KEY.lastIndex = start;
  return KEY.test(value) ? KEY.lastIndex - 1 : -1;
}

// The [start, end) of each assignment of `a=1,b={x,y},c="p,q"`, split at the commas helm would
// split at: not escaped, not inside braces, brackets or double quotes. Unbalanced text stays
// in one part, which is hidden whole.
function assignments(value: string): [number, number][] {
  const parts: [number, number][] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === "{" || c === "[")) depth++;
    else if (!quoted && (c === "}" || c === "]")) depth = Math.max(0, depth - 1);
    else if (c === "," && depth === 0 && !quoted) {
      parts.push([start, i]);
      start = i + 1;
    }
  }
  return [...parts, [start, value.length]];
}

// Where user info ends: "/" or white space; "?" and "#" do not end it (an unescaped "#" in a
// password is still hidden).
const AUTHORITY_END = /[\s/]/g;

/** Hides the user info of URLs: `https://user:pass@host/x` becomes `https://***@host/x`. */
export function redactUrls(text: string): string {
  // Not a regular expression, which backtracks quadratically (issue 9: 100 KB took 10 s): each
  // character is looked at a bounded number of times.
  let out = "";
  let copied = 0;
  let at = text.indexOf("://");
  while (at >= 0) {
    let start = at;
    while (start > 0 && /[a-z0-9+.-]/i.test(text[start - 1]!)) start--;
    // A scheme starts with a letter.
    while (start < at && !/[a-z]/i.test(text[start]!)) start++;
    const authority = at + 3;
    AUTHORITY_END.lastIndex = authority;
    const end = AUTHORITY_END.exec(text)?.index ?? text.length;
    const lastAt = text.slice(authority, end).lastIndexOf("@");
    if (start < at && lastAt > 0) {
      out += text.slice(copied, authority) + MASK;
      copied = authority + lastAt;
    }
    // The next "://" may begin with the authority's last character (`a://b://c@d`).
    at = text.indexOf("://", Math.max(authority, end - 1));
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/**
 * The values of the flags {@linkcode redactArgs} redacts given as their own argument
 * (`--password hunter2`), to hide whole where a message quotes them as a positional.
 */
export function secretArgs(args: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (let i = 0; i < args.length - 1; i++) {
    const flag = FLAG.exec(args[i] ?? "");
    if (flag && flag[2] === undefined && handlingOf(flag[1] ?? "")) found.add(args[++i] ?? "");
  }
  return found;
}

/**
 * The secret values in a helm argv, longest first, for {@linkcode redactText}; `--set*` values
 * of at least 4 characters (shorter ones like `v2` or `true` would hide ordinary words).
 */
export function secretValues(args: readonly string[]): string[] {
  const found = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const flag = FLAG.exec(args[i] ?? "");
    const handling = flag ? handlingOf(flag[1] ?? "") : undefined;
    if (!flag || !handling) continue;
    const value = flag[2] ?? args[++i];
    if (value === undefined || value === "") continue;
    if (handling === "secret") {
      found.add(value);
      continue;
    }
    const parts: [number, number][] = handling === "literal"
      ? [[0, value.length]]
      : assignments(value);
    for (const [start, end] of parts) {
      const eq = keyEnd(value, start);
      const from = eq < 0 ? start : eq + 1;
      if (end - from >= 4) found.add(value.slice(from, end));
    }
  }
  return [...found].sort((a, b) => b.length - a.length);
}

/** `text` with every occurrence of each (non-empty) secret and URL user info hidden. */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is hidden whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret !== "") out = out.replaceAll(secret, MASK);
  }
  return redactUrls(out);
}

/** A redacted argv as one line a shell could read: `upgrade app --description 'a b'`. */
export function redactCommandLine(args: readonly string[]): string {
  return redactArgs(args).map((arg) =>
    /^[\p{L}\p{N}_@%+=:,./\-*[\]]+$/u.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`
  ).join(" ");
}
