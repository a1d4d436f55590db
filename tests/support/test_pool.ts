/**
 * How `deno task test` spreads the test files over several `deno test` processes at once.
 * The end-to-end files spend most of their time waiting on helm, the API server and lease
 * timings, not on the CPU, so running a few side by side cuts the suite's wall time to a
 * fraction on a 2-core machine. Each file keeps to its own namespaces (`createNamespace()`),
 * the fault tests to a control plane of their own (tests/support/fault_plane.ts), and request
 * counts to one namespace (tests/support/lease_requests.ts), so files do not see each other.
 *
 * - The unit files (no cluster) share one process, started first: they need only helm.
 * - Every other file gets a process of its own, the known slow ones first (longest first keeps
 *   the last process from starting late), helmfile's last: its binary may still be building.
 *
 * @module
 */

/** What a batch waits for before it starts. */
export type Needs = "helm" | "cluster" | "helmfile";

/** Test files run by one `deno test` process. */
export interface Batch {
  files: string[];
  needs: Needs;
}

/**
 * The slowest files of a full run, slowest first (`deno task test` prints them at the end).
 * Only the order depends on this list: a file missing from it still runs.
 */
export const SLOW_FIRST = [
  "tests/cli/cli_e2e_test.ts",
  "tests/lock/queue_e2e_test.ts",
  "tests/cli/queue_faults_e2e_test.ts",
  "tests/cli/recovery_e2e_test.ts",
  "tests/cli/dropin_e2e_test.ts",
  "tests/cli/faults_e2e_test.ts",
  "tests/cli/apiserver_restart_e2e_test.ts",
  "tests/helm/storage_e2e_test.ts",
  "tests/helm/release_e2e_test.ts",
  "tests/cli/apiserver_stall_e2e_test.ts",
];

/** Whether a file needs the cluster: an `_e2e_test.ts`, or a packaging test. */
function needsCluster(file: string): boolean {
  return file.endsWith("_e2e_test.ts") || file.startsWith("tests/packaging/");
}

/** The batches for `files` (paths relative to the repository), in the order to start them. */
export function planBatches(files: readonly string[]): Batch[] {
  const units = files.filter((f) => !needsCluster(f));
  const rank = (f: string) => {
    const i = SLOW_FIRST.indexOf(f);
    return i === -1 ? SLOW_FIRST.length : i;
  };
  const own = files.filter(needsCluster).sort((a, b) => rank(a) - rank(b));
  const batches: Batch[] = own.filter((f) => !f.includes("helmfile"))
    .map((f) => ({ files: [f], needs: "cluster" }));
  // The unit batch after the slow files have started: it takes about a minute of one process.
  if (units.length > 0) {
    batches.splice(Math.min(3, batches.length), 0, { files: units, needs: "helm" });
  }
  for (const f of own.filter((f) => f.includes("helmfile"))) {
    batches.push({ files: [f], needs: "helmfile" });
  }
  return batches;
}

/** The counts of a `deno test` closing line, e.g. `FAILED | 3 passed (2 steps) | 1 failed | 2 ignored (9s)`. */
export interface Counts {
  passed: number;
  failed: number;
  ignored: number;
}

/** The counts of `deno test`'s closing line in `output`, if it has one. */
export function closingCounts(output: string): Counts | undefined {
  // deno-lint-ignore no-control-regex
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const line = plain.split("\n").reverse().find((l) => /^(ok|FAILED) \| \d+ passed/.test(l));
  if (!line) return undefined;
  const count = (word: string) => Number(line.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? "0");
  return { passed: count("passed"), failed: count("failed"), ignored: count("ignored") };
}

/** Runs `run` on each batch, at most `jobs` at a time, in order: a free slot takes the next. */
export async function runPool<T>(
  batches: readonly Batch[],
  jobs: number,
  run: (batch: Batch) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(batches.length);
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const i = next++;
      results[i] = await run(batches[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, batches.length)) }, worker));
  return results;
}
