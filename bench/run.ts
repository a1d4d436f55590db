// deno-lint-ignore-file no-console
/**
 * `deno task bench`: starts the test control plane and measures, with the real helm
 * binaries, lock handoff latency and waiting cost (bench/lock.ts) and the wrapper's
 * overhead over plain helm (bench/overhead.ts). Prints markdown for the README.
 *
 * @module
 */
import { ensureBinaries } from "../tests/controlplane/binaries.ts";
import { startControlPlane } from "../tests/controlplane/controlplane.ts";
import { benchLock } from "./lock.ts";
import { benchOverhead, OVERHEAD_HEADER } from "./overhead.ts";

const bins = await ensureBinaries({ controlPlane: true, log: (m) => console.error(`bench: ${m}`) });
const plane = await startControlPlane({ kubeApiserver: bins.kubeApiserver!, etcd: bins.etcd! });
try {
  console.log(
    `Measured on ${Deno.build.target}, ${navigator.hardwareConcurrency} cores, ${
      new Date().toISOString().slice(0, 10)
    }:\n`,
  );
  console.log(await benchLock(plane.kubeconfig));
  console.log(`\nWrapper overhead on the fast chart (interleaved runs):\n\n${OVERHEAD_HEADER}`);
  console.log(await benchOverhead(plane.kubeconfig, "helm v3.17.2", bins.helm3));
  console.log(await benchOverhead(plane.kubeconfig, "helm v4.1.4", bins.helm4));
  // helm polls the API server through the pass-through while it waits.
  console.log(await benchOverhead(plane.kubeconfig, "helm v3.17.2", bins.helm3, 7, ["--wait"]));
  console.log(await benchOverhead(plane.kubeconfig, "helm v4.1.4", bins.helm4, 7, ["--wait"]));
} finally {
  await plane.stop();
}
