/**
 * Wall time per test file, read from `deno test`'s output as it streams: a file runs from its
 * `running N tests from ./x_test.ts` line until the next file's line (or the end of the output),
 * so its time includes its `Deno.test.afterAll` teardown and anything its tests start lazily,
 * which a sum of per-test durations would leave out; it also holds the loading of the file
 * after it (Deno loads a file before printing its line: about a second for one importing
 * client-node), which no output marks off from the teardown. Deno runs test files one after another
 * unless `--parallel` is given; with it, files overlap and these times mean nothing.
 *
 * @module
 */

const HEADER = /^running \d+ tests? from (.+)$/;

/** Collects per-file wall times from chunks of `deno test` output. */
export class FileTimes {
  #partial = "";
  #current: { file: string; since: number } | undefined;
  #first: number | undefined;
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
      this.#first ??= now;
      this.#current = { file: file.replace(/^\.\//, ""), since: now };
    }
  }

  /** Ends the last file at `now`, when the output has ended. */
  end(now: number): void {
    this.feed("\n", now);
    this.#close(now);
  }

  /** When the first file started (ms), if one did. */
  get first(): number | undefined {
    return this.#first;
  }

  /** The `n` slowest files, slowest first. */
  slowest(n: number): [string, number][] {
    return [...this.files].sort((a, b) => b[1] - a[1]).slice(0, n);
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
 * The closing timing summary: the whole `deno test` run from `started` to `ended` (ms) and
 * how much of it came before the first file (type check, module loading), then the `top`
 * slowest files with their wall time.
 */
export function timingSummary(times: FileTimes, started: number, ended: number, top = 8): string[] {
  const total = `deno test took ${secs(ended - started)}`;
  if (times.first === undefined) return [`timing: ${total}; no test file ran`];
  const count = times.files.size;
  const lines = [
    `timing: ${total} (${secs(times.first - started)} of it before the first file: type check, ` +
    `loading); the ${Math.min(top, count)} slowest of ${count} file${count === 1 ? "" : "s"}:`,
  ];
  for (const [file, ms] of times.slowest(top)) {
    lines.push(`${secs(ms).padStart(9)}  ${file}`);
  }
  return lines;
}
