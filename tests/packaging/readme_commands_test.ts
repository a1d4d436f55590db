/**
 * The README's two commands need only Node.js and npm (issue 17, item 6), and CI runs exactly
 * the second one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;

Deno.test("the README's two commands run deno through npx, and .ci/run runs the second", async () => {
  const readme = await Deno.readTextFile(join(root, "README.md"));
  const deno = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
  const commands = [...readme.matchAll(/^\| `(npx -y deno@[^`]+)` +\|/gm)].map((m) => m[1]);
  assert.deepEqual(commands, [
    `npx -y deno@${Deno.version.deno} task demo`,
    `npx -y deno@${Deno.version.deno} task ok`,
  ]);
  for (const task of ["demo", "ok"]) assert.ok(deno.tasks[task], `deno.json has task ${task}`);
  const ci = (await Deno.readTextFile(join(root, ".ci/run"))).trimEnd().split("\n");
  assert.equal(ci.at(-1), commands[1]);
  assert.ok(!ci.some((l) => /^\s*(deno |npm install -g deno)/.test(l)), ".ci/run needs no deno");
});
