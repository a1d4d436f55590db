/**
 * What end-to-end tests need from the test environment that `tests/run.ts` sets up: the
 * admin kubeconfig, the real helm binaries, fresh namespaces and less-privileged users.
 *
 * @module
 */
import * as k8s from "@kubernetes/client-node";
import { join } from "node:path";
import { issueClientCert } from "../controlplane/pki.ts";
import { connect } from "../../lib/kube/connection.ts";
import { type KubeClient, kubeClient } from "../../lib/kube/rest.ts";

function requireEnv(name: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    throw new Error(`${name} is not set: run end-to-end tests through "deno task test"`);
  }
  return value;
}

/** Path of the admin kubeconfig of the test cluster. */
export function adminKubeconfig(): string {
  return requireEnv("HELM_LOCK_TEST_KUBECONFIG");
}

/** The admin client configuration of the test cluster. */
export function adminKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(adminKubeconfig());
  return kc;
}

/** A client of helm-lock's own HTTP layer for `kubeconfig` (default: the admin's). */
export function kubeClientFor(kubeconfig: string = adminKubeconfig()): KubeClient {
  return kubeClient(connect({ kubeconfig }, {}));
}

/** A real helm binary every end-to-end case runs with. */
export interface TestHelm {
  name: "helm3" | "helm4";
  bin: string;
}

/** Helm 3 and Helm 4, in that order. */
export const helms: readonly TestHelm[] = [
  { name: "helm3", bin: Deno.env.get("HELM_LOCK_TEST_HELM3") ?? "" },
  { name: "helm4", bin: Deno.env.get("HELM_LOCK_TEST_HELM4") ?? "" },
];

function suffix(): string {
  return crypto.randomUUID().slice(0, 8);
}

/** Creates a namespace named `<prefix>-<random>` and returns its name. */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 40)}-${suffix()}`;
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

/**
 * Creates a user bound (RoleBinding) to a Role with `rules` in `namespace` and returns the
 * path of a kubeconfig for it. On the suite's own control plane the user has a client
 * certificate; on an existing cluster it is a ServiceAccount with a short-lived token.
 */
export async function mintUser(
  opts: { name: string; namespace: string; rules: k8s.V1PolicyRule[] },
): Promise<string> {
  const admin = adminKubeConfig();
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error("The admin kubeconfig has no current cluster");
  const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
  const { name, namespace } = opts;
  const dir = await Deno.makeTempDir({ prefix: `helm-lock-user-${name}-` });

  const caCert = Deno.env.get("HELM_LOCK_TEST_CA_CERT");
  const caKey = Deno.env.get("HELM_LOCK_TEST_CA_KEY");
  let subject: k8s.RbacV1Subject;
  let user: Record<string, string>;
  if (caCert && caKey) {
    const cert = await issueClientCert(dir, { cert: caCert, key: caKey }, name);
    subject = { kind: "User", name, apiGroup: "rbac.authorization.k8s.io" };
    user = {
      "client-certificate-data": btoa(await Deno.readTextFile(cert.cert)),
      "client-key-data": btoa(await Deno.readTextFile(cert.key)),
    };
  } else {
    const core = admin.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    const tr = await core.createNamespacedServiceAccountToken({
      name,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    subject = { kind: "ServiceAccount", name, namespace };
    user = { token: tr.status?.token ?? "" };
  }

  await rbac.createNamespacedRole({
    namespace,
    body: { metadata: { name }, rules: opts.rules },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [subject],
    },
  });

  const clusterEntry: Record<string, unknown> = { server: cluster.server };
  if (cluster.caData) clusterEntry["certificate-authority-data"] = cluster.caData;
  if (cluster.caFile) clusterEntry["certificate-authority"] = cluster.caFile;
  if (cluster.skipTLSVerify) clusterEntry["insecure-skip-tls-verify"] = true;
  return await writeKubeconfig(dir, clusterEntry, { name, user });
}

/**
 * Writes `<dir>/kubeconfig` of one cluster and one user, their context current, and returns
 * its path: the kubeconfig the tests give a user of their own making.
 */
export async function writeKubeconfig(
  dir: string,
  cluster: Record<string, unknown>,
  user: { name: string; user: Record<string, unknown> },
): Promise<string> {
  const path = join(dir, "kubeconfig");
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster }],
      users: [user],
      contexts: [{ name: "test", context: { cluster: "test", user: user.name } }],
      "current-context": "test",
    }),
  );
  return path;
}

/**
 * Environment for running helm in isolation: its own config, cache and data homes, and
 * the kubeconfig `extra` names (the admin one by default, only then asked for).
 */
export async function helmEnv(
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const home = await Deno.makeTempDir({ prefix: "helm-lock-helmhome-" });
  return {
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_DATA_HOME: join(home, "data"),
    KUBECONFIG: extra.KUBECONFIG ?? adminKubeconfig(),
    ...extra,
  };
}
