/**
 * A helm-lock Lease as users read it (`helm-lock lock-status`, `lock-list`): who holds it,
 * since when, its CI job, the last renewal, and the queue behind it.
 *
 * @module
 */

import { CoordinationV1Api, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import { holderInfo } from "./wait.ts";

/** The label every helm-lock Lease carries. */
export const MANAGED_BY_SELECTOR = "app.kubernetes.io/managed-by=helm-lock";
/** The Lease name prefix; the rest is the release name. */
export const LEASE_PREFIX = "helm-lock-";

/** One ticket of the queue behind a lock. */
export interface QueueEntry {
  identity: string;
  ciJobUrl?: string;
  since?: string;
}

/** A helm-lock Lease, for people and `-o json`. */
export interface LockInfo {
  namespace: string;
  release: string;
  lease: string;
  /** `held` when a holder is recorded, `free` when it was cleared. */
  state: "held" | "free";
  holder?: string;
  ciJobUrl?: string;
  user?: string;
  host?: string;
  command?: string;
  /** When the holder took the lock (RFC 3339, the holder's clock). */
  since?: string;
  /** The holder's last renewal (RFC 3339, the holder's clock). */
  renewTime?: string;
  leaseDurationSeconds?: number;
  /** Jobs waiting behind the holder, first in line first. */
  queue: QueueEntry[];
}

function iso(t: unknown): string | undefined {
  if (t === undefined || t === null) return undefined;
  const d = t instanceof Date ? t : new Date(String(t));
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Reads what a Lease says. */
export function lockInfo(lease: V1Lease): LockInfo {
  const name = lease.metadata?.name ?? "";
  const h = holderInfo(lease);
  const info: LockInfo = {
    namespace: lease.metadata?.namespace ?? "",
    release: name.startsWith(LEASE_PREFIX) ? name.slice(LEASE_PREFIX.length) : name,
    lease: name,
    state: h.identity ? "held" : "free",
    queue: [],
  };
  if (h.identity) info.holder = h.identity;
  if (h.ciJobUrl) info.ciJobUrl = h.ciJobUrl;
  if (h.user) info.user = h.user;
  if (h.host) info.host = h.host;
  if (h.command) info.command = h.command;
  if (h.since) info.since = h.since.toISOString();
  const renew = iso(lease.spec?.renewTime);
  if (renew) info.renewTime = renew;
  if (lease.spec?.leaseDurationSeconds !== undefined) {
    info.leaseDurationSeconds = lease.spec.leaseDurationSeconds;
  }
  return info;
}

/**
 * The queue behind a lock, first in line first. The hook for the FIFO queue (issue 12):
 * once waiters leave tickets in the cluster, this reads them. Until then nobody queues in
 * the cluster (waiters only watch the Lease), so the queue is empty.
 */
export function readQueue(
  _kubeConfig: KubeConfig,
  _namespace: string,
  _release: string,
): Promise<QueueEntry[]> {
  return Promise.resolve([]);
}

/**
 * The helm-lock Leases of `namespace`, or of all namespaces when it is `undefined`,
 * sorted by namespace and release.
 */
export async function listLocks(
  kubeConfig: KubeConfig,
  namespace: string | undefined,
): Promise<V1Lease[]> {
  const api = kubeConfig.makeApiClient(CoordinationV1Api);
  const list = namespace === undefined
    ? await api.listLeaseForAllNamespaces({ labelSelector: MANAGED_BY_SELECTOR })
    : await api.listNamespacedLease({ namespace, labelSelector: MANAGED_BY_SELECTOR });
  return list.items.filter((l) => l.metadata?.name?.startsWith(LEASE_PREFIX)).sort((a, b) =>
    `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(
      `${b.metadata?.namespace}/${b.metadata?.name}`,
    )
  );
}
