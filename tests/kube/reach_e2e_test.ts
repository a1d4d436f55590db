/**
 * Reaching the cluster exactly as helm does (issue 13), end to end with helm 3 and 4 where
 * helm is involved: a CONNECT proxy on loopback for a server name that resolves only
 * through it, an exec credential plugin (KUBERNETES_EXEC_INFO), a `tokenFile` with a real
 * ServiceAccount token rotated during a wait, a simulated in-cluster environment, and
 * several impersonated groups.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { load } from "js-yaml";
import { ExitCode } from "../../lib/errors.ts";
import { connect } from "../../lib/kube/connection.ts";
import { kubeClient } from "../../lib/kube/rest.ts";
import { takeLock } from "../../lib/lock/take.ts";
import {
  adminKubeConfig,
  adminKubeconfig,
  createNamespace,
  helmEnv,
  helms,
} from "../support/cluster.ts";
import { run } from "../support/helm.ts";
import { helmLock } from "../support/cli.ts";
import { FAST } from "../support/charts.ts";

const dir = Deno.makeTempDirSync({ prefix: "helm-lock-reach-" });

type Doc = {
  clusters: { cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
};

function admin(): Doc {
  return load(Deno.readTextFileSync(adminKubeconfig())) as Doc;
}

function writeKubeconfig(name: string, edit: (doc: Doc) => void): string {
  const doc = admin();
  edit(doc);
  const path = join(dir, name);
  Deno.writeTextFileSync(path, JSON.stringify(doc));
  return path;
}

function serverPort(): string {
  return new URL(String(admin().clusters[0]!.cluster.server)).port;
}

/** A CONNECT proxy on loopback that resolves `kubernetes.default.svc` to 127.0.0.1. */
function connectProxy() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const targets: string[] = [];
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(8192);
        let head = "";
        while (!head.includes("\r\n\r\n")) {
          const n = await conn.read(buf);
          if (n === null) return conn.close();
          head += new TextDecoder().decode(buf.subarray(0, n));
        }
        const target = head.match(/^CONNECT (\S+) HTTP/)?.[1] ?? "";
        targets.push(target);
        const [host, port] = target.split(":");
        if (host !== "kubernetes.default.svc") {
          await conn.write(new TextEncoder().encode("HTTP/1.1 502 Bad Gateway\r\n\r\n"));
          return conn.close();
        }
        const upstream = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
        conns.add(upstream);
        await conn.write(new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n"));
        await Promise.allSettled([
          conn.readable.pipeTo(upstream.writable),
          upstream.readable.pipeTo(conn.writable),
        ]);
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    targets,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed already */ }
      }
    },
  };
}

for (const helm of helms) {
  Deno.test(`${helm.name}: HTTPS_PROXY reaches a server name only the proxy resolves`, async () => {
    const namespace = await createNamespace(`proxy-${helm.name}`);
    const kubeconfig = writeKubeconfig(`proxy-${helm.name}.json`, (doc) => {
      doc.clusters[0]!.cluster.server = `https://kubernetes.default.svc:${serverPort()}`;
    });
    const proxy = connectProxy();
    try {
      const env = await helmEnv({ HELM_BIN: helm.bin, KUBECONFIG: kubeconfig });
      const args = ["upgrade", "--install", "app", FAST, "-n", namespace];
      const direct = await helmLock(args, env);
      assert.equal(direct.code, ExitCode.Unreachable, direct.stderr);
      assert.match(direct.stderr, /getaddrinfo ENOTFOUND kubernetes\.default\.svc/);
      // As the launcher: else deno's own update check goes through the proxy too.
      const viaProxy = { ...env, HTTPS_PROXY: proxy.url, DENO_NO_UPDATE_CHECK: "1" };
      const plain = await run(
        helm.bin,
        ["upgrade", "--install", "plain", FAST, "-n", namespace],
        viaProxy,
      );
      assert.equal(plain.code, 0, `plain helm via the proxy: ${plain.stderr}`);
      const locked = await helmLock(args, viaProxy);
      assert.equal(locked.code, 0, locked.stderr);
      assert.match(locked.stderr, /released lock helm-lock-app/);
      // Verification skipped (helm-lock's node:https path): through the proxy as well.
      const insecure = writeKubeconfig(`proxy-insecure-${helm.name}.json`, (doc) => {
        const c = doc.clusters[0]!.cluster;
        c.server = `https://kubernetes.default.svc:${serverPort()}`;
        delete c["certificate-authority-data"];
        c["insecure-skip-tls-verify"] = true;
      });
      const insecureEnv = { ...viaProxy, KUBECONFIG: insecure };
      const plainInsecure = await run(helm.bin, [
        "upgrade",
        "--install",
        "plain",
        FAST,
        "-n",
        namespace,
      ], insecureEnv);
      assert.equal(
        plainInsecure.code,
        0,
        `plain helm, insecure, via the proxy: ${plainInsecure.stderr}`,
      );
      const lockedInsecure = await helmLock(args, insecureEnv);
      assert.equal(lockedInsecure.code, 0, lockedInsecure.stderr);
      // NO_PROXY naming the server's domain: direct again, and failing like helm.
      const noProxy = await helmLock(args, { ...viaProxy, NO_PROXY: ".svc" });
      assert.equal(noProxy.code, ExitCode.Unreachable, noProxy.stderr);
      assert.ok(
        proxy.targets.every((t) => t === `kubernetes.default.svc:${serverPort()}`),
        JSON.stringify(proxy.targets),
      );
      assert.ok(proxy.targets.length >= 2, `CONNECTs seen: ${proxy.targets.length}`);
    } finally {
      proxy.close();
    }
  });

  Deno.test(`${helm.name}: an exec credential plugin gets KUBERNETES_EXEC_INFO, and its failure exits 7`, async () => {
    const namespace = await createNamespace(`exec-${helm.name}`);
    const user = admin().users[0]!.user;
    const info = join(dir, `exec-info-${helm.name}`);
    const plugin = join(dir, `plugin-${helm.name}.sh`);
    const credential = JSON.stringify({
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      status: {
        clientCertificateData: atob(String(user["client-certificate-data"])),
        clientKeyData: atob(String(user["client-key-data"])),
      },
    });
    await Deno.writeTextFile(
      plugin,
      `#!/bin/sh
[ -n "$KUBERNETES_EXEC_INFO" ] || { echo "KUBERNETES_EXEC_INFO is not set" >&2; exit 3; }
[ "$PLUGIN_MODE" = fail ] && { echo "token expired, run login" >&2; exit 4; }
printf '%s\\n' "$KUBERNETES_EXEC_INFO" >>'${info}'
cat <<'JSON'
${credential}
JSON
`,
    );
    await Deno.chmod(plugin, 0o755);
    const kubeconfig = writeKubeconfig(`exec-${helm.name}.json`, (doc) => {
      doc.users[0]!.user = {
        exec: {
          apiVersion: "client.authentication.k8s.io/v1",
          command: plugin,
          interactiveMode: "Never",
          provideClusterInfo: true,
        },
      };
    });
    const env = await helmEnv({ HELM_BIN: helm.bin, KUBECONFIG: kubeconfig });
    const args = ["upgrade", "--install", "app", FAST, "-n", namespace];
    const plain = await run(
      helm.bin,
      ["upgrade", "--install", "plain", FAST, "-n", namespace],
      env,
    );
    assert.equal(plain.code, 0, `plain helm with the plugin: ${plain.stderr}`);
    await Deno.writeTextFile(info, "");
    const locked = await helmLock(args, env);
    assert.equal(locked.code, 0, locked.stderr);
    const text = await Deno.readTextFile(info);
    const seen = text.trim().split("\n").filter((l) => l.trim()).map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`not JSON: ${JSON.stringify(text)}`);
      }
    });
    const ours = seen[0]; // helm-lock runs the plugin before it runs helm
    assert.equal(ours.kind, "ExecCredential");
    assert.equal(ours.apiVersion, "client.authentication.k8s.io/v1");
    assert.equal(ours.spec.interactive, false);
    assert.equal(ours.spec.cluster.server, admin().clusters[0]!.cluster.server);

    const failing = await helmLock(args, { ...env, PLUGIN_MODE: "fail" });
    assert.equal(failing.code, ExitCode.Forbidden, failing.stderr);
    assert.match(
      failing.stderr,
      /exec credential plugin ".*plugin-helm\d\.sh" failed with exit code 4: token expired, run login/,
    );
    const plainFailing = await run(helm.bin, ["list", "-n", namespace], {
      ...env,
      PLUGIN_MODE: "fail",
    });
    assert.notEqual(plainFailing.code, 0, "helm fails with that plugin too");
  });
}

for (const helm of helms) {
  Deno.test(`${helm.name}: a server URL with user:password@ works like in helm and is never printed`, async () => {
    const namespace = await createNamespace(`url-creds-${helm.name}`);
    const kubeconfig = writeKubeconfig(`url-creds-${helm.name}.json`, (doc) => {
      const server = new URL(String(doc.clusters[0]!.cluster.server));
      server.username = "someone";
      server.password = "url-s3cret";
      doc.clusters[0]!.cluster.server = server.href.replace(/\/$/, "");
    });
    const env = await helmEnv({ HELM_BIN: helm.bin, KUBECONFIG: kubeconfig });
    const plain = await run(
      helm.bin,
      ["upgrade", "--install", "plain", FAST, "-n", namespace],
      env,
    );
    assert.equal(plain.code, 0, `plain helm: ${plain.stderr}`);
    const args = ["upgrade", "--install", "app", FAST, "-n", namespace, "--debug"];
    const locked = await helmLock(args, env);
    assert.equal(locked.code, 0, locked.stderr);
    assert.match(locked.stderr, /API server https:\/\/\*\*\*@127\.0\.0\.1:/);
    assert.doesNotMatch(locked.stderr, /url-s3cret/);
  });
}

/** A ServiceAccount with cluster-admin and a token bound to a Secret (deleting it revokes). */
async function serviceAccountToken(namespace: string, name: string, secret: string) {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.readNamespacedServiceAccount({ name, namespace }).catch(async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    await kc.makeApiClient(k8s.RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: `${namespace}-${name}` },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "cluster-admin",
        },
        subjects: [{ kind: "ServiceAccount", name, namespace }],
      },
    });
  });
  const s = await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: secret }, stringData: { any: "thing" } },
  });
  const tr = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: {
      spec: {
        expirationSeconds: 600,
        audiences: [],
        boundObjectRef: { apiVersion: "v1", kind: "Secret", name: secret, uid: s.metadata!.uid! },
      },
    },
  });
  return tr.status!.token!;
}

/** Waits for `p` to settle, failing after `ms` naming what it waited for. */
async function settledWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`No ${what} within ${ms} ms`)), ms);
  });
  return await Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Lists Leases with `token` every 100 ms until the API server answers 401. */
async function refused(token: string, namespace: string, ms: number): Promise<void> {
  const kubeconfig = writeKubeconfig("token-old.json", (doc) => {
    doc.users[0]!.user = { token };
  });
  const client = kubeClient(connect({ kubeconfig, namespace }, {}));
  const until = Date.now() + ms;
  let last = "";
  for (;;) {
    try {
      await client.request("GET", `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`);
      last = "200";
    } catch (err) {
      if ((err as { code?: unknown }).code === 401) return;
      last = String(err);
    }
    if (Date.now() > until) {
      throw new Error(`The revoked token was not refused (401) within ${ms} ms: last ${last}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("a tokenFile kubeconfig: the token is re-read when it is rotated during a wait", async () => {
  const namespace = await createNamespace("token-file");
  const tokenFile = join(dir, "token");
  const oldToken = await serviceAccountToken(namespace, "deployer", "bound-1");
  await Deno.writeTextFile(tokenFile, oldToken);
  const kubeconfig = writeKubeconfig("token-file.json", (doc) => {
    doc.users[0]!.user = { tokenFile };
  });
  const conn = connect({ kubeconfig, namespace }, {});
  const holder = await takeLock({
    client: kubeClient(connect({ kubeconfig: adminKubeconfig(), namespace }, {})),
    namespace,
    release: "app",
    identity: "holder",
    annotations: {},
    timeoutMs: 5_000,
    leaseDurationSeconds: 3,
  });
  let onQueued = () => {};
  const queued = new Promise<void>((resolve) => onQueued = resolve);
  const waiting = takeLock({
    client: kubeClient(conn),
    namespace,
    release: "app",
    identity: "waiter",
    annotations: {},
    timeoutMs: 30_000,
    leaseDurationSeconds: 3,
    onQueued: () => onQueued(),
  });
  await settledWithin(queued, 20_000, "onQueued of the waiter (its ticket written)");
  // Rotate: a new token in the file, the old one revoked.
  await Deno.writeTextFile(tokenFile, await serviceAccountToken(namespace, "deployer", "bound-2"));
  await adminKubeConfig().makeApiClient(k8s.CoreV1Api).deleteNamespacedSecret({
    name: "bound-1",
    namespace,
  });
  // The API server keeps accepting a token it has seen for 10 s after it first did: until it
  // refuses the old one, a waiter still sending it would pass too.
  await refused(oldToken, namespace, 30_000);
  await holder.release();
  const held = await waiting;
  await held.release();
  assert.equal(held.lost.aborted, false);
});

Deno.test("the in-cluster ServiceAccount (directory injected) with a real token", async () => {
  const namespace = await createNamespace("in-cluster");
  const sa = join(dir, "serviceaccount");
  await Deno.mkdir(sa, { recursive: true });
  await Deno.writeTextFile(join(sa, "token"), await serviceAccountToken(namespace, "pod", "pod-1"));
  await Deno.writeTextFile(join(sa, "namespace"), namespace);
  await Deno.writeTextFile(
    join(sa, "ca.crt"),
    atob(String(admin().clusters[0]!.cluster["certificate-authority-data"])),
  );
  const env = {
    HOME: join(dir, "empty-home"),
    KUBERNETES_SERVICE_HOST: "127.0.0.1",
    KUBERNETES_SERVICE_PORT: serverPort(),
  };
  const conn = connect({}, env, sa);
  assert.equal(conn.namespace, namespace);
  assert.equal(conn.user, `system:serviceaccount:${namespace}:pod`);
  const held = await takeLock({
    client: kubeClient(conn),
    namespace: conn.namespace,
    release: "app",
    identity: "pod",
    annotations: {},
    timeoutMs: 5_000,
  });
  await held.release();
});

Deno.test("several --kube-as-group values reach the API server as several groups", async () => {
  const namespace = await createNamespace("as-groups");
  const rbac = adminKubeConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: "leases" },
      rules: [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["*"] }],
    },
  });
  // Only the second group may use Leases: both must arrive, as two groups.
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: "leases" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "leases" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "deployers" }],
    },
  });
  const lock = (groups: string) =>
    takeLock({
      client: kubeClient(connect({ kubeconfig: adminKubeconfig(), namespace }, {
        HELM_KUBEASUSER: "someone",
        HELM_KUBEASGROUPS: groups,
      })),
      namespace,
      release: "app",
      identity: `as-${groups}`,
      annotations: {},
      timeoutMs: 5_000,
    });
  const held = await lock("readers,deployers");
  await held.release();
  await assert.rejects(lock("readers"), { code: ExitCode.Forbidden });
});
