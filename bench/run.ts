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
import { benchBurst, BURST_HEADER, burstRow } from "./burst.ts";
import { benchLock } from "./lock.ts";
import { benchOverhead, BREAKDOWN_HEADER, OVERHEAD_HEADER } from "./overhead.ts";

const bins = await ensureBinaries({ controlPlane: true, log: (m) => console.error(`bench: ${m}`) });
const plane = await startControlPlane({ kubeApiserver: bins.kubeApiserver!, etcd: bins.etcd! });
try {
  console.log(
    `Measured on ${Deno.build.target}, ${navigator.hardwareConcurrency} cores, ${
      new Date().toISOString().slice(0, 10)
    }:\n`,
  );
  console.log(await benchLock(plane.kubeconfig));
  // 31 rounds: on a shared 2-core machine, medians of 15 moved by ±30 ms from run to run.
  const rows = await benchOverhead(plane.kubeconfig, [
    { name: "helm v3.17.2", bin: bins.helm3 },
    { name: "helm v4.1.4", bin: bins.helm4 },
  ], 31);
  console.log(`\nWrapper overhead on the fast chart (interleaved runs):\n\n${OVERHEAD_HEADER}`);
  for (const r of rows) console.log(r.row);
  // helm polls the API server through the fence while it waits.
  const waits = await benchOverhead(
    plane.kubeconfig,
    [
      { name: "helm v3.17.2", bin: bins.helm3 },
      { name: "helm v4.1.4", bin: bins.helm4 },
    ],
    15,
    ["--wait"],
  );
  for (const r of waits) console.log(r.row);
  console.log(`\nA burst of jobs on one release (Lease requests by the API server's count):\n`);
  console.log(BURST_HEADER);
  for (const n of [20, 40]) {
    console.log(burstRow(await benchBurst(plane.kubeconfig, [bins.helm3, bins.helm4], n)));
  }
  console.log(`\nWhere helm lock upgrade's time goes (medians):\n\n${BREAKDOWN_HEADER}`);
  for (const r of rows) console.log(r.breakdown);
} finally {
  await plane.stop();
}
