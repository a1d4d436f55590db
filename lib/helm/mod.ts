/**
 * helm itself: spawning it (`exec.ts`, the one place that runs helm), reading its command
 * line as pflag does (`argv.ts`) with its flag tables for Helm 3 and 4 (`flags.ts`), and the
 * release's state and its recovery (`release.ts`).
 *
 * May import: the shared leaves in `lib/`. Nothing from `kube/`, `lock/` or `cli/`.
 *
 * @module
 */

export { canonicalCommand, type FlagUse, parseBool, scanHelmArgs } from "./argv.ts";
export {
  guardHelm,
  helmBin,
  helmCapture,
  type HelmGuard,
  type HelmRun,
  helmSpawn,
} from "./exec.ts";
export { runWatchdog, WATCHDOG_ENV } from "./watchdog.ts";
export { flagTable, isGlobalFlag, LOCKABLE_COMMANDS, type LockableCommand } from "./flags.ts";
export { planRecovery, readRelease, recoverRelease } from "./release.ts";
