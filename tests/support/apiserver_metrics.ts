/**
 * The API server's own count of the requests it served on Leases (`apiserver_request_total`
 * from `/metrics`), so a test can say how many requests a burst of jobs cost without trusting
 * helm-lock's word for it. The counters are the server's since it started: a test reads them
 * before and after, and no other test file runs meanwhile (`deno test` runs files one by one).
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
): { total: number; byKind: Record<string, number> } {
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
