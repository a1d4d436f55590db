/**
 * Running helm with no lock: helm commands that do not change a release, helm's own
 * `--help`, and a helm-lock nested under the holder of the same lock. The argv reaches helm
 * verbatim, stdio is inherited, SIGINT and SIGTERM are forwarded, and helm's exit code is
 * ours.
 *
 * @module
 */

import { findHelm, helmSpawn } from "../helm/exec.ts";

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * Runs helm with `helmArgs` and returns its exit code (128 + n when a signal n ended it).
 *
 * @throws {HelmLockError} ({@linkcode ExitCode.HelmNotFound}) when helm cannot be started.
 */
export async function runHelmDirectly(helmArgs: string[]): Promise<number> {
  const helm = helmSpawn(helmArgs, undefined, { bin: findHelm() });
  // A CI runner's SIGTERM to us must reach helm, or helm would outlive us unseen.
  const handlers = SIGNALS.map((sig) => [sig, () => helm.kill(sig)] as const);
  for (const [sig, handler] of handlers) Deno.addSignalListener(sig, handler);
  try {
    // Deno reports 128 + n for a helm ended by signal n, the shell's convention.
    return (await helm.status).code;
  } finally {
    for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
  }
}
