// deno-lint-ignore-file no-console
/**
 * The API server restarted under a held lock (issue 9: deno crashed with SIGABRT in
 * nghttp2 or SIGSEGV when kube-apiserver restarted, through client-node's undici over
 * `node:http2`). Starts its own control plane, lets a lock worker hold a lock, restarts
 * kube-apiserver (SIGTERM, same etcd, same flags) `n` times, and reports whether the worker
 * survived every restart and whether it still holds its lock.
 *
 * `deno run -A bench/restarts.ts [restarts=20] [worker=tests/support/lock_worker.ts]` — the
 * worker argument lets the same run measure another checkout's worker.
 *
 * @module
 */
import { join } from "node:path";
import { ensureBinaries } from "../tests/controlplane/binaries.ts";
import { startControlPlane } from "../tests/controlplane/controlplane.ts";

const restarts = Number(Deno.args[0] ?? 20);
const worker = Deno.args[1] ?? new URL("../tests/support/lock_worker.ts", import.meta.url).pathname;
const config = join(worker, "..", "..", "..", "deno.json");

const bins = await ensureBinaries({ controlPlane: true, log: (m) => console.error(m) });
const plane = await startControlPlane({ kubeApiserver: bins.kubeApiserver!, etcd: bins.etcd! });
const apiPid = plane.pids.at(-1)!;
const cmdline = (await Deno.readTextFile(`/proc/${apiPid}/cmdline`)).split("\0").filter((a) => a);
const [bin, ...args] = cmdline as [string, ...string[]];
let api: Deno.ChildProcess | undefined;

const client = Deno.createHttpClient({
  caCerts: [await Deno.readTextFile(plane.ca.cert)],
});

async function ready(): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch(`${plane.server}/livez`, { client });
      await r.body?.cancel();
      if (r.status === 200 || r.status === 401 || r.status === 403) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("kube-apiserver did not come back");
}

const workerProc = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-all",
    `--config=${config}`,
    worker,
    JSON.stringify({
      kubeconfig: plane.kubeconfig,
      namespace: "default",
      release: "restarts",
      timeoutMs: 60_000,
      mode: "hold",
    }),
  ],
  stdin: "piped",
  stdout: "piped",
  stderr: "piped",
}).spawn();
const out: string[] = [];
const reading = (async () => {
  for await (const chunk of workerProc.stdout.pipeThrough(new TextDecoderStream())) out.push(chunk);
})();
const errText = new Response(workerProc.stderr).text();
let exited: Deno.CommandStatus | undefined;
workerProc.status.then((s) => exited = s);
try {
  while (!out.join("").includes('"acquired"')) {
    if (exited) throw new Error(`worker exited early: ${out.join("")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  let survived = 0;
  for (let i = 0; i < restarts && !exited; i++) {
    const pid = api?.pid ?? apiPid;
    Deno.kill(pid, "SIGTERM");
    if (api) await api.status;
    else {
      while (await Deno.stat(`/proc/${pid}`).then(() => true, () => false)) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    api = new Deno.Command(bin, { args, stdout: "null", stderr: "null" }).spawn();
    await ready();
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
    if (!exited) survived++;
  }
  const lostLine = out.join("").split("\n").find((l) => l.includes('"lost"'));
  const lost = lostLine !== undefined;
  console.log(
    `worker ${worker}: ${
      exited ? `DIED (signal ${exited.signal}, code ${exited.code})` : "alive"
    } after ${survived} of ${restarts} kube-apiserver restarts; lock ${lost ? "lost" : "held"}`,
  );
  if (lostLine) console.log(lostLine);
  if (exited) console.log((await errText).split("\n").slice(-5).join("\n"));
} finally {
  try {
    workerProc.kill("SIGKILL");
  } catch { /* gone */ }
  await reading.catch(() => {});
  if (api) {
    api.kill("SIGTERM");
    await api.status;
  }
  client.close();
  await plane.stop();
}
