/**
 * A real Kubernetes control plane for end-to-end tests: etcd and kube-apiserver on free
 * loopback ports in a temporary directory, RBAC on, an admin kubeconfig written. No
 * controllers run, which the tests rely on: a Deployment never becomes ready, so
 * `helm upgrade --wait` of it hangs until helm is stopped.
 *
 * @module
 */
import { join } from "node:path";
import type { TestBinaries } from "./binaries.ts";
import {
  type CertFiles,
  createCa,
  createSigningKey,
  issueCert,
  issueClientCert,
  kubeconfigFor,
} from "./pki.ts";

/** A running control plane. */
export interface ControlPlane {
  /** The temporary directory holding certificates, data and logs. */
  dir: string;
  /** `https://127.0.0.1:<port>` */
  server: string;
  /** Path of the admin kubeconfig (CN=admin, O=system:masters). */
  kubeconfig: string;
  /** The CA, to mint client certificates for less-privileged users. */
  ca: CertFiles;
  /**
   * The API server's audit log (JSON lines): every request on a Lease, one event per stage
   * after the request is received, so a test can count one namespace's Lease requests while
   * other test files run.
   */
  auditLog: string;
  /** Process ids of etcd and kube-apiserver (as started). */
  pids: number[];
  /** The running kube-apiserver, for fault tests. */
  apiserver: {
    /** Its current process id. */
    pid(): number;
    /** Stops it (SIGTERM, as a rolling restart does), starts it again on the same etcd and waits until it serves. */
    restart(): Promise<void>;
  };
  /** Stops every process this control plane started, and removes `dir`. Idempotent. */
  stop(): Promise<void>;
}

/** `n` distinct free loopback ports: all are held open until all are chosen. */
function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

interface Proc {
  name: string;
  child: Deno.ChildProcess;
  log: string;
}

async function startProc(
  name: string,
  bin: string,
  args: string[],
  dir: string,
): Promise<Proc> {
  const log = join(dir, `${name}.log`);
  const file = await Deno.open(log, { append: true, create: true });
  const child = new Deno.Command(bin, {
    args,
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    // The Go mains exit when this process is gone, even after a SIGKILL (parentwatch).
    env: { HELM_LOCK_TEST_PARENT_PID: String(Deno.pid) },
  }).spawn();
  // Both streams go to one log file; closing it when both end.
  const writer = file.writable.getWriter();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) await writer.write(chunk);
  };
  Promise.all([pump(child.stdout), pump(child.stderr)]).finally(() =>
    writer.close().catch(() => {})
  );
  return { name, child, log };
}

async function tail(path: string, lines = 20): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function stopProc(p: Proc): Promise<void> {
  try {
    p.child.kill("SIGTERM");
  } catch {
    return; // already exited
  }
  const timer = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }, 10_000);
  await p.child.status;
  clearTimeout(timer);
}

/** Polls `url` with the admin client certificate until it answers 200. */
async function waitReady(
  client: Deno.HttpClient,
  url: string,
  proc: Proc,
  timeoutMs: number,
): Promise<void> {
  const exited = proc.child.status.then((s) => s);
  const start = Date.now();
  let last = "";
  while (Date.now() - start < timeoutMs) {
    const done = await Promise.race([
      exited,
      new Promise<null>((r) => setTimeout(() => r(null), 0)),
    ]);
    if (done) {
      throw new Error(`${proc.name} exited with code ${done.code}:\n${await tail(proc.log)}`);
    }
    try {
      const res = await fetch(url, { client, signal: AbortSignal.timeout(2000) });
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (last: ${last.slice(0, 300)})`);
}

/** Starts etcd and kube-apiserver and waits until the API server serves the `default` namespace. */
export async function startControlPlane(
  bins: Pick<TestBinaries, "kubeApiserver" | "etcd">,
): Promise<ControlPlane> {
  const dir = await Deno.makeTempDir({ prefix: "helm-lock-cp-" });
  const procs: Proc[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // The API server first, so it does not spin on a vanished etcd.
    for (const p of procs.reverse()) await stopProc(p);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const ca = await createCa(dir);
    const serving = await issueCert(dir, "apiserver", ca, "/CN=kube-apiserver", [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc",
    ]);
    const admin = await issueClientCert(dir, ca, "admin", ["system:masters"]);
    const saKey = await createSigningKey(dir);

    const [etcdClient, etcdPeer, apiPort] = freePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    procs.push(
      await startProc("etcd", bins.etcd, [
        "--name=test",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        "--unsafe-no-fsync", // throwaway data: fsync only slows the tests down
        "--log-level=warn",
      ], dir),
    );

    const server = `https://127.0.0.1:${apiPort}`;
    const auditLog = join(dir, "audit.log");
    const auditPolicy = join(dir, "audit-policy.json");
    await Deno.writeTextFile(
      auditPolicy,
      JSON.stringify({
        apiVersion: "audit.k8s.io/v1",
        kind: "Policy",
        omitStages: ["RequestReceived"],
        rules: [
          {
            level: "Metadata",
            resources: [{ group: "coordination.k8s.io", resources: ["leases"] }],
          },
          { level: "None" },
        ],
      }),
    );
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, "certs")}`,
      `--tls-cert-file=${serving.cert}`,
      `--tls-private-key-file=${serving.key}`,
      `--client-ca-file=${ca.cert}`,
      `--service-account-key-file=${saKey.pub}`,
      `--service-account-signing-key-file=${saKey.key}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      "--authorization-mode=RBAC",
      "--service-cluster-ip-range=10.96.0.0/24",
      "--endpoint-reconciler-type=none",
      "--enable-priority-and-fairness=false",
      "--profiling=false",
      "--v=1",
      `--audit-policy-file=${auditPolicy}`,
      `--audit-log-path=${auditLog}`,
      "--audit-log-format=json",
      "--audit-log-mode=blocking", // written before the response is finished
    ];
    let apiserver = await startProc("kube-apiserver", bins.kubeApiserver, apiserverArgs, dir);
    procs.push(apiserver);

    const kubeconfig = join(dir, "admin.kubeconfig");
    await Deno.writeTextFile(kubeconfig, await kubeconfigFor(server, ca.cert, admin, "admin"));

    const clientOptions = {
      caCerts: [await Deno.readTextFile(ca.cert)],
      cert: await Deno.readTextFile(admin.cert),
      key: await Deno.readTextFile(admin.key),
    };
    const ready = async () => {
      const client = Deno.createHttpClient(clientOptions);
      try {
        await waitReady(client, `${server}/readyz`, apiserver, 60_000);
        await waitReady(client, `${server}/api/v1/namespaces/default`, apiserver, 30_000);
      } finally {
        client.close();
      }
    };
    await ready();
    const restart = async () => {
      await stopProc(apiserver);
      const next = await startProc("kube-apiserver", bins.kubeApiserver, apiserverArgs, dir);
      procs[procs.indexOf(apiserver)] = next;
      apiserver = next;
      await ready();
    };
    return {
      dir,
      server,
      kubeconfig,
      ca,
      auditLog,
      pids: procs.map((p) => p.child.pid),
      apiserver: { pid: () => apiserver.child.pid, restart },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
