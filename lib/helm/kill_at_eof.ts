/**
 * The guard of each helm where the system has `xargs` and `kill` (DESIGN §4, "Signals and the
 * watchdog"): xargs runs `kill` only at the end-of-file of a pipe only helm-lock writes. It
 * shares helm-lock's process group, so a group-wide signal may end it: helm, in the same group,
 * has then been signalled directly.
 *
 * @module
 */

import { firstOnPath } from "./nesting.ts";
import { spawnGuard } from "./watchdog.ts";

export interface KillTools {
  xargs: string;
  kill: string;
}

/** `xargs` and `kill` on `PATH` (then in /usr/bin and /bin), if both are there. */
export function findKillTools(path = Deno.env.get("PATH") ?? ""): KillTools | undefined {
  if (Deno.build.os === "windows") return undefined;
  // Absolute entries only: a relative one depends on the working directory.
  const dirs = [...path.split(":"), "/usr/bin", "/bin"].filter((d) => d.startsWith("/")).join(":");
  const xargs = firstOnPath("xargs", dirs);
  const kill = xargs && firstOnPath("kill", dirs);
  return xargs && kill ? { xargs, kill } : undefined;
}

/**
 * Starts the xargs that sends `pid` SIGTERM if helm-lock dies before `stop` is called, which
 * SIGKILLs it before it runs anything, so a pid the system may reuse is never signalled.
 *
 * @returns `stop`, or `undefined` when xargs cannot be started (helm runs unguarded).
 */
export function killAtEof(tools: KillTools, pid: number): (() => void) | undefined {
  // -r: nothing at an empty end-of-file; -t: the command, on stderr, before it runs.
  const guard = spawnGuard(tools.xargs, ["-r", "-t", tools.kill, "-s", "TERM"]);
  if (!guard) return undefined;
  const { child, writer } = guard;
  // Its end is reaped by Deno; nothing waits for it on helm-lock's way out.
  child.unref();
  child.status.catch(() => {});
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
