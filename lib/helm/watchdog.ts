/**
 * Helm never outlives helm-lock: a tiny watchdog process that sends helm SIGTERM when
 * helm-lock dies without saying goodbye (SIGKILL, the OOM killer, a crash), so Helm (≥ 3.7)
 * cancels and marks the release `failed` rather than running on unlocked.
 *
 * How it notices: its stdin is a pipe whose only writer is helm-lock. helm-lock writes
 * `+<pid>` when it starts a helm and `-<pid>` when that helm has exited; the kernel closes
 * the pipe when helm-lock dies, however it dies, and the watchdog reads end-of-file. At EOF
 * it sends SIGTERM to every helm still registered, waits for them to go, and exits.
 *
 * It runs beside helm, not between helm-lock and helm: helm stays helm-lock's own child
 * with the user's stdin, stdout and stderr, its exit code and signals are helm-lock's to
 * handle as before, and the watchdog's start-up (a second Deno process) overlaps taking the
 * lock instead of delaying helm. It is started by `deno run` on this file, or, in the
 * compiled binary, by the binary itself with {@linkcode WATCHDOG_ENV} set (main.ts). It
 * imports nothing, so it starts fast.
 *
 * @module
 */

/** Set (to "1") in the environment of the compiled binary to run it as the watchdog. */
export const WATCHDOG_ENV = "HELM_LOCK_INTERNAL_WATCHDOG";

/** How often the watchdog checks whether the helm it stopped is gone. */
const GONE_POLL_MS = 100;
/** The watchdog gives up waiting for helm to exit after SIGTERM after this long. */
const GONE_WAIT_MS = 60_000;

/** Whether `pid` still exists (a signal that a running process ignores). */
function alive(pid: number): boolean {
  // Windows has no SIGCONT: assume alive, so helm is still told to stop (not waited for).
  if (Deno.build.os === "windows") return true;
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/**
 * The watchdog process: reads `+pid` / `-pid` lines from stdin until end-of-file, then
 * stops the helm processes still registered.
 *
 * @returns The exit code: 0.
 */
export async function runWatchdog(): Promise<number> {
  // Ctrl-C and a CI runner's SIGTERM reach the whole process group: helm-lock forwards them
  // and waits for helm; the watchdog must stay until helm-lock is done or gone.
  const ignore = () => {};
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const sig of signals) Deno.addSignalListener(sig, ignore);
  const watched = new Set<number>();
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of Deno.stdin.readable) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      const pid = Number(line.slice(1));
      if (!Number.isInteger(pid) || pid <= 0) continue;
      if (line[0] === "+") watched.add(pid);
      else if (line[0] === "-") watched.delete(pid);
    }
  }
  // End of file: helm-lock closed the pipe (then nothing is registered) or died.
  // helm-lock sends `-pid` as soon as it has reaped helm, so a registered pid is helm's:
  // only a death in that instant could leave a number the system may reuse.
  const pending = [...watched].filter(alive);
  for (const pid of pending) {
    // deno-lint-ignore no-console
    console.error(`helm-lock: helm-lock is gone: stopping helm (pid ${pid}) with SIGTERM`);
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* exited meanwhile */ }
  }
  const until = performance.now() + GONE_WAIT_MS;
  while (Deno.build.os !== "windows" && pending.some(alive) && performance.now() < until) {
    await new Promise((r) => setTimeout(r, GONE_POLL_MS));
  }
  for (const sig of signals) Deno.removeSignalListener(sig, ignore);
  return 0;
}

/** helm-lock's side of the watchdog. */
export class Watchdog {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #encoder = new TextEncoder();
  #closed: Promise<void> | undefined;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    // A watchdog that could not start or died is no reason to fail the job.
    this.#writer.closed.catch(() => {});
  }

  /**
   * Starts the watchdog process.
   *
   * @returns The watchdog, or `undefined` when it cannot be started (then helm runs
   *   unguarded, as before).
   */
  static start(): Watchdog | undefined {
    const self = new URL(import.meta.url);
    const args = Deno.build.standalone ? [] : [
      "run",
      "--quiet",
      "--no-prompt",
      "--no-config",
      "--allow-run",
      self.protocol === "file:" ? self.pathname : self.href,
    ];
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args,
        env: { [WATCHDOG_ENV]: "1" },
        stdin: "piped",
        stdout: "null",
        stderr: "inherit",
      }).spawn();
      return new Watchdog(child);
    } catch {
      return undefined;
    }
  }

  /** The watchdog's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  #send(line: string): void {
    this.#writer.write(this.#encoder.encode(`${line}\n`)).catch(() => {});
  }

  /** From now on, helm-lock's death stops `pid` with SIGTERM. */
  watch(pid: number): void {
    this.#send(`+${pid}`);
  }

  /** `pid` has exited: never signal it again (its number may be reused). */
  unwatch(pid: number): void {
    this.#send(`-${pid}`);
  }

  /**
   * Ends the watchdog: it reads end-of-file with nothing registered and exits by itself.
   * Not waited for: a watchdog still starting must not delay helm-lock's exit.
   */
  close(): Promise<void> {
    return this.#closed ??= (async () => {
      await this.#writer.close().catch(() => {});
      this.#child.unref();
    })();
  }
}

if (import.meta.main) Deno.exitCode = await runWatchdog();
