#!/usr/bin/env -S deno run --allow-all --no-config
// deno-lint-ignore-file no-console
/**
 * A `$HELM_BIN` for fault tests: runs the real helm (`HELM_WRAP_REAL`) with the same
 * arguments and stdio, forwards SIGTERM and SIGINT to it, and appends one JSON line per
 * event to `HELM_WRAP_LOG`: `start`, `signal`, `end`, each with the wall time `t` and this
 * process's `pid`. The log proves when helm ran and when it was told to stop. Deno, not a
 * shell script: no shell is ever spawned.
 *
 * @module
 */

const real = Deno.env.get("HELM_WRAP_REAL");
const logPath = Deno.env.get("HELM_WRAP_LOG");
if (!real || !logPath) {
  console.error("helm_wrapper: HELM_WRAP_REAL and HELM_WRAP_LOG must be set");
  Deno.exit(2);
}

function log(event: string, extra: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ event, t: Date.now(), pid: Deno.pid, ...extra });
  Deno.writeTextFileSync(logPath!, `${line}\n`, { append: true });
}

log("start", { args: Deno.args });
const child = new Deno.Command(real, {
  args: Deno.args,
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(sig, () => {
    log("signal", { signal: sig });
    try {
      child.kill(sig);
    } catch { /* exited */ }
  });
}
const status = await child.status;
log("end", { code: status.code });
Deno.exit(status.code);
