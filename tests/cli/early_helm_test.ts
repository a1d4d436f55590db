/** Which helm command lines may read stdin, so helm is not started before the lock. */
import assert from "node:assert/strict";
import { mayReadStdin } from "../../lib/cli/early_helm.ts";

Deno.test("mayReadStdin: every way pflag gives a flag the value -", () => {
  for (const args of [["-f", "-"], ["--values=-"], ["-f-"], ["--set-file", "a=-"], ["--", "x"]]) {
    assert.equal(mayReadStdin(["upgrade", "app", "./chart", ...args]), true, args.join(" "));
  }
  for (const args of [["-f", "values.yaml"], ["--set", "a=b-c"], ["--atomic"], ["-n", "a-b"]]) {
    assert.equal(mayReadStdin(["upgrade", "app", "./chart", ...args]), false, args.join(" "));
  }
});
