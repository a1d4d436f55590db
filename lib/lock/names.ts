/**
 * The names and labels of what helm-lock keeps in a release namespace (the table: docs/design.md
 * §2): the lock `helm-lock-<release>` (the name helm-lock has always used: older versions wait on
 * it by name), tickets `helm-lock.ticket.<release>-<random>` and the deploy record
 * `helm-lock.state.<release>`, all Leases (one Role on `leases` covers them), all labelled so one
 * list and one watch by label see a release's lock, queue and record. Only a lock's name starts
 * `helm-lock-`, so no release's lock can share a name with another release's record.
 *
 * @module
 */

/** Prefix of every annotation and label key helm-lock writes. */
export const PREFIX = "helm-lock.dev/";
const MANAGED_BY = "app.kubernetes.io/managed-by";
export const RELEASE_LABEL = `${PREFIX}release`;
/** Every helm-lock Lease of any version. */
export const MANAGED_SELECTOR = `${MANAGED_BY}=helm-lock`;
export const LOCK_PREFIX = "helm-lock-";

export const lockName = (release: string): string => `${LOCK_PREFIX}${release}`;
export const stateName = (release: string): string => `helm-lock.state.${release}`;

/**
 * The `generateName` of `release`'s tickets: the API server appends a random suffix. It ends in
 * `-`: a `generateName` must be a valid name but for a trailing dash (`.` is refused, 422).
 */
export const ticketPrefix = (release: string): string => `helm-lock.ticket.${release}-`;

/**
 * Whether `name` is a ticket name of `release`. The API server cuts a `generateName` to 58
 * characters before its 5 random ones (`names.SimpleNameGenerator`), so a release of over 40
 * characters (helm allows 53) has tickets whose names hold only the start of the prefix.
 */
export function isTicketName(name: string, release: string): boolean {
  return name.startsWith(ticketPrefix(release).slice(0, 58));
}

export function releaseLabels(release: string): Record<string, string> {
  return { [MANAGED_BY]: "helm-lock", [RELEASE_LABEL]: release };
}

export const releaseSelector = (release: string): string => `${RELEASE_LABEL}=${release}`;
