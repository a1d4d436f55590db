/**
 * The test cluster's Leases as its admin sees them: what a run took, and what it left behind.
 *
 * @module
 */
import * as k8s from "@kubernetes/client-node";
import { adminKubeConfig } from "./cluster.ts";

/** The admin's client of the Lease API. */
export function adminLeaseApi(): k8s.CoordinationV1Api {
  return adminKubeConfig().makeApiClient(k8s.CoordinationV1Api);
}

/** The names of all Leases in `namespace`, sorted: what a run left, in one comparable list. */
export async function leaseNames(namespace: string): Promise<string[]> {
  const list = await adminLeaseApi().listNamespacedLease({ namespace });
  return list.items.map((l) => l.metadata?.name ?? "").sort();
}

/**
 * Whether `lease` is the deploy queue's state (`helm-lock.state.<release>`): it records the
 * last deploy and outlives every run on purpose, so "nothing left" does not count it.
 */
export function isQueueState(lease: k8s.V1Lease): boolean {
  return lease.metadata?.name?.startsWith("helm-lock.state.") ?? false;
}

/** The Leases in `namespace` that runs take and must not leave: locks and queue tickets. */
export async function runLeases(namespace: string): Promise<k8s.V1Lease[]> {
  const list = await adminLeaseApi().listNamespacedLease({ namespace });
  return list.items.filter((l) => !isQueueState(l));
}
