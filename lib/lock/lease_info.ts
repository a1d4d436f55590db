/**
 * A helm-lock Lease as users read it (`helm-lock lock-status`, `lock-list`): who holds it,
 * since when, its CI job, the last renewal, and the queue behind it.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import type { KubeClient } from "../kube/rest.ts";
import { QUEUE_LABEL, queueOrder, readTicket, type Ticket } from "./queue.ts";
import { kubeQueueApi, type QueueApi } from "./queue_api.ts";
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
  /** The ticket's last renewal (RFC 3339, the waiter's clock). */
  renewTime?: string;
  /** How long the ticket lives without a renewal. */
  leaseDurationSeconds?: number;
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
 * The queue behind a lock, first in line first: the waiting tickets (`queue.ts`), in the
 * order the queue serves them.
 */
export async function readQueue(
  client: KubeClient,
  namespace: string,
  release: string,
  api: QueueApi = kubeQueueApi(client, namespace),
): Promise<QueueEntry[]> {
  const { items } = await api.list(`${QUEUE_LABEL}=${release}`);
  const leases = new Map<Ticket, V1Lease>();
  for (const lease of items) {
    const ticket = readTicket(lease);
    if (ticket && !ticket.holding) leases.set(ticket, lease);
  }
  return queueOrder([...leases.keys()]).map((t) => {
    const entry: QueueEntry = { identity: t.info.identity };
    if (t.info.ciJobUrl) entry.ciJobUrl = t.info.ciJobUrl;
    if (t.info.since) entry.since = t.info.since.toISOString();
    const spec = leases.get(t)?.spec;
    const renew = iso(spec?.renewTime);
    if (renew) entry.renewTime = renew;
    if (spec?.leaseDurationSeconds !== undefined) {
      entry.leaseDurationSeconds = spec.leaseDurationSeconds;
    }
    return entry;
  });
}

/**
 * The helm-lock Leases of `namespace`, or of all namespaces when it is `undefined`,
 * sorted by namespace and release.
 */
export async function listLocks(
  client: KubeClient,
  namespace: string | undefined,
): Promise<V1Lease[]> {
  const path = namespace === undefined
    ? "/apis/coordination.k8s.io/v1/leases"
    : `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const list = await client.request<{ items?: V1Lease[] | null }>("GET", path, {
    query: { labelSelector: MANAGED_BY_SELECTOR },
  });
  return (list.items ?? []).filter((l) => l.metadata?.name?.startsWith(LEASE_PREFIX)).sort((
    a,
    b,
  ) =>
    `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(
      `${b.metadata?.namespace}/${b.metadata?.name}`,
    )
  );
}
