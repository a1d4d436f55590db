/**
 * What helm-lock keeps for a release, as `lock-status`, `lock-list` and `lock-unlock` read it.
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import type { KubeClient } from "../kube/rest.ts";
import { kubeLeaseApi, type LeaseApi, listLeases } from "./cache.ts";
import { bounded, dateOf, holderInfo } from "./lease.ts";
import {
  LOCK_PREFIX,
  lockName,
  MANAGED_SELECTOR,
  RELEASE_LABEL,
  releaseSelector,
  stateName,
} from "./names.ts";
import { RecordAnnotation } from "./record.ts";
import { isStale, queueOrder, readTicket, type Ticket } from "./tickets.ts";

/** One waiting job. */
export interface QueueEntry {
  place: number;
  ticket: string;
  identity: string;
  ciJobUrl?: string;
  user?: string;
  since?: string;
  looksDead: boolean;
}

/** A release's lock (`none`: no lock Lease; times by the holder's clock), queue and record. */
export interface LockInfo {
  namespace: string;
  release: string;
  lease: string;
  state: "held" | "free" | "none";
  holder?: string;
  ciJobUrl?: string;
  user?: string;
  host?: string;
  command?: string;
  since?: string;
  renewTime?: string;
  leaseDurationSeconds?: number;
  queue: QueueEntry[];
  record?: { lease: string; deployedOrderKey?: number; deployedBy?: string; deployedAt?: string };
}

/** The Leases of one release, as listed, with the server's clock at the time. */
export interface ReleaseLeases {
  namespace: string;
  release: string;
  lock?: V1Lease;
  tickets: Ticket[];
  record?: V1Lease;
  serverTime?: number;
}

function entry(t: Ticket, place: number, serverTime: number | undefined): QueueEntry {
  const e: QueueEntry = {
    place,
    ticket: t.name,
    identity: t.info.identity,
    looksDead: isStale(t, serverTime),
  };
  if (t.info.ciJobUrl) e.ciJobUrl = t.info.ciJobUrl;
  if (t.info.user) e.user = t.info.user;
  const since = dateOf(t.lease.spec?.acquireTime);
  if (since) e.since = since.toISOString();
  return e;
}

export function lockInfo(leases: ReleaseLeases): LockInfo {
  const { lock, release, namespace } = leases;
  const info: LockInfo = {
    namespace,
    release,
    lease: lockName(release),
    state: !lock ? "none" : lock.spec?.holderIdentity ? "held" : "free",
    queue: queueOrder(leases.tickets).map((t, i) => entry(t, i + 1, leases.serverTime)),
  };
  if (lock) {
    const { identity, since, ...job } = holderInfo(lock); // only what is known
    Object.assign(info, job);
    if (identity) info.holder = identity;
    if (since) info.since = since.toISOString();
    const renew = dateOf(lock.spec?.renewTime);
    if (renew) info.renewTime = renew.toISOString();
    const s = lock.spec?.leaseDurationSeconds;
    if (typeof s === "number" && Number.isInteger(s)) info.leaseDurationSeconds = s;
  }
  if (leases.record) {
    const a = leases.record.metadata?.annotations ?? {};
    const key = Number(a[RecordAnnotation.deployedKey]);
    const by = bounded(a[RecordAnnotation.deployedBy]);
    const at = bounded(a[RecordAnnotation.deployedAt], 40);
    info.record = {
      lease: stateName(release),
      ...(Number.isSafeInteger(key) ? { deployedOrderKey: key } : {}),
      ...(by ? { deployedBy: by } : {}),
      ...(at ? { deployedAt: at } : {}),
    };
  }
  return info;
}

/** Files a Lease of `r.release` as its lock, its deploy record or one of its tickets. */
function file(r: ReleaseLeases, lease: V1Lease): void {
  const name = lease.metadata?.name ?? "";
  if (name === lockName(r.release)) r.lock = lease;
  else if (name === stateName(r.release)) r.record = lease;
  else {
    const ticket = readTicket(lease, r.release);
    if (ticket) r.tickets.push(ticket);
  }
}

function leasesOf(namespace: string, release: string, serverTime?: number): ReleaseLeases {
  return { namespace, release, tickets: [], ...(serverTime === undefined ? {} : { serverTime }) };
}

/** The Leases of one release: by label, and its lock by name (an older helm-lock's has none). */
export async function readLeases(
  client: KubeClient,
  namespace: string,
  release: string,
  api: Pick<LeaseApi, "list" | "get"> = kubeLeaseApi(client, namespace),
): Promise<ReleaseLeases> {
  const list = await api.list(releaseSelector(release));
  const found = leasesOf(namespace, release, list.serverTime);
  for (const lease of list.items) file(found, lease);
  if (!found.lock) {
    const lock = await api.get(lockName(release));
    if (lock) found.lock = lock;
  }
  return found;
}

/** Every release with helm-lock Leases in `namespace`, or in all namespaces (`undefined`). */
export async function listReleases(
  client: KubeClient,
  namespace: string | undefined,
): Promise<ReleaseLeases[]> {
  const path = namespace === undefined
    ? "/apis/coordination.k8s.io/v1/leases"
    : `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const { items, serverTime } = await listLeases(client, path, MANAGED_SELECTOR);
  const releases = new Map<string, ReleaseLeases>();
  for (const lease of items) {
    const name = lease.metadata?.name ?? "";
    const namespace = lease.metadata?.namespace ?? "";
    // A lock of a helm-lock older than the release label is known by its name only.
    const release = lease.metadata?.labels?.[RELEASE_LABEL] ??
      (name.startsWith(LOCK_PREFIX) ? name.slice(LOCK_PREFIX.length) : undefined);
    if (!release) continue;
    const key = `${namespace}/${release}`;
    if (!releases.has(key)) releases.set(key, leasesOf(namespace, release, serverTime));
    file(releases.get(key)!, lease);
  }
  return [...releases].sort(([a], [b]) => a.localeCompare(b)).map(([, leases]) => leases);
}
