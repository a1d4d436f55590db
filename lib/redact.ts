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

// A key as helm's strvals parser reads it, including escaped dots and list indexes.
const KEY = /^[\p{L}\p{N}_.\-\\/[\]]+(?==)/u;

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
    const flag = /^--([^=]+)(?:=(.*))?$/s.exec(arg);
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
    case "literal": {
      const key = KEY.exec(value)?.[0];
      return key === undefined ? MASK : `${key}=${MASK}`;
    }
    case "key-value":
      return splitAssignments(value)
        .map((part) => {
          const key = KEY.exec(part)?.[0];
          return key === undefined ? MASK : `${key}=${MASK}`;
        })
        .join(",");
  }
}

// Splits `a=1,b={x,y},c="p,q"` at the commas helm would split at: not escaped, not inside
// braces, brackets or double quotes. Unbalanced text stays in one part, which is hidden
// whole, so a value is never shown for want of parsing it.
function splitAssignments(value: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "\\") {
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (!quoted && (c === "{" || c === "[")) {
      depth++;
    } else if (!quoted && (c === "}" || c === "]")) {
      depth = Math.max(0, depth - 1);
    } else if (c === "," && depth === 0 && !quoted) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts;
}

/**
 * Hides the user info of URLs: `https://user:pass@host/x` becomes `https://***@host/x`.
 *
 * @param text Any text.
 * @returns The text with every `scheme://userinfo@` replaced.
 */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/]+@/gi, `$1${MASK}@`);
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
    const parts = handling === "literal" ? [value] : splitAssignments(value);
    for (const part of parts) {
      const key = KEY.exec(part)?.[0];
      const secret = key === undefined ? part : part.slice(key.length + 1);
      if (secret.length >= 4) found.add(secret);
    }
  };
  for (let i = 0; i < args.length; i++) {
    const flag = /^--([^=]+)(?:=(.*))?$/s.exec(args[i] ?? "");
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
