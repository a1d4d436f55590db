/**
 * Wall time per test file, read from `deno test`'s output as it streams: a file runs from its
 * `running N tests from ./x_test.ts` line until the next file's line (or the end of the output),
 * so its time includes its `Deno.test.afterAll` teardown and anything its tests start lazily,
 * which a sum of per-test durations would leave out; it also holds the loading of the file
 * after it (Deno loads a file before printing its line: about a second for one importing
 * client-node), which no output marks off from the teardown. Deno runs the files of one
 * `deno test` process one after another (`deno task test` runs the unit files that way).
 *
 * @module
 */

const HEADER = /^running \d+ tests? from (.+)$/;

/** Collects per-file wall times from chunks of `deno test` output. */
export class FileTimes {
  #partial = "";
  #current: { file: string; since: number } | undefined;
  /** Milliseconds per file, in the order the files ran. */
  readonly files = new Map<string, number>();

  /** Feeds the next chunk of output, received at `now` (ms). */
  feed(text: string, now: number): void {
    // deno-lint-ignore no-control-regex
    const lines = (this.#partial + text.replace(/\x1b\[[0-9;]*m/g, "")).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) {
      const file = line.trimEnd().match(HEADER)?.[1];
      if (file === undefined) continue;
      this.#close(now);
      this.#current = { file: file.replace(/^\.\//, ""), since: now };
    }
  }

  /** Ends the last file at `now`, when the output has ended. */
  end(now: number): void {
    this.feed("\n", now);
    this.#close(now);
  }

  #close(now: number): void {
    if (!this.#current) return;
    const { file, since } = this.#current;
    this.files.set(file, (this.files.get(file) ?? 0) + now - since);
    this.#current = undefined;
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * The closing timing summary: the run's wall time, the sum of the files' own times (more than
 * the wall time when `jobs` processes run at once), and the `top` slowest files.
 */
export function timingSummary(
  files: ReadonlyMap<string, number>,
  wallMs: number,
  jobs: number,
  top = 8,
): string[] {
  const total = `the run took ${secs(wallMs)}`;
  if (files.size === 0) return [`timing: ${total}; no test file ran`];
  const sum = [...files.values()].reduce((a, b) => a + b, 0);
  const slowest = [...files].sort((a, b) => b[1] - a[1]).slice(0, top);
  const lines = [
    `timing: ${total}, ${files.size} file${files.size === 1 ? "" : "s"} of ${secs(sum)} in all, ` +
    `up to ${jobs} at once; the ${slowest.length} slowest:`,
  ];
  for (const [file, ms] of slowest) lines.push(`${secs(ms).padStart(9)}  ${file}`);
  return lines;
}
