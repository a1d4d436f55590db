/**
 * Runs `tests/support/lock_worker.ts` as separate OS processes and reads their events, for
 * the lock's end-to-end tests and bench.
 *
 * @module
 */

import { adminKubeconfig } from "./cluster.ts";
import type { WorkerConfig } from "./lock_worker.ts";

/** One line a worker printed. */
export interface WorkerEvent {
  event: string;
  t?: number;
  code?: number;
  message?: string;
  waitedMs?: number;
  requests?: number;
  [key: string]: unknown;
}

const WORKER = new URL("./lock_worker.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** A running lock worker. */
export class LockProcess {
  readonly events: WorkerEvent[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(config: WorkerConfig) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `--config=${CONFIG}`, WORKER, JSON.stringify(config)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#reading = this.#read();
  }

  get pid(): number {
    return this.#child.pid;
  }

  async #read(): Promise<void> {
    let buffer = "";
    const decoder = new TextDecoder();
    for await (const chunk of this.#child.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith("{")) this.events.push(JSON.parse(line));
      }
      for (const wake of this.#waiters.splice(0)) wake();
    }
    this.#closed = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** The first event named `name` (after `skip` of them), waiting up to `timeoutMs`. */
  async next(name: string, timeoutMs: number, skip = 0): Promise<WorkerEvent> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.filter((e) => e.event === name)[skip];
      if (found) return found;
      const error = this.events.find((e) => e.event === "error");
      if (error && name !== "error") {
        throw new Error(`Worker ${this.pid} failed while waiting for "${name}": ${error.message}`);
      }
      if (this.#closed) throw new Error(`Worker ${this.pid} exited before "${name}"`);
      const left = until - Date.now();
      if (left <= 0) {
        throw new Error(
          `Worker ${this.pid} printed no "${name}" in ${timeoutMs} ms: ${
            JSON.stringify(this.events)
          }`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Writes a line to the worker (the `hold` and `paced` modes wait for one). */
  async send(line = "go"): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(`${line}\n`));
  }

  kill(signal: Deno.Signal = "SIGKILL"): void {
    this.#child.kill(signal);
  }

  /** Waits for the process to end (killing it after `timeoutMs`) and returns its exit code. */
  async close(timeoutMs = 10_000): Promise<number> {
    await this.#stdin.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, timeoutMs);
    const status = await this.#child.status;
    clearTimeout(timer);
    await this.#reading;
    return status.code;
  }
}

/**
 * A worker that takes release `app`'s lock as the test cluster's admin, waiting up to a
 * minute, and releases it at once: the usual one in the lock's end-to-end tests; `config`
 * changes any of it.
 */
export function adminWorker(namespace: string, config: Partial<WorkerConfig> = {}): LockProcess {
  return new LockProcess({
    kubeconfig: adminKubeconfig(),
    namespace,
    release: "app",
    timeoutMs: 60_000,
    mode: "release",
    ...config,
  });
}
