/**
 * The watchdog where the system has `xargs` and `kill` (Linux, macOS, Alpine's busybox): for
 * each helm, an `xargs -r -t <kill> -s TERM` whose stdin is a pipe from helm-lock carrying
 * helm's pid. xargs runs `kill` only at end-of-file, which the kernel delivers when helm-lock
 * dies however it dies (SIGKILL, the OOM killer, a crash): helm then gets SIGTERM at once, and
 * `-t` writes the command to stderr, the job log's record of it. When helm exits, helm-lock
 * SIGKILLs that xargs before it has run anything, so a pid the system may reuse is never
 * signalled.
 *
 * It starts in a millisecond, where a second Deno (`watchdog.ts`, kept where these tools are
 * missing) costs about 50 ms of CPU on a small CI machine (docs/performance.md). It shares
 * helm-lock's process group, so Ctrl-C or a group-wide SIGTERM may end it: helm, in the same
 * group, has then been signalled directly.
 *
 * @module
 */

import { firstOnPath } from "./nesting.ts";

/** The absolute paths of the two tools. */
export interface KillTools {
  xargs: string;
  kill: string;
}

/**
 * Finds `xargs` and `kill` on `PATH` (then in /usr/bin and /bin).
 *
 * @returns Both paths, or `undefined` on Windows or when either is missing.
 */
export function findKillTools(path = Deno.env.get("PATH") ?? ""): KillTools | undefined {
  if (Deno.build.os === "windows") return undefined;
  // Absolute entries only: a relative one depends on the working directory.
  const dirs = [...path.split(":"), "/usr/bin", "/bin"].filter((d) => d.startsWith("/")).join(":");
  const xargs = firstOnPath("xargs", dirs);
  const kill = xargs && firstOnPath("kill", dirs);
  return xargs && kill ? { xargs, kill } : undefined;
}

/**
 * Starts the xargs that sends `pid` SIGTERM if helm-lock dies before the returned `stop` is
 * called (helm has exited: it ends the xargs before it can run `kill`).
 *
 * @returns `stop`, or `undefined` when xargs cannot be started (helm runs unguarded).
 */
export function killAtEof(tools: KillTools, pid: number): (() => void) | undefined {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(tools.xargs, {
      // -r: nothing at an empty end-of-file; -t: the command, on stderr, before it runs.
      args: ["-r", "-t", tools.kill, "-s", "TERM"],
      stdin: "piped",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
  } catch {
    return undefined;
  }
  const writer = child.stdin.getWriter();
  // Its end is reaped by Deno; nothing waits for it on helm-lock's way out.
  child.unref();
  child.status.catch(() => {});
  writer.closed.catch(() => {});
  writer.write(new TextEncoder().encode(`${pid}\n`)).catch(() => {});
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Gone already (a group-wide signal ended it).
    }
    writer.close().catch(() => {});
  };
}
