/**
 * Runs helm-lock the way a user does: `main.ts` in its own process, with the permissions the
 * source launcher grants, real helm as `$HELM_BIN`, and the test cluster's kubeconfig.
 *
 * @module
 */
import { join } from "node:path";
import { PERMISSIONS } from "../../scripts/compile.ts";
import { lines } from "./lines.ts";
import type { Output } from "./helm.ts";

const ROOT = join(import.meta.dirname!, "..", "..");

/**
 * `deno run` with the permissions the compiled binary has, which are also the ones the
 * launcher of `install-binary.sh` grants (tests/packaging/plugin_e2e_test.ts checks that).
 */
export const DENO_RUN = [
  "run",
  "--quiet",
  ...PERMISSIONS,
  "--config",
  join(ROOT, "deno.json"),
  join(ROOT, "main.ts"),
];

/** A running helm-lock whose stderr lines are collected, each with the time it arrived. */
export class LockProcess {
  readonly child: Deno.ChildProcess;
  readonly stderrLines: Array<{ at: number; line: string }> = [];
  readonly #stdout: Promise<string>;
  readonly #stderrDone: Promise<void>;
  readonly #waiters: Array<PromiseWithResolvers<number> & { re: RegExp }> = [];
  /** Whether stderr has ended: no line will come any more. */
  #ended = false;

  constructor(args: string[], env: Record<string, string>) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...DENO_RUN, ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    this.#stdout = new Response(child.stdout).text();
    this.#stderrDone = (async () => {
      try {
        for await (const line of lines(child.stderr)) {
          const at = performance.now();
          this.stderrLines.push({ at, line });
          for (const w of this.#waiters.filter((w) => w.re.test(line))) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(at);
          }
        }
      } finally {
        // A line that never came fails its test now, not at the test runner's timeout.
        this.#ended = true;
        for (const w of this.#waiters.splice(0)) w.reject(this.#missing(w.re));
      }
    })();
  }

  #missing(re: RegExp): Error {
    const last = this.stderrLines.slice(-5).map((l) => l.line).join("\n");
    return new Error(`helm-lock ended without a line matching ${re}; its last:\n${last}`);
  }

  /**
   * Resolves with the arrival time of the first stderr line matching `re`; rejects if helm-lock's
   * stderr ends, or has ended, without one.
   */
  waitForLine(re: RegExp): Promise<number> {
    const seen = this.lineAt(re);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.#ended) return Promise.reject(this.#missing(re));
    const waiter = { re, ...Promise.withResolvers<number>() };
    this.#waiters.push(waiter);
    return waiter.promise;
  }

  /** When the first stderr line matching `re` arrived, if one did. */
  lineAt(re: RegExp): number | undefined {
    return this.stderrLines.find((l) => re.test(l.line))?.at;
  }

  /** Waits for the process to exit and returns what it printed. */
  async output(): Promise<Output & { signal: Deno.Signal | null }> {
    const status = await this.child.status;
    await this.#stderrDone;
    return {
      code: status.code,
      signal: status.signal,
      stdout: await this.#stdout,
      stderr: this.stderrLines.map((l) => l.line).join("\n"),
    };
  }
}

/** Runs helm-lock to completion. */
export function helmLock(
  args: string[],
  env: Record<string, string>,
): Promise<Output & { signal: Deno.Signal | null }> {
  return new LockProcess(args, env).output();
}

/** Process ids of the direct children of `pid` (Linux /proc). */
export async function childPids(pid: number): Promise<number[]> {
  const found: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(() => "");
    // Fields after the parenthesised command name: state, ppid, ...
    const ppid = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
    if (ppid === String(pid)) found.push(Number(entry.name));
  }
  return found;
}

/**
 * Writes an executable launcher script `dir/name` that runs helm-lock from source the way
 * the plugin's launcher does (`exec deno run ... main.ts "$@"`), and returns its path.
 * This is "helm-lock" for tests that give it to helmfile or put it on PATH as helm.
 */
export async function writeLauncher(dir: string, name = "helm-lock"): Promise<string> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const path = join(dir, name);
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\nexec ${[Deno.execPath(), ...DENO_RUN].map(quote).join(" ")} "$@"\n`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}
