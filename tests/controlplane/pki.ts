/**
 * Certificates for the test control plane, made with the `openssl` CLI (argv, no shell):
 * a CA, the API server's serving certificate, the service-account signing key and client
 * certificates (the admin, and less-privileged users for RBAC tests).
 *
 * @module
 */
import { join } from "node:path";

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`Cannot run openssl ${args[0]}: ${err}`);
  }
}

/** A key pair with its certificate, as PEM file paths. */
export interface CertFiles {
  cert: string;
  key: string;
}

const KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** Creates a self-signed CA in `dir` (`ca.crt`, `ca.key`). */
export async function createCa(dir: string): Promise<CertFiles> {
  await openssl([
    "req",
    "-x509",
    ...KEY_ARGS,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "7",
    "-subj",
    "/CN=helm-lock-test-ca",
  ], dir);
  return { cert: join(dir, "ca.crt"), key: join(dir, "ca.key") };
}

/**
 * Issues a certificate signed by `ca`. `subject` is an openssl subject such as
 * `/CN=admin/O=system:masters`; `extensions` are x509v3 lines (SANs, key usage).
 */
export async function issueCert(
  dir: string,
  name: string,
  ca: CertFiles,
  subject: string,
  extensions: string[],
): Promise<CertFiles> {
  const ext = join(dir, `${name}.ext`);
  await Deno.writeTextFile(ext, extensions.join("\n") + "\n");
  await openssl(
    ["req", "-new", ...KEY_ARGS, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject],
    dir,
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-days",
    "7",
    "-extfile",
    ext,
    "-out",
    `${name}.crt`,
  ], dir);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** A client certificate for user `user` in `groups`, signed by `ca`. */
export function issueClientCert(
  dir: string,
  ca: CertFiles,
  user: string,
  groups: string[] = [],
): Promise<CertFiles> {
  const subject = `/CN=${user}` + groups.map((g) => `/O=${g}`).join("");
  return issueCert(dir, `user-${user}`, ca, subject, [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=clientAuth",
  ]);
}

/** An EC key pair for signing (`key`) and verifying (`pub`) service-account tokens. */
export async function createSigningKey(dir: string): Promise<{ key: string; pub: string }> {
  await openssl(
    ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key"],
    dir,
  );
  // kube-apiserver reads public keys only as such: a PKCS#8 private key file is refused.
  await openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  return { key: join(dir, "sa.key"), pub: join(dir, "sa.pub") };
}

/** A kubeconfig (YAML is a superset of JSON) for one cluster and one client certificate. */
export async function kubeconfigFor(
  server: string,
  caCert: string,
  client: CertFiles,
  user: string,
): Promise<string> {
  const b64 = async (path: string) => btoa(await Deno.readTextFile(path));
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "helm-lock-test",
        cluster: { server, "certificate-authority-data": await b64(caCert) },
      }],
      users: [{
        name: user,
        user: {
          "client-certificate-data": await b64(client.cert),
          "client-key-data": await b64(client.key),
        },
      }],
      contexts: [{ name: "helm-lock-test", context: { cluster: "helm-lock-test", user } }],
      "current-context": "helm-lock-test",
    },
    null,
    2,
  );
}
