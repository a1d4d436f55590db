/**
 * Proof that work is linear in the input (issue 9), without a wall-clock bound: the cost of
 * an input 10 times longer, compared with the cost of the short one.
 *
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";

// The URL pattern /[a-z][a-z0-9+.-]*:\/\/[^\s/]+@/gi took 10 s on 100 KB. Linear work is
// shown by the cost ratio of a 10x longer input (about 10 for linear, 100 for quadratic),
// never by a wall-clock bound. The cost is CPU time (other processes on a loaded machine do
// not count), the best of three rounds of enough calls to take 5 ms, short and long input
// interleaved. A garbage collection can still land in every round of one input: a ratio
// above the bound is measured again, up to three times, since a quadratic cost exceeds it
// every time.
function cpu(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function roundCost(f: () => unknown): number {
  let calls = 0;
  const start = cpu();
  let spent = 0;
  do {
    f();
    calls++;
    spent = cpu() - start;
  } while (spent < 5_000);
  return spent / calls;
}

const MAX_RATIO = 30;

/** Asserts that `f(input of 10 n)` costs less than 30 times `f(input of n)`. */
export function assertLinear(name: string, make: (n: number) => string, f: (s: string) => unknown) {
  const small = make(10_000);
  const large = make(100_000);
  f(small); // compile and warm up
  f(large);
  const ratios: number[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    let bestSmall = Infinity;
    let bestLarge = Infinity;
    for (let round = 0; round < 3; round++) {
      bestSmall = Math.min(bestSmall, roundCost(() => f(small)));
      bestLarge = Math.min(bestLarge, roundCost(() => f(large)));
    }
    ratios.push(bestLarge / bestSmall);
    if (bestLarge / bestSmall < MAX_RATIO) return;
  }
  assert.fail(
    `${name}: 10x the input cost ${ratios.map((r) => r.toFixed(1)).join("x, ")}x the time`,
  );
}

/** Inputs that make backtracking patterns retry from every position. */
export const ADVERSARIAL: Record<string, (n: number) => string> = {
  "letters": (n) => "a".repeat(n),
  "a scheme without //": (n) => "a".repeat(n) + ":/",
  "many schemes": (n) => "a://".repeat(n / 4),
  "@ after a scheme": (n) => "x://" + "@".repeat(n),
  "slashes": (n) => "/".repeat(n) + "x",
  "assignments": (n) => "a=b,".repeat(n / 4),
  "digits": (n) => "1".repeat(n),
  "open braces": (n) => "{".repeat(n),
  "a key without =": (n) => "k".repeat(n) + " ",
};
