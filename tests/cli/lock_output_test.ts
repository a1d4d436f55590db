/**
 * lock_output.ts without a cluster: `-o yaml` of values another tenant wrote into a Lease is
 * safe to print as it is and loads back to the same values; `-o json` goes through the
 * printable JSON line, `-o yaml` through the block printer.
 */
// Control characters are what these tests are about.
// deno-lint-ignore-file no-control-regex
import assert from "node:assert/strict";
import { load } from "js-yaml";
import {
  API_VERSION,
  type LockList,
  lockList,
  type LockStatus,
  printObject,
  queueItems,
} from "../../lib/cli/lock_output.ts";
import type { CommandIO } from "../../lib/cli/own_args.ts";
import { printableBlock } from "../../lib/sanitize.ts";

/** The object as `-o yaml` prints it. */
function toYaml(object: LockStatus | LockList): string {
  let printed = "";
  const io: CommandIO = {
    out: () => {},
    print: (t) => printed = t,
    info: () => {},
    debug: () => {},
  };
  printObject(io, object, "yaml");
  return printed;
}

const UNSAFE_EXCEPT_NEWLINE =
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

const HOSTILE = {
  holder: "ghost\x1b[2J\x1b]0;title\x07\u202eevil\u202c\nhelm-lock: acquired lock",
  ciJobUrl: "https://ci.example/\x1b[31mRED\x1b[0m\u009b2J\u0085",
  user: "mallory\u2066\u200f\x7f\x08\x08\rroot",
};

function list(fields: Partial<LockList["items"][number]>): LockList {
  return {
    apiVersion: API_VERSION,
    kind: "LockList",
    items: [{
      apiVersion: API_VERSION,
      kind: "Lock",
      metadata: { name: "app", namespace: "prod" },
      lease: "helm-lock-app",
      held: true,
      holder: "runner-1-0123456789abcdef",
      ciJobUrl: null,
      user: "alice",
      host: "runner",
      command: "helm upgrade --install app ./chart --set a=b\\x1b",
      since: "2026-05-04T09:12:03.000Z",
      ageSeconds: 95,
      renewTime: "2026-05-04T09:13:36.000Z",
      leaseDurationSeconds: 15,
      queue: [],
      ...fields,
    }],
  };
}

Deno.test("printObject() -o yaml quotes a Lease's escapes and bidi controls and loads back equal", () => {
  const object = list(HOSTILE);
  const yaml = toYaml(object);
  assert.doesNotMatch(yaml, UNSAFE_EXCEPT_NEWLINE);
  assert.deepEqual(load(yaml), object);
  // Nothing for the block printer to escape: it prints the text as it is.
  assert.equal(printableBlock(yaml), yaml);
  assert.match(yaml, /^ {4}holder: "ghost\\u001b\[2J\\u001b\]0;title\\u0007\\u202eevil\\u202c\\n/m);
});

Deno.test("printObject() -o yaml leaves safe values plain, a backslash included, and one line each", () => {
  const object = list({ command: `helm upgrade app ./c ${"--set a=b ".repeat(20)}\\x1b` });
  const yaml = toYaml(object);
  assert.deepEqual(load(yaml), object);
  assert.match(yaml, /^ {4}holder: runner-1-0123456789abcdef$/m);
  assert.match(yaml, /^ {4}command: helm upgrade app \.\/c (--set a=b )+\\x1b$/m);
  assert.match(yaml, /^ {4}ciJobUrl: null$/m);
});

Deno.test("printObject() prints -o json as one printable line and -o yaml as a block", () => {
  const seen: string[] = [];
  const io: CommandIO = {
    out: (line) => seen.push(`out:${line}`),
    print: (text) => seen.push(`print:${text}`),
    info: () => {},
    debug: () => {},
  };
  const object = list(HOSTILE);
  printObject(io, object, "json");
  printObject(io, object, "yaml");
  assert.equal(seen.length, 2);
  assert.ok(seen[0]!.startsWith("out:{\n"), seen[0]!);
  assert.deepEqual(JSON.parse(seen[0]!.slice(4)), object);
  assert.ok(seen[1]!.startsWith("print:apiVersion: helm-lock.dev/v1\nkind: LockList\n"), seen[1]!);
  assert.deepEqual(load(seen[1]!.slice(6)), object);
});

Deno.test("printObject() -o yaml quotes a waiting job's escapes too, and loads back equal", () => {
  const object = list({
    queue: [{
      place: 1,
      ticket: "helm-lock.ticket.app-x7k2p",
      identity: HOSTILE.holder,
      ciJobUrl: HOSTILE.ciJobUrl,
      since: null,
      ageSeconds: null,
      looksDead: false,
    }],
  });
  const yaml = toYaml(object);
  assert.doesNotMatch(yaml, UNSAFE_EXCEPT_NEWLINE);
  assert.deepEqual(load(yaml), object);
  assert.match(yaml, /^ {8}identity: "ghost\\u001b/m);
});

Deno.test("queueItems() keeps the queue's places, tickets and the server's judgement of dead jobs", () => {
  const now = Date.parse("2026-05-04T09:10:00Z");
  const items = queueItems([
    {
      place: 1,
      ticket: "helm-lock.ticket.app-aaaaa",
      identity: "a",
      since: "2026-05-04T09:08:00Z",
      looksDead: false,
    },
    {
      place: 2,
      ticket: "helm-lock.ticket.app-bbbbb",
      identity: "b",
      ciJobUrl: "https://ci/2",
      user: "bob",
      looksDead: true,
    },
    // A waiter's clock ahead of ours.
    {
      place: 3,
      ticket: "helm-lock.ticket.app-ccccc",
      identity: "c",
      since: "2026-05-04T09:11:00Z",
      looksDead: false,
    },
  ], now);
  assert.deepEqual(items, [
    {
      place: 1,
      ticket: "helm-lock.ticket.app-aaaaa",
      identity: "a",
      ciJobUrl: null,
      since: "2026-05-04T09:08:00Z",
      ageSeconds: 120,
      looksDead: false,
    },
    {
      place: 2,
      ticket: "helm-lock.ticket.app-bbbbb",
      identity: "b",
      ciJobUrl: "https://ci/2",
      since: null,
      ageSeconds: null,
      looksDead: true,
    },
    {
      place: 3,
      ticket: "helm-lock.ticket.app-ccccc",
      identity: "c",
      ciJobUrl: null,
      since: "2026-05-04T09:11:00Z",
      ageSeconds: 0,
      looksDead: false,
    },
  ]);
});

Deno.test("lockList() carries each release's queue, and a release with only a queue shows no holder", () => {
  const now = Date.parse("2026-05-04T09:10:00Z");
  const out = lockList([{
    namespace: "prod",
    release: "app",
    lease: "helm-lock-app",
    state: "none",
    queue: [{
      place: 1,
      ticket: "helm-lock.ticket.app-aaaaa",
      identity: "a",
      since: "2026-05-04T09:09:00Z",
      looksDead: false,
    }],
  }], now);
  const [item] = out.items;
  assert.equal(out.items.length, 1);
  assert.deepEqual(item?.metadata, { name: "app", namespace: "prod" });
  assert.equal(item?.held, false);
  assert.equal(item?.holder, null);
  assert.deepEqual(item?.queue.map((q) => [q.place, q.ticket, q.ageSeconds]), [
    [1, "helm-lock.ticket.app-aaaaa", 60],
  ]);
});

Deno.test("docs/output.md's YAML example is its LockList JSON example, as printObject() writes it", async () => {
  const page = await Deno.readTextFile(new URL("../../docs/output.md", import.meta.url));
  const blocks = (lang: string) =>
    [...page.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, "gm"))].map((m) => m[1]!);
  const list = blocks("json").map((b) => JSON.parse(b)).find((o) => o.kind === "LockList");
  const [yaml, ...more] = blocks("yaml");
  assert.equal(more.length, 0);
  assert.deepEqual(load(yaml!), list);
  // deno fmt writes the page's quotes double.
  assert.equal(`${toYaml(list)}\n`.replaceAll("'", '"'), yaml);
});
