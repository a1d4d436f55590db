/**
 * The API server's own count of the requests it served on Leases, so a test or bench can say
 * how many requests a burst of jobs cost without trusting helm-lock's word for it:
 *
 * - {@linkcode leaseRequestsIn}: one namespace's, from the audit log of the suite's control
 *   plane (tests/controlplane/controlplane.ts), exact while other test files run;
 * - {@linkcode leaseRequests}: the whole server's counters (`apiserver_request_total` from
 *   `/metrics`), for a cluster without that audit log, when nothing else runs on it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import * as k8s from "@kubernetes/client-node";

/** Lease requests by `VERB code` (`POST 201`, `POST 409`, `WATCH 200`, ...). */
export type RequestCounts = Map<string, number>;

function decode(data: string | undefined): string {
  return data ? Buffer.from(data, "base64").toString("utf8") : "";
}

/** The API server's counters of requests on `leases`, from its `/metrics` (admin kubeconfig). */
export async function leaseRequests(kubeconfig: string): Promise<RequestCounts> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const cluster = kc.getCurrentCluster()!;
  const user = kc.getCurrentUser()!;
  const client = Deno.createHttpClient({
    caCerts: [decode(cluster.caData)],
    cert: decode(user.certData),
    key: decode(user.keyData),
  });
  try {
    const res = await fetch(new URL("/metrics", cluster.server), { client });
    if (!res.ok) throw new Error(`GET /metrics: ${res.status} ${await res.text()}`);
    const counts: RequestCounts = new Map();
    for (const line of (await res.text()).split("\n")) {
      if (!line.startsWith("apiserver_request_total{")) continue;
      const labels = Object.fromEntries(
        [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
      );
      if (labels.resource !== "leases" || labels.group !== "coordination.k8s.io") continue;
      const key = `${labels.verb} ${labels.code}`;
      counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
    }
    return counts;
  } finally {
    client.close();
  }
}

/** What was counted between `before` and `after`, and the total. */
export function requestsBetween(
  before: RequestCounts,
  after: RequestCounts,
): Counted {
  const byKind: Record<string, number> = {};
  let total = 0;
  for (const [key, n] of after) {
    const d = n - (before.get(key) ?? 0);
    if (d > 0) {
      byKind[key] = d;
      total += d;
    }
  }
  return { total, byKind };
}

/**
 * What was counted: the total and the count by `VERB code` (`POST 201`, `WATCH 200`, ...);
 * from the audit log by `verb code`, requests on a lock itself as `verb lock code`
 * (`update lock 200`: a renewal, when the lock was held).
 */
export interface Counted {
  total: number;
  byKind: Record<string, number>;
}

/**
 * Starts counting the Lease requests in `namespace` and returns the function that ends the
 * count. From the API server's audit log (`HELM_LOCK_TEST_AUDIT_LOG`, set by `deno task test`),
 * or on another cluster from the server-wide counters of `kubeconfig`'s server (the runner
 * then runs one test file at a time).
 */
export async function leaseRequestsIn(
  namespace: string,
  kubeconfig: string,
): Promise<() => Promise<Counted>> {
  const log = Deno.env.get("HELM_LOCK_TEST_AUDIT_LOG");
  if (!log) {
    const before = await leaseRequests(kubeconfig);
    return async () => requestsBetween(before, await leaseRequests(kubeconfig));
  }
  const from = (await Deno.stat(log)).size;
  return async () => {
    // A request's event is written before its response ends; 200 ms of quiet covers the
    // last watch's closing event.
    let counted = await auditedSince(log, from, namespace);
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const again = await auditedSince(log, from, namespace);
      if (again.total === counted.total) return again;
      counted = again;
    }
  };
}

interface AuditEvent {
  auditID: string;
  verb: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  stage: string;
}

async function auditedSince(log: string, from: number, namespace: string): Promise<Counted> {
  const file = await Deno.open(log);
  try {
    await file.seek(from, Deno.SeekMode.Start);
    const text = await new Response(file.readable).text();
    const kinds = new Map<string, string>();
    const lines = text.split("\n");
    lines.pop(); // "" after the last newline, or a line still being written
    for (const line of lines) {
      const e = JSON.parse(line) as AuditEvent;
      if (e.objectRef?.resource !== "leases" || e.objectRef.namespace !== namespace) continue;
      // One request, several stages (a watch: ResponseStarted, then ResponseComplete).
      const object = e.objectRef.name?.startsWith("helm-lock-") ? "lock " : "";
      kinds.set(e.auditID, `${e.verb} ${object}${e.responseStatus?.code ?? "?"}`);
    }
    const byKind: Record<string, number> = {};
    for (const kind of kinds.values()) byKind[kind] = (byKind[kind] ?? 0) + 1;
    return { total: kinds.size, byKind };
  } finally {
    try {
      file.close();
    } catch { /* closed with its stream */ }
  }
}
