/**
 * Kubeconfig YAML: JSON and the plain block YAML kubectl and cloud CLIs write are parsed here,
 * as js-yaml reads them or declined (tests/kube/yaml_test.ts); js-yaml, loaded only for what is
 * declined, costs a run's start-up ~9 ms (docs/performance.md).
 * @module
 */

import { importLater } from "../import_later.ts";

/** Thrown by {@linkcode parseYaml} when the text needs js-yaml and it is not loaded yet. */
export class FullYamlNeeded extends Error {
  constructor() {
    super("This YAML needs the full parser: call loadFullYaml() first");
    this.name = "FullYamlNeeded";
  }
}

let fullLoad: ((text: string) => unknown) | undefined;

/** Loads js-yaml, for the texts the simple parser declines. */
export async function loadFullYaml(): Promise<void> {
  fullLoad ??=
    (await importLater<typeof import("./js_yaml.ts")>(new URL("./js_yaml.ts", import.meta.url)))
      .load;
}

/**
 * Parses a kubeconfig's text like js-yaml's `load()`.
 * @throws {FullYamlNeeded} when the text needs js-yaml and {@linkcode loadFullYaml} has not
 *   run; whatever js-yaml throws for text that is not YAML.
 */
export function parseYaml(text: string): unknown {
  try {
    return parseSimpleYaml(text);
  } catch (err) {
    if (!(err instanceof Declined)) throw err;
  }
  if (!fullLoad) throw new FullYamlNeeded();
  return fullLoad(text);
}

class Declined extends Error {}

function decline(): never {
  throw new Declined();
}

interface Line {
  indent: number;
  text: string;
}

/** JSON, or block YAML of maps, lists and one-line scalars, as js-yaml reads it. */
function parseSimpleYaml(text: string): unknown {
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  if (text.trimStart().startsWith("{")) {
    // JSON, as most generated kubeconfigs are. Duplicate keys are js-yaml's to refuse.
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      decline();
    }
    return hasDuplicateKey(text) ? decline() : value;
  }
  const lines = toLines(text);
  if (lines.length === 0) decline(); // js-yaml 5 refuses a file with no document.
  const reader = new Reader(lines);
  // A top-level list or scalar is no kubeconfig: map() declines its first line.
  const value = reader.map(lines[0]!.indent);
  if (!reader.done) decline();
  return value;
}

/** Whether valid JSON repeats a key in an object (js-yaml refuses it) or has a `__proto__` key. */
function hasDuplicateKey(text: string): boolean {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (expectKey) {
        const key: string = JSON.parse(text.slice(i, j + 1));
        const keys = stack.at(-1)!;
        if (keys.has(key) || key === "__proto__") return true;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      stack.push(c === "{" ? new Set() : null);
      expectKey = c === "{";
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      expectKey = stack.at(-1) instanceof Set;
    }
  }
  return false;
}

function toLines(text: string): Line[] {
  const lines: Line[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const content = line.replace(/^ +/, "");
    if (content === "" || content.startsWith("#")) continue;
    // Tabs (white space or not, by where they stand), directives, document markers: for js-yaml.
    if (content.includes("\t") || /^(\ufeff|%|---|\.\.\.)/.test(content)) decline();
    lines.push({ indent: line.length - content.length, text: content });
  }
  return lines;
}

function isSeqItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

/** `key: rest` split at the first `: ` (or a final `:`), with the key read; else undefined. */
function splitKey(text: string): { key: string; rest: string } | undefined {
  let key: string;
  let after: string;
  if (text[0] === '"' || text[0] === "'") {
    const q = quoted(text);
    if (q === undefined) return undefined;
    key = q.value;
    after = text.slice(q.end);
    if (!/^ *:( |$)/.test(after)) return undefined;
    after = after.slice(after.indexOf(":") + 1);
  } else {
    const m = /^([^ ].*?) *:( (.*))?$/.exec(text);
    if (!m || m[1]!.includes(": ")) return undefined;
    key = m[1]!;
    after = m[3] ?? "";
    // A key that is not a plain string (null, true, 1, <<, an indicator): for js-yaml.
    if (
      /^[-?:,[\]{}#&*!|>'"%@`]|#|\t/.test(key) || key === "<<" || typeof plain(key) !== "string"
    ) {
      decline();
    }
  }
  if (key === "__proto__") decline();
  return { key, rest: after.trim() };
}

/** YAML's one-character escapes (`\n`, ...) and what each stands for. */
const ESCAPES = '\\"/ntr0bfave ';
const ESCAPED = '\\"/\n\t\r\0\b\f\x07\v\x1b ';

/** A quoted scalar at the start of `text`: its value and where it ends; undefined if none. */
function quoted(text: string): { value: string; end: number } | undefined {
  const q = text[0];
  let value = "";
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    if (q === "'") {
      if (c !== "'") value += c;
      else if (text[i + 1] === "'") value += "'", i++;
      else return { value, end: i + 1 };
    } else if (c === '"') {
      return { value, end: i + 1 };
    } else if (c === "\\") {
      const e = text[++i];
      const hex = { x: 2, u: 4, U: 8 }[e as "x" | "u" | "U"];
      const simple = e === undefined ? -1 : ESCAPES.indexOf(e);
      if (simple >= 0) value += ESCAPED[simple];
      else if (hex !== undefined && /^[0-9a-fA-F]+$/.test(text.slice(i + 1, i + 1 + hex))) {
        const code = parseInt(text.slice(i + 1, i + 1 + hex), 16);
        if (code > 0x10ffff) decline();
        value += String.fromCodePoint(code);
        i += hex;
      } else {
        decline();
      }
    } else {
      value += c;
    }
  }
  return undefined; // Not closed on this line: a multi-line scalar.
}

/** A plain scalar as js-yaml's default schema reads it, or a decline. */
function plain(text: string): unknown {
  if (["~", "null", "Null", "NULL"].includes(text)) return null;
  if (["true", "True", "TRUE"].includes(text)) return true;
  if (["false", "False", "FALSE"].includes(text)) return false;
  if (/^-?(0|[1-9][0-9]*)$/.test(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : decline();
  }
  // Other numbers, dates, .inf, .nan: the schema's many forms are js-yaml's to read.
  if (/^[-+]?\.?[0-9]/.test(text) || /^[-+]?\.(inf|Inf|INF|nan|NaN|NAN)$/.test(text)) decline();
  return text;
}

/** The value after `key:` or `- ` on one line. */
function scalar(text: string): unknown {
  if (text[0] === '"' || text[0] === "'") {
    const q = quoted(text) ?? decline();
    if (!/^( +#.*)?$/.test(text.slice(q.end))) decline();
    return q.value;
  }
  const value = text.replace(/ #.*$/, "").trimEnd();
  if (value === "{}") return {};
  if (value === "[]") return [];
  if (/^[-?:,[\]{}#&*!|>%@`]/.test(value) && !/^-[^ ]/.test(value)) decline();
  if (/^-[ ]/.test(value) || value.includes(": ") || value.endsWith(":") || value.includes("\t")) {
    decline();
  }
  return plain(value);
}

class Reader {
  #i = 0;
  constructor(readonly lines: Line[]) {}

  get done(): boolean {
    return this.#i === this.lines.length;
  }

  #peek(): Line | undefined {
    return this.lines[this.#i];
  }

  /** A node that starts on the next line, at `indent`. */
  block(indent: number): unknown {
    return isSeqItem(this.#peek()!.text) ? this.seq(indent) : this.map(indent);
  }

  map(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let line = this.#peek(); line && line.indent === indent; line = this.#peek()) {
      const entry = splitKey(line.text) ?? decline();
      if (Object.hasOwn(out, entry.key)) decline();
      this.#i++;
      out[entry.key] = this.#value(entry.rest, indent, true);
    }
    return out;
  }

  seq(indent: number): unknown[] {
    const out: unknown[] = [];
    for (let line = this.#peek(); line && line.indent === indent; line = this.#peek()) {
      if (!isSeqItem(line.text)) break;
      const rest = line.text.slice(1).replace(/^ +/, "");
      if (rest !== "" && splitKey(rest)) {
        // `- key: value`: a map whose keys stand where `key` does.
        this.lines[this.#i] = { indent: indent + line.text.length - rest.length, text: rest };
        out.push(this.map(this.lines[this.#i]!.indent));
      } else {
        this.#i++;
        out.push(this.#value(rest, indent, false));
      }
    }
    return out;
  }

  /** What follows `key:` (or `-`) at `indent`: on the same line, or a block below. */
  #value(rest: string, indent: number, inMap: boolean): unknown {
    const next = this.#peek();
    if (rest !== "" && !rest.startsWith("#")) {
      // A scalar: nothing may continue it on deeper lines.
      if (next && next.indent > indent) decline();
      return scalar(rest);
    }
    if (next && next.indent > indent) return this.block(next.indent);
    // `key:` followed by `- item` at the same indentation (kubectl's style).
    if (inMap && next && next.indent === indent && isSeqItem(next.text)) return this.seq(indent);
    return null;
  }
}
