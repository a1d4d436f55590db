import assert from "node:assert/strict";
import { checkDuration, roughDuration } from "../../lib/duration.ts";

const VALID: [string, number][] = [
  ["0", 0],
  ["0s", 0],
  ["+0", 0],
  ["300ms", 300],
  ["90s", 90_000],
  ["5m", 300_000],
  ["10m", 600_000],
  ["1h", 3_600_000],
  ["1h30m", 5_400_000],
  ["1.5h", 5_400_000],
  ["2h45m30.5s", 9_930_500],
  [".5s", 500],
  ["5.s", 5_000],
  ["+5m", 300_000],
  ["1500us", 1.5],
  ["1500\u00b5s", 1.5],
  ["1500\u03bcs", 1.5],
  ["2000000ns", 2],
  ["1m1m", 120_000],
  ["5m0s", 300_000],
];

for (const [text, ms] of VALID) {
  Deno.test(`checkDuration() reads ${JSON.stringify(text)} as ${ms} ms`, () => {
    assert.equal(checkDuration(text), ms);
  });
}

const INVALID: [string, RegExp][] = [
  ["", /the duration is empty/],
  ["5x", /"5x" has an unknown unit "x": expected one of "ns", "us", "ms", "s", "m", "h"/],
  ["-1s", /"-1s" is negative/],
  ["-0", /"-0" is negative/],
  ["300", /"300" has no unit/],
  ["1", /"1" has no unit/],
  ["1h30", /"1h30" has no unit/],
  ["s", /"s" is not a duration/],
  [".s", /".s" is not a duration/],
  ["+", /"\+" is not a duration/],
  ["5 m", /unknown unit " m"/],
  ["5M", /unknown unit "M"/],
  ["1d", /unknown unit "d"/],
  ["ten minutes", /"ten minutes" is not a duration/],
  ["3000000h", /"3000000h" is too long/],
];

for (const [text, message] of INVALID) {
  Deno.test(`checkDuration() rejects ${JSON.stringify(text)}`, () => {
    const problem = checkDuration(text);
    assert.equal(typeof problem, "object", `read as ${problem}`);
    const { reason, expected } = problem as Exclude<typeof problem, number>;
    assert.match(`${reason}: ${expected}`, message);
  });
}

Deno.test("checkDuration() returns the problem instead of throwing", () => {
  assert.deepEqual(checkDuration("5x"), {
    reason: `"5x" has an unknown unit "x"`,
    expected: `expected one of "ns", "us", "ms", "s", "m", "h"`,
  });
  assert.equal(checkDuration("90s"), 90_000);
});

// Whole milliseconds below a second and whole seconds above: written as Go writes them.
const FORMATTED: [number, string][] = [
  [0, "0s"],
  [300, "300ms"],
  [1000, "1s"],
  [90_000, "1m30s"],
  [600_000, "10m0s"],
  [5_400_000, "1h30m0s"],
  [90_000_000, "25h0m0s"],
];

for (const [ms, text] of FORMATTED) {
  Deno.test(`roughDuration() writes ${ms} ms as ${JSON.stringify(text)}, which reads back`, () => {
    assert.equal(roughDuration(ms), text);
    assert.equal(checkDuration(text), ms);
  });
}

Deno.test("roughDuration() rounds to milliseconds below a second and to seconds above", () => {
  assert.deepEqual(
    [0.4, 350, 999.6, 12_345, 240_000, 5_430_400, -5].map(roughDuration),
    ["0s", "350ms", "1s", "12s", "4m0s", "1h30m30s", "0s"],
  );
});
