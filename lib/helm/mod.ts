/**
 * helm itself: spawning it (`exec.ts`, the one place that runs helm), reading its command
 * line as pflag does (`argv.ts`) with its flag tables for Helm 3 and 4 (`flags.ts`), the
 * release's state and its recovery (`release.ts`), and helm's release records read and edited
 * without helm (`storage.ts`, secret and configmap drivers).
 *
 * May import: the shared leaves in `lib/`, and `kube/` (the API client that reads the
 * records). Nothing from `lock/` or `cli/`.
 *
 * @module
 */

export { canonicalCommand, type FlagUse, parseBool, scanHelmArgs } from "./argv.ts";
export {
  guardHelm,
  type GuardKind,
  helmBin,
  helmCapture,
  type HelmGuard,
  type HelmRun,
  helmSpawn,
} from "./exec.ts";
export { runWatchdog, WATCHDOG_ENV } from "./watchdog.ts";
export { flagTable, isGlobalFlag, LOCKABLE_COMMANDS, type LockableCommand } from "./flags.ts";
export { planRecovery, readRelease, recoverRelease } from "./release.ts";
export {
  kubeRecords,
  markFailed,
  readRevisions,
  type ReleaseRecordsApi,
  storageDriver,
} from "./storage.ts";
