import assert from "node:assert/strict";
import { join } from "node:path";
import { ApiException } from "@kubernetes/client-node";
import { Authenticator } from "../../lib/kube/auth.ts";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { apiError } from "../../lib/kube/api_error.ts";
import { connect, type KubeConnection } from "../../lib/kube/connection.ts";

const dir = Deno.makeTempDirSync({ prefix: "helm-lock-kube-test-" });
const NO_SA = join(dir, "no-service-account");

function kubeconfig(
  file: string,
  opts: {
    current?: string;
    contexts: { name: string; cluster: string; user: string; namespace?: string }[];
  },
): string {
  const path = join(dir, file);
  const clusters = [...new Set(opts.contexts.map((c) => c.cluster))].map((name) => ({
    name,
    cluster: { server: `https://${name}.example:6443`, "certificate-authority": "ca.crt" },
  }));
  const users = [...new Set(opts.contexts.map((c) => c.user))].map((name) => ({
    name,
    user: { token: `token-of-${name}` },
  }));
  Deno.writeTextFileSync(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters,
      users,
      contexts: opts.contexts.map(({ name, ...context }) => ({ name, context })),
      ...(opts.current ? { "current-context": opts.current } : {}),
    }),
  );
  return path;
}

const main = kubeconfig("main.yaml", {
  current: "dev",
  contexts: [
    { name: "dev", cluster: "dev", user: "alice", namespace: "team-a" },
    { name: "prod", cluster: "prod", user: "ci" },
  ],
});
const second = kubeconfig("second.yaml", {
  current: "stage",
  contexts: [
    { name: "stage", cluster: "stage", user: "bob" },
    { name: "dev", cluster: "shadow", user: "mallory" },
  ],
});

/** The authentication headers a connection sends (one entry per header line). */
async function headerLines(conn: KubeConnection): Promise<[string, string][]> {
  return await new Authenticator(conn)
    .headers("https://x.example/api");
}

async function headers(conn: KubeConnection): Promise<Record<string, string>> {
  return Object.fromEntries(await headerLines(conn));
}

Deno.test("connect() reads --kubeconfig and its current context", () => {
  const conn = connect({ kubeconfig: main }, {}, NO_SA);
  assert.equal(conn.server, "https://dev.example:6443");
  assert.equal(conn.namespace, "team-a");
  assert.equal(conn.user, "alice");
  // Relative paths in a kubeconfig are relative to the file, as in kubectl.
  assert.equal(conn.cluster.caFile, join(dir, "ca.crt"));
});

Deno.test("connect() reads a kubeconfig in YAML as kubectl writes it (CRLF and BOM too)", () => {
  const yaml = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
    server: https://127.0.0.1:6443
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    namespace: ci
    user: eks
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - --region
      - eu-west-1
      command: aws
      env:
      - name: AWS_PROFILE
        value: ci
      interactiveMode: IfAvailable
`;
  const texts: Array<[string, string]> = [
    ["lf", yaml],
    ["crlf", yaml.replaceAll("\n", "\r\n")],
    ["bom", `\uFEFF${yaml}`],
  ];
  for (const [name, text] of texts) {
    const path = join(dir, `kubectl-${name}.yaml`);
    Deno.writeTextFileSync(path, text);
    const conn = connect({ kubeconfig: path }, {}, NO_SA);
    assert.equal(conn.server, "https://127.0.0.1:6443", name);
    assert.equal(conn.namespace, "ci", name);
    assert.equal(conn.cluster.caData, "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t", name);
    assert.deepEqual(conn.auth.exec, {
      apiVersion: "client.authentication.k8s.io/v1beta1",
      command: "aws",
      args: ["--region", "eu-west-1"],
      env: [{ name: "AWS_PROFILE", value: "ci" }],
      interactiveMode: "IfAvailable",
      provideClusterInfo: false,
    }, name);
  }
});

Deno.test("connect() reads YAML that kubectl does not write: flow maps, quotes, anchors", () => {
  const path = join(dir, "flow.yaml");
  Deno.writeTextFileSync(
    path,
    `clusters:
  - {name: c, cluster: {server: "https://10.0.0.1", certificate-authority-data: 'LS0t'}}
contexts: [{name: c, context: {cluster: c, user: "it's me", namespace: &ns ci}}]
current-context: c
users:
  - name: "it's me"
    user:
      token: "abc\\tdef"
      as: *ns
      as-groups: [system:masters, "ops: team"]
`,
  );
  const conn = connect({ kubeconfig: path }, {}, NO_SA);
  assert.equal(conn.server, "https://10.0.0.1");
  assert.equal(conn.namespace, "ci");
  assert.equal(conn.auth.token, "abc\tdef");
  assert.equal(conn.user, "ci");
  assert.deepEqual(conn.impersonateGroups, ["system:masters", "ops: team"]);
});

Deno.test("connect() refuses a kubeconfig that is not YAML, naming the file and why", () => {
  for (
    const [name, text, why] of [
      ["duplicate", "a: 1\na: 2\n", "duplicated mapping key (2:1)"],
      ["empty", "", "expected a document, but the input is empty"],
      ["json", '{"clusters": [', "unexpected end of the stream within a flow collection (1:15)"],
    ]
  ) {
    const path = join(dir, `bad-${name}.yaml`);
    Deno.writeTextFileSync(path, text!);
    assert.throws(() => connect({ kubeconfig: path }, {}, NO_SA), {
      code: ExitCode.Unreachable,
      message: `Cannot load kubeconfig "${path}": ${why}`,
    });
  }
});

Deno.test("connect() merges the KUBECONFIG list, the first file winning", () => {
  const env = { KUBECONFIG: [join(dir, "missing.yaml"), second, main].join(":") };
  const conn = connect({}, env, NO_SA);
  assert.equal(conn.server, "https://stage.example:6443", "current-context from the first file");
  const dev = connect({ kubeContext: "dev" }, env, NO_SA);
  assert.equal(dev.server, "https://shadow.example:6443", "context dev from the first file");
  assert.equal(dev.user, "mallory");
  const prod = connect({ kubeContext: "prod" }, env, NO_SA);
  assert.equal(prod.server, "https://prod.example:6443", "contexts only in later files count");
});

Deno.test("connect() prefers --kubeconfig over KUBECONFIG and finds ~/.kube/config", () => {
  assert.equal(
    connect({ kubeconfig: main }, { KUBECONFIG: second }, NO_SA).server,
    "https://dev.example:6443",
  );
  const home = join(dir, "home");
  Deno.mkdirSync(join(home, ".kube"), { recursive: true });
  Deno.copyFileSync(second, join(home, ".kube", "config"));
  assert.equal(connect({}, { HOME: home }, NO_SA).server, "https://stage.example:6443");
});

Deno.test("connect() takes the context from --kube-context, else HELM_KUBECONTEXT", () => {
  assert.equal(
    connect({ kubeconfig: main }, { HELM_KUBECONTEXT: "prod" }, NO_SA).server,
    "https://prod.example:6443",
  );
  assert.equal(
    connect({ kubeconfig: main, kubeContext: "dev" }, { HELM_KUBECONTEXT: "prod" }, NO_SA)
      .server,
    "https://dev.example:6443",
  );
});

Deno.test("connect() rejects an unknown context naming the known ones", () => {
  assert.throws(() => connect({ kubeconfig: main, kubeContext: "qa" }, {}, NO_SA), {
    name: "HelmLockError",
    code: ExitCode.Unreachable,
    message:
      `Cannot find kube context "qa" in kubeconfig "${main}" (contexts: dev, prod); check --kube-context, HELM_KUBECONTEXT or KUBECONFIG`,
  });
});

Deno.test("connect() takes the namespace from the flag, HELM_NAMESPACE, the context, or default", () => {
  const env = { HELM_NAMESPACE: "from-env" };
  assert.equal(
    connect({ kubeconfig: main, namespace: "flag" }, env, NO_SA).namespace,
    "flag",
  );
  assert.equal(connect({ kubeconfig: main }, env, NO_SA).namespace, "from-env");
  assert.equal(connect({ kubeconfig: main }, {}, NO_SA).namespace, "team-a");
  assert.equal(
    connect({ kubeconfig: main, kubeContext: "prod" }, {}, NO_SA).namespace,
    "default",
  );
});

Deno.test("connect() applies the HELM_KUBE* overrides", async () => {
  const caFile = join(dir, "override-ca.pem");
  await Deno.writeTextFile(caFile, "");
  const conn = connect({ kubeconfig: main }, {
    HELM_KUBEAPISERVER: "https://override.example:443",
    HELM_KUBETOKEN: "s3cret",
    HELM_KUBECAFILE: caFile,
    HELM_KUBETLS_SERVER_NAME: "api.internal",
    HELM_KUBEASUSER: "deployer",
    HELM_KUBEASGROUPS: "release-managers",
  }, NO_SA);
  const cluster = conn.cluster;
  assert.equal(conn.server, "https://override.example:443");
  assert.equal(cluster?.caFile, caFile);
  assert.equal(cluster?.tlsServerName, "api.internal");
  assert.equal(conn.user, "deployer");
  const h = await headers(conn);
  assert.equal(h["Authorization"], "Bearer s3cret");
  assert.equal(h["Impersonate-User"], "deployer");
  assert.equal(h["Impersonate-Group"], "release-managers");
});

Deno.test("connect() lets flags win over HELM_KUBE* variables", () => {
  const conn = connect(
    { kubeconfig: main, kubeApiserver: "https://flag.example", kubeInsecureSkipTlsVerify: true },
    { HELM_KUBEAPISERVER: "https://env.example", HELM_KUBEINSECURE_SKIP_TLS_VERIFY: "false" },
    NO_SA,
  );
  const cluster = conn.cluster;
  assert.equal(conn.server, "https://flag.example");
  assert.equal(cluster?.skipTLSVerify, true);
  assert.equal(cluster?.caFile, undefined, "no CA alongside skipped verification, as client-go");
});

Deno.test("connect() keeps the kubeconfig's insecure-skip-tls-verify under helm's false", () => {
  // As a plugin, helm always exports HELM_KUBEINSECURE_SKIP_TLS_VERIFY, "false" by default;
  // client-go never lets a false override replace the kubeconfig's true.
  const path = join(dir, "insecure.yaml");
  Deno.writeTextFileSync(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "c",
        cluster: { server: "https://c.example:6443", "insecure-skip-tls-verify": true },
      }],
      users: [{ name: "u", user: { token: "t" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    }),
  );
  for (const flags of [{}, { kubeInsecureSkipTlsVerify: false }]) {
    const conn = connect(
      { kubeconfig: path, ...flags },
      { HELM_KUBEINSECURE_SKIP_TLS_VERIFY: "false" },
      NO_SA,
    );
    assert.equal(conn.cluster.skipTLSVerify, true);
  }
  const verified = connect(
    { kubeconfig: main },
    { HELM_KUBEINSECURE_SKIP_TLS_VERIFY: "false" },
    NO_SA,
  );
  assert.equal(verified.cluster.skipTLSVerify, false);
  assert.equal(
    verified.cluster.caFile,
    join(dir, "ca.crt"),
    "the CA stays",
  );
});

Deno.test("connect() reads an unparsable HELM_KUBEINSECURE_SKIP_TLS_VERIFY as unset, like helm", () => {
  for (const value of ["yes", "", "on"]) {
    const conn = connect(
      { kubeconfig: main },
      { HELM_KUBEINSECURE_SKIP_TLS_VERIFY: value },
      NO_SA,
    );
    assert.equal(conn.cluster.skipTLSVerify, false, value);
  }
  const on = connect(
    { kubeconfig: main },
    { HELM_KUBEINSECURE_SKIP_TLS_VERIFY: "True" },
    NO_SA,
  );
  assert.equal(on.cluster.skipTLSVerify, true);
});

Deno.test("connect() hides the credentials of a server URL", () => {
  const conn = connect(
    { kubeconfig: main, kubeApiserver: "https://admin:hunter2@flag.example" },
    {},
    NO_SA,
  );
  assert.equal(conn.server, "https://***@flag.example");
  assert.equal(
    conn.cluster.server,
    "https://admin:hunter2@flag.example",
    "the connection itself is unchanged",
  );
});

Deno.test("connect() sends the credentials of a server URL as basic auth, as Go does", async () => {
  const conn = connect(
    { kubeconfig: main, kubeApiserver: "https://admin:hunter%402@flag.example" },
    {},
    NO_SA,
  );
  // The kubeconfig user's token wins, as the URL's userinfo only fills a missing header.
  assert.equal((await headers(conn))["Authorization"], "Bearer token-of-alice");
  const path = join(dir, "url-creds.yaml");
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      clusters: [{ name: "c", cluster: { server: "https://admin:hunter%402@c.example:6443" } }],
      users: [{ name: "u", user: {} }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    }),
  );
  const basic = connect({ kubeconfig: path }, {}, NO_SA);
  assert.equal((await headers(basic))["Authorization"], `Basic ${btoa("admin:hunter@2")}`);
  assert.equal(basic.server, "https://***@c.example:6443");
});

Deno.test("connect() impersonates several groups, one header each, as helm reads them", async () => {
  const groupsOf = async (conn: KubeConnection) =>
    (await headerLines(conn)).filter(([k]) => k === "Impersonate-Group").map(([, v]) => v);
  const flags = connect({ kubeconfig: main, kubeAsGroups: ["a", "b,c"] }, {}, NO_SA);
  assert.deepEqual(await groupsOf(flags), ["a", "b,c"], "a flag value keeps its comma");
  // helm's envCSV: trimmed of commas and spaces at the ends, split on commas, no other trim.
  const env = connect({ kubeconfig: main }, { HELM_KUBEASGROUPS: " a, b," }, NO_SA);
  assert.deepEqual(await groupsOf(env), ["a", " b"]);
  const both = connect({ kubeconfig: main, kubeAsGroups: ["x"] }, {
    HELM_KUBEASGROUPS: "a,b",
  }, NO_SA);
  assert.deepEqual(await groupsOf(both), ["x"], "the flag replaces the variable");
});

Deno.test("connect() sends an auth provider's token, as client-node gives it", async () => {
  const part = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "");
  const idToken = `${part({ alg: "none" })}.${part({ exp: 4102444800 })}.sig`;
  const path = join(dir, "oidc.yaml");
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      clusters: [{ name: "c", cluster: { server: "https://c.example" } }],
      users: [{
        name: "u",
        user: { "auth-provider": { name: "oidc", config: { "id-token": idToken } } },
      }],
      contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
      "current-context": "c",
    }),
  );
  const conn = connect({ kubeconfig: path }, {}, NO_SA);
  assert.equal((await headers(conn))["Authorization"], `Bearer ${idToken}`);
});

Deno.test("connect() uses the in-cluster ServiceAccount when there is no kubeconfig", () => {
  const sa = join(dir, "sa");
  Deno.mkdirSync(sa, { recursive: true });
  const payload = btoa(JSON.stringify({ sub: "system:serviceaccount:ci:deployer" }));
  Deno.writeTextFileSync(join(sa, "token"), `eyJhbGciOiJSUzI1NiJ9.${payload}.sig`);
  Deno.writeTextFileSync(join(sa, "namespace"), "ci\n");
  Deno.writeTextFileSync(join(sa, "ca.crt"), "");
  const env = {
    HOME: join(dir, "empty-home"),
    KUBERNETES_SERVICE_HOST: "10.0.0.1",
    KUBERNETES_SERVICE_PORT: "443",
  };
  const conn = connect({}, env, sa);
  assert.equal(conn.server, "https://10.0.0.1:443");
  assert.equal(conn.namespace, "ci");
  assert.equal(conn.user, "system:serviceaccount:ci:deployer");
  assert.equal(connect({ namespace: "other" }, env, sa).namespace, "other");
});

Deno.test("connect() explains that no cluster is configured", () => {
  assert.throws(() => connect({}, { HOME: join(dir, "empty-home") }, NO_SA), {
    name: "HelmLockError",
    code: ExitCode.Unreachable,
    message: /^Cannot find a Kubernetes cluster: .*set --kubeconfig, KUBECONFIG or --kube-context$/,
  });
  assert.throws(() => connect({ kubeconfig: join(dir, "nope") }, {}, NO_SA), {
    code: ExitCode.Unreachable,
    message: `Cannot read kubeconfig "${join(dir, "nope")}" given by --kubeconfig: no such file`,
  });
  assert.throws(
    () => connect({ kubeconfig: main, kubeCaFile: "/nope/ca.pem" }, {}, NO_SA),
    {
      code: ExitCode.Unreachable,
      message: /^Cannot read the CA file "\/nope\/ca.pem" given by --kube-ca-file/,
    },
  );
});

const what = {
  verb: "create",
  resource: "leases",
  namespace: "prod",
  user: "ci",
  server: "https://k8s.example:6443",
};

Deno.test("apiError() names verb, resource, namespace and the server's user on 403", () => {
  const body = JSON.stringify({
    kind: "Status",
    code: 403,
    message:
      'leases.coordination.k8s.io is forbidden: User "system:serviceaccount:ci:deployer" cannot create resource "leases"',
  });
  const err = apiError(new ApiException(403, "Forbidden", body, {}), what);
  assert.equal(err.code, ExitCode.Forbidden);
  assert.equal(
    err.message,
    'Cannot create leases in namespace "prod" as user "system:serviceaccount:ci:deployer": forbidden',
  );
});

Deno.test("apiError() falls back to the configured user when the server names none", () => {
  const err = apiError(new ApiException(403, "Forbidden", "{}", {}), what);
  assert.equal(err.message, 'Cannot create leases in namespace "prod" as user "ci": forbidden');
});

Deno.test("apiError() maps a refused connection to Unreachable naming the server", () => {
  const refused = new TypeError("fetch failed", {
    cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), {
      code: "ECONNREFUSED",
    }),
  });
  const err = apiError(refused, what);
  assert.equal(err.code, ExitCode.Unreachable);
  assert.equal(
    err.message,
    "Cannot reach the Kubernetes API server https://k8s.example:6443: connect ECONNREFUSED 127.0.0.1:6443",
  );
});

Deno.test("apiError() hides the credentials of the server URL", () => {
  const server = "https://admin:hunter2@k8s.example:6443";
  const errors = [
    apiError(new TypeError("fetch failed"), { ...what, server }),
    apiError(new ApiException(401, "Unauthorized", "{}", {}), { ...what, server }),
    apiError(new ApiException(500, "Internal", "{}", {}), { ...what, server }),
  ];
  for (const err of errors) {
    assert.doesNotMatch(err.message, /hunter2/);
    assert.match(err.message, /https:\/\/\*\*\*@k8s\.example:6443/);
  }
});

Deno.test("apiError() keeps other API errors apart, with the server's message", () => {
  const body = JSON.stringify({ message: "etcdserver: request timed out" });
  const err = apiError(new ApiException(500, "Internal", body, {}), what);
  assert.equal(err.code, ExitCode.Internal);
  assert.match(err.message, /answered 500 \(etcdserver: request timed out\)$/);
  const own = new HelmLockError(ExitCode.LockLost, "x");
  assert.equal(apiError(own, what), own);
});
