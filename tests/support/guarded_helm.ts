// deno-lint-ignore-file no-console
/**
 * For tests/helm/watchdog_test.ts: starts the helm guard and `$HELM_BIN <args>` through
 * helmSpawn, prints helm's pid, then waits for a line on stdin (or to be killed), closes
 * the guard and waits for helm.
 *
 * @module
 */
import { guardHelm, helmSpawn } from "../../lib/helm/exec.ts";

const guard = guardHelm();
const helm = helmSpawn(Deno.args);
console.log(JSON.stringify({ helm: helm.pid }));
await Deno.stdin.readable.getReader().read();
await helm.status;
await guard.close();
