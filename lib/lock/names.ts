/**
 * The objects helm-lock keeps in a release namespace, all `coordination.k8s.io/v1` Leases so
 * that one Role on `leases` covers them, and their names and labels in one place:
 *
 * | object | name | lives |
 * |---|---|---|
 * | the lock | `helm-lock-<release>` | while a job holds it; deleted on release |
 * | a waiting job's ticket | `helm-lock.ticket.<release>-<random>` | while the job waits |
 * | the deploy record (`--lock-order-key`) | `helm-lock.state.<release>` | until the release is uninstalled through helm-lock, or `lock-unlock --force` |
 *
 * Every one carries `app.kubernetes.io/managed-by=helm-lock` and `helm-lock.dev/release=<release>`,
 * so one list and one watch by label see a release's lock, queue and record. The lock's name
 * is the one helm-lock has always used (older versions wait on it by name); the others start
 * `helm-lock.`, so no release's lock can share a name with another release's record.
 *
 * @module
 */

/** Prefix of every annotation and label key helm-lock writes. */
export const PREFIX = "helm-lock.dev/";

/** The label every helm-lock Lease carries. */
export const MANAGED_BY = "app.kubernetes.io/managed-by";

/** The label naming the release a Lease belongs to. */
export const RELEASE_LABEL = `${PREFIX}release`;

/** `app.kubernetes.io/managed-by=helm-lock`: every helm-lock Lease of any version. */
export const MANAGED_SELECTOR = `${MANAGED_BY}=helm-lock`;

/** The lock Lease's name prefix; the rest is the release name. */
export const LOCK_PREFIX = "helm-lock-";

/** The lock of `release`. */
export function lockName(release: string): string {
  return `${LOCK_PREFIX}${release}`;
}

/** The deploy record of `release` (the last successful deploy's `--lock-order-key`). */
export function stateName(release: string): string {
  return `helm-lock.state.${release}`;
}

/**
 * The `generateName` of `release`'s tickets: the API server appends a random suffix. It ends
 * in `-`: the API server validates a `generateName` as a name whose trailing `-` is masked, so
 * one ending in `.` is refused (422).
 */
export function ticketPrefix(release: string): string {
  return `helm-lock.ticket.${release}-`;
}

/** The labels of every helm-lock Lease of `release`. */
export function releaseLabels(release: string): Record<string, string> {
  return { [MANAGED_BY]: "helm-lock", [RELEASE_LABEL]: release };
}

/** The label selector of `release`'s Leases: its lock, tickets and deploy record. */
export function releaseSelector(release: string): string {
  return `${RELEASE_LABEL}=${release}`;
}
