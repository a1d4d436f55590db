/**
 * The names and labels of helm-lock's Leases in a release namespace (docs/design.md §2).
 * @module
 */

export const PREFIX = "helm-lock.dev/";
const MANAGED_BY = "app.kubernetes.io/managed-by";
export const RELEASE_LABEL = `${PREFIX}release`;
export const MANAGED_SELECTOR = `${MANAGED_BY}=helm-lock`;
export const LOCK_PREFIX = "helm-lock-";

export const lockName = (release: string): string => `${LOCK_PREFIX}${release}`;
export const stateName = (release: string): string => `helm-lock.state.${release}`;

/** A `generateName` must be a valid name but for a trailing dash (`.` is refused, 422). */
export const ticketPrefix = (release: string): string => `helm-lock.ticket.${release}-`;

/**
 * The API server cuts a `generateName` to 58 characters before its 5 random ones
 * (`names.SimpleNameGenerator`): a release of over 40 characters (helm allows 53) has tickets
 * whose names hold only the start of the prefix.
 */
export function isTicketName(name: string, release: string): boolean {
  return name.startsWith(ticketPrefix(release).slice(0, 58));
}

export function releaseLabels(release: string): Record<string, string> {
  return { [MANAGED_BY]: "helm-lock", [RELEASE_LABEL]: release };
}

export const releaseSelector = (release: string): string => `${RELEASE_LABEL}=${release}`;
