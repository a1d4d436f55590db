import assert from "node:assert/strict";
import { closingCounts, planBatches, runPool, SLOW_FIRST } from "./test_pool.ts";

Deno.test("planBatches(): the slow files first, the unit files in one batch, helmfile's last", () => {
  const files = [
    "tests/cli/args_test.ts",
    "tests/cli/helmfile_e2e_test.ts",
    "tests/cli/smoke_e2e_test.ts",
    "tests/packaging/compile_test.ts",
    "tests/shared/redact_test.ts",
    ...SLOW_FIRST.slice(0, 4).reverse(),
  ];
  assert.deepEqual(planBatches(files), [
    { files: [SLOW_FIRST[0]], needs: "cluster" },
    { files: [SLOW_FIRST[1]], needs: "cluster" },
    { files: [SLOW_FIRST[2]], needs: "cluster" },
    { files: ["tests/cli/args_test.ts", "tests/shared/redact_test.ts"], needs: "helm" },
    { files: [SLOW_FIRST[3]], needs: "cluster" },
    { files: ["tests/cli/smoke_e2e_test.ts"], needs: "cluster" },
    { files: ["tests/packaging/compile_test.ts"], needs: "cluster" },
    { files: ["tests/cli/helmfile_e2e_test.ts"], needs: "helmfile" },
  ]);
  assert.deepEqual(planBatches(["tests/shared/redact_test.ts"]), [
    { files: ["tests/shared/redact_test.ts"], needs: "helm" },
  ]);
});

Deno.test("closingCounts() reads deno test's closing line, colours and all", () => {
  const out = "x ... ok\n\n\x1b[0m\x1b[31mFAILED\x1b[0m | 3 passed (2 steps) | 1 failed | " +
    "2 ignored \x1b[0m\x1b[38;5;245m(9s)\x1b[0m\n\nerror: Test failed\n";
  assert.deepEqual(closingCounts(out), { passed: 3, failed: 1, ignored: 2 });
  assert.deepEqual(closingCounts("ok | 5 passed | 0 failed (1s)\n"), {
    passed: 5,
    failed: 0,
    ignored: 0,
  });
  assert.equal(closingCounts("error: Module not found\n"), undefined);
});

Deno.test("runPool() runs at most `jobs` batches at once, each once, results in order", async () => {
  const batches = Array.from(
    { length: 7 },
    (_, i) => ({ files: [`f${i}`], needs: "helm" as const }),
  );
  let running = 0;
  let most = 0;
  const results = await runPool(batches, 3, async (b) => {
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 5));
    running--;
    return b.files[0];
  });
  assert.equal(most, 3);
  assert.deepEqual(results, batches.map((b) => b.files[0]));
});
