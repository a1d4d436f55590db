/**
 * A control plane of their own for the fault tests: they SIGSTOP, restart and freeze the
 * API server, which must not disturb the tests that share the suite's control plane.
 * Started once per test file on first use; its processes end with the test process.
 *
 * @module
 */
import * as k8s from "@kubernetes/client-node";
import { join } from "node:path";
import { ensureBinaries } from "../controlplane/binaries.ts";
import { type ControlPlane, startControlPlane } from "../controlplane/controlplane.ts";

let started: Promise<ControlPlane> | undefined;

/** The fault tests' own control plane (started on first call). */
export function faultPlane(): Promise<ControlPlane> {
  return started ??= (async () => {
    const bins = await ensureBinaries({ controlPlane: true, log: () => {} });
    return await startControlPlane({ kubeApiserver: bins.kubeApiserver!, etcd: bins.etcd! });
  })();
}

/** Stops the fault tests' control plane, if it was started. */
export async function stopFaultPlane(): Promise<void> {
  if (started) await (await started).stop();
  started = undefined;
}

/** The admin client configuration of the fault plane. */
export async function faultKubeConfig(): Promise<k8s.KubeConfig> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile((await faultPlane()).kubeconfig);
  return kc;
}

/** Creates a namespace `<prefix>-<random>` on the fault plane. */
export async function faultNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  const core = (await faultKubeConfig()).makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

/** The Leases in `namespace` on the fault plane. */
export async function faultLeases(namespace: string): Promise<k8s.V1Lease[]> {
  const api = (await faultKubeConfig()).makeApiClient(k8s.CoordinationV1Api);
  return (await api.listNamespacedLease({ namespace })).items;
}

/** Environment for helm and helm-lock on the fault plane, with their own helm homes. */
export async function faultEnv(
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const home = await Deno.makeTempDir({ prefix: "helm-lock-faulthome-" });
  return {
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_DATA_HOME: join(home, "data"),
    KUBECONFIG: (await faultPlane()).kubeconfig,
    ...extra,
  };
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
