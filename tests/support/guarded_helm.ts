// deno-lint-ignore-file no-console
/**
 * For tests/helm/watchdog_test.ts: starts the helm watchdog (`guardHelm()`) and
 * `$HELM_BIN <args>` through helmSpawn, prints helm's pid, then waits for a line on stdin (or
 * to be killed), waits for helm and disposes of the watchdog.
 *
 * @module
 */
import { guardHelm, helmSpawn } from "../../lib/helm/exec.ts";

const guard = guardHelm();
const helm = helmSpawn(Deno.args);
console.log(JSON.stringify({ helm: helm.pid }));
await Deno.stdin.readable.getReader().read();
await helm.status;
await guard[Symbol.asyncDispose]();
