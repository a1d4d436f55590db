// deno-lint-ignore-file no-console
/**
 * Starts a control plane from the cached binaries, prints its process ids as JSON and
 * waits to be killed: the orphan test SIGKILLs this process and checks that etcd and
 * kube-apiserver go too.
 */
import { ensureBinaries } from "../controlplane/binaries.ts";
import { startControlPlane } from "../controlplane/controlplane.ts";

const bins = await ensureBinaries({ controlPlane: true, log: () => {} });
const plane = await startControlPlane({ kubeApiserver: bins.kubeApiserver!, etcd: bins.etcd! });
console.log(JSON.stringify({ pids: plane.pids }));
await new Promise(() => {}); // until killed
