import assert from "node:assert/strict";
import { delay } from "../../lib/async.ts";
import { startedByHelm, watchParent } from "../../lib/helm/parent.ts";

Deno.test("startedByHelm() is true only with both of helm's plugin variables", () => {
  assert.equal(startedByHelm({ HELM_PLUGIN_NAME: "lock", HELM_PLUGIN_DIR: "/p" }), true);
  assert.equal(startedByHelm({ HELM_PLUGIN_NAME: "lock" }), false);
  assert.equal(startedByHelm({}), false);
});

Deno.test("watchParent() calls onGone once, with the old parent, when the parent changes", async () => {
  let ppid = 100;
  const gone: number[] = [];
  const stop = watchParent((pid) => gone.push(pid), () => ppid);
  await delay(250);
  assert.deepEqual(gone, []);
  ppid = 1;
  await delay(450);
  assert.deepEqual(gone, [100]);
  stop();
});

Deno.test("watchParent()'s stop function ends the watch", async () => {
  let ppid = 100;
  const gone: number[] = [];
  const stop = watchParent((pid) => gone.push(pid), () => ppid);
  stop();
  ppid = 1;
  await delay(450);
  assert.deepEqual(gone, []);
});
