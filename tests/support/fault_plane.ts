/**
 * A control plane of their own for the fault tests: they SIGSTOP, restart and freeze the
 * API server, which must not disturb the tests that share the suite's control plane.
 * Started once per test file on first use, stopped by its `Deno.test.afterAll` (its processes
 * also end with the test process).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { ensureBinaries } from "../controlplane/binaries.ts";
import { type ControlPlane, startControlPlane } from "../controlplane/controlplane.ts";
import { helmEnv } from "./cluster.ts";
import { isQueueState } from "./leases.ts";
import { LockProcess } from "./lock_procs.ts";

let started: Promise<ControlPlane> | undefined;

/** The fault tests' own control plane (started on first call). */
export function faultPlane(): Promise<ControlPlane> {
  return started ??= (async () => {
    const bins = await ensureBinaries({ controlPlane: true, log: () => {} });
    return await startControlPlane({ kubeApiserver: bins.kubeApiserver!, etcd: bins.etcd! });
  })();
}

/**
 * Stops the fault tests' control plane, if it was started, and throws unless its etcd and
 * kube-apiserver are gone and its directory is removed.
 * Teardown for `Deno.test.afterAll`: a throw there fails the test file, and so the run.
 */
export async function stopFaultPlane(): Promise<void> {
  const starting = started;
  started = undefined;
  if (!starting) return;
  const plane = await starting.catch(() => undefined);
  if (!plane) return; // it never started: the test that asked for it has failed already
  // etcd as started and the API server now (one a restart replaced has been waited for, and
  // its process id may be another process's by now).
  const [etcd] = plane.pids;
  const pids = [...(etcd === undefined ? [] : [etcd]), plane.apiserver.pid()];
  await plane.stop();
  const left = pids.filter(processAlive);
  if (left.length > 0) {
    throw new Error(`the fault control plane's processes ${left.join(", ")} outlived its stop`);
  }
  if (await Deno.stat(plane.dir).then(() => true, () => false)) {
    throw new Error(`the fault control plane's directory ${plane.dir} outlived its stop`);
  }
}

/**
 * A minimal admin client of the fault plane on Deno's own fetch. Not client-node: its HTTP/2
 * stack under Deno can abort the test process when the API server restarts (issue 9).
 */
async function kube(method: string, path: string, body?: unknown): Promise<Response> {
  const plane = await faultPlane();
  const config = JSON.parse(await Deno.readTextFile(plane.kubeconfig));
  const user = config.users[0].user;
  const client = Deno.createHttpClient({
    caCerts: [atob(config.clusters[0].cluster["certificate-authority-data"])],
    cert: atob(user["client-certificate-data"]),
    key: atob(user["client-key-data"]),
  });
  try {
    const res = await fetch(`${plane.server}${path}`, {
      method,
      client,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await res.clone().arrayBuffer(); // Read fully before the client closes.
    return res;
  } finally {
    client.close();
  }
}

async function ok(res: Response): Promise<unknown> {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return await res.json();
}

/** Creates a namespace `<prefix>-<random>` on the fault plane. */
export async function faultNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  await ok(await kube("POST", "/api/v1/namespaces", { metadata: { name } }));
  return name;
}

const leasesPath = (namespace: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;

/**
 * The Leases in `namespace` on the fault plane, but the deploy queue's state, which outlives
 * every job by design (it records the last deploy).
 */
export async function faultLeases(namespace: string): Promise<V1Lease[]> {
  const list = (await ok(await kube("GET", leasesPath(namespace)))) as { items: V1Lease[] };
  return list.items.filter((l) => !isQueueState(l));
}

/** The Lease `name` in `namespace`. */
export async function faultLease(namespace: string, name: string): Promise<V1Lease> {
  return (await ok(await kube("GET", `${leasesPath(namespace)}/${name}`))) as V1Lease;
}

/** Deletes the Lease `name` in `namespace`, as an admin would by hand. */
export async function deleteFaultLease(namespace: string, name: string): Promise<void> {
  await ok(await kube("DELETE", `${leasesPath(namespace)}/${name}`));
}

/** Environment for helm and helm-lock on the fault plane, with their own helm homes. */
export async function faultEnv(
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  return helmEnv({ KUBECONFIG: (await faultPlane()).kubeconfig, ...extra });
}

/**
 * Runs `during(holder)` while a lock worker holds release `app`'s lock in `namespace` on the
 * fault plane, with a lease of `leaseDurationSeconds`; then has it release, and asserts that it
 * exited 0 and left no Lease: the frame of the tests that a holder comes through a fault.
 */
export async function whileFaultHolding(
  namespace: string,
  leaseDurationSeconds: number,
  during: (holder: LockProcess) => Promise<void>,
): Promise<void> {
  const holder = new LockProcess({
    kubeconfig: (await faultPlane()).kubeconfig,
    namespace,
    release: "app",
    timeoutMs: 30_000,
    leaseDurationSeconds,
    mode: "hold",
  });
  try {
    await holder.next("acquired", 30_000);
    await during(holder);
    await holder.send();
    await holder.next("released", 10_000);
  } finally {
    assert.equal(await holder.close(), 0);
  }
  assert.deepEqual(await faultLeases(namespace), []);
}

/** Whether process `pid` exists and is not a zombie (Linux /proc). */
export function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Pauses (SIGSTOP) the fault plane's API server for `ms`, then lets it go on. */
export async function freezeApiserver(ms: number): Promise<void> {
  const pid = (await faultPlane()).apiserver.pid();
  Deno.kill(pid, "SIGSTOP");
  try {
    await new Promise((r) => setTimeout(r, ms));
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
}
