/**
 * helm's guard when helm-lock dies (DESIGN §4, "Signals and the watchdog"): a watchdog process
 * whose stdin is a pipe only helm-lock writes, `+<pid>` / `-<pid>` lines; at end-of-file it
 * stops every helm still registered. It imports nothing, so it starts fast.
 *
 * @module
 */

/** Set (to "1") in the environment of the compiled binary to run it as the watchdog. */
export const WATCHDOG_ENV = "HELM_LOCK_INTERNAL_WATCHDOG";

/** How often, and how long at most, to wait for the helm it stopped to exit. */
const GONE_POLL_MS = 100;
const GONE_WAIT_MS = 60_000;

/** SIGCONT: a signal that a running process ignores. */
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

/** The watchdog process's main. */
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
  // helm-lock sends `-pid` as soon as it has reaped helm, so a registered pid is helm's.
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
export interface Watchdog {
  /** Until `exited` settles, helm-lock's death stops `pid` with SIGTERM. */
  watch(pid: number, exited: Promise<unknown>): void;
  /** Not waited for: a watchdog still starting must not delay helm-lock's exit. */
  close(): Promise<void>;
}

/** Set by the musl launcher (scripts/compile.ts): how to start helm-lock again. */
const LAUNCHER_ENV = "HELM_LOCK_LAUNCHER";

/** Starts the watchdog process; `undefined` when it cannot (then helm runs unguarded). */
export function startWatchdog(): Watchdog | undefined {
  // Started through the musl launcher, Deno's own executable is the glibc loader.
  const loader = /^ld-linux/.test(Deno.execPath().split("/").pop() ?? "");
  const launcher = loader ? Deno.env.get(LAUNCHER_ENV) : undefined;
  const args = launcher || Deno.build.standalone
    ? []
    : ["run", "--quiet", "--no-prompt", "--no-config", "--allow-run", import.meta.url];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(launcher ?? Deno.execPath(), {
      args,
      env: { [WATCHDOG_ENV]: "1" },
      stdin: "piped",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  } catch {
    return undefined;
  }
  const writer = child.stdin.getWriter();
  // A watchdog that could not start or died is no reason to fail the job.
  writer.closed.catch(() => {});
  const encoder = new TextEncoder();
  const send = (line: string) => writer.write(encoder.encode(`${line}\n`)).catch(() => {});
  let closed: Promise<void> | undefined;
  return {
    watch(pid, exited) {
      send(`+${pid}`);
      // Once helm has exited, its pid is never signalled again (the number may be reused).
      exited.finally(() => send(`-${pid}`)).catch(() => {});
    },
    close: () =>
      closed ??= (async () => {
        await writer.close().catch(() => {});
        child.unref();
      })(),
  };
}

if (import.meta.main) Deno.exitCode = await runWatchdog();
