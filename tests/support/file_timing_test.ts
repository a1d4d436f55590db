import assert from "node:assert/strict";
import { FileTimes, timingSummary } from "./file_timing.ts";

const grey = (s: string) => `\x1b[0m\x1b[38;5;245m${s}\x1b[0m`;

Deno.test("file timing: each file runs from its header to the next, chunks split anywhere", () => {
  const times = new FileTimes();
  times.feed(grey("running 2 tests from ./tests/a_test.ts") + "\nfirst ... ok (1s)\nrun", 1_000);
  times.feed("ning 1 test from ./tests/b_test.ts\n", 4_000);
  times.feed("only ... ok (2s)\n------- post-test output -------\nteardown\n", 6_500);
  times.feed(grey("running 0 tests from ./tests/c_test.ts") + "\n", 9_000);
  times.end(9_250);
  assert.deepEqual([...times.files], [
    ["tests/a_test.ts", 3_000],
    ["tests/b_test.ts", 5_000],
    ["tests/c_test.ts", 250],
  ]);
  assert.deepEqual(timingSummary(times.files, 7_000, 4, 2), [
    "timing: the run took 7.0 s, 3 files of 8.3 s in all, up to 4 at once; the 2 slowest:",
    "    5.0 s  tests/b_test.ts",
    "    3.0 s  tests/a_test.ts",
  ]);
});

Deno.test("file timing: a test's own output naming a file is not a header", () => {
  const times = new FileTimes();
  times.feed("x ... ok\n  running 1 test from ./not.ts\nprinted: running 3 tests from y\n", 5);
  times.end(10);
  assert.equal(times.files.size, 0);
  assert.deepEqual(timingSummary(times.files, 10, 1), [
    "timing: the run took 0.0 s; no test file ran",
  ]);
});
