/**
 * The cluster flags read exactly as helm's pflag reads them, inline-empty forms included
 * (`-n=`, `--namespace=`, `--kube-context=`): a table checked against real helm 3 and 4.
 * `helm template` prints the namespace helm resolved (`.Release.Namespace`), and the
 * contexts of the kubeconfig carry distinct namespaces, so the namespace also shows which
 * context helm chose. A value helm reads that no namespace can have (`-n=` is "=") is
 * refused with exit 2, naming that value.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseArgs } from "../../lib/cli/args.ts";
import { ExitCode, HelmLockError } from "../../lib/errors.ts";
import { connect } from "../../lib/kube/connection.ts";
import { helms } from "../support/cluster.ts";
import { run } from "../support/helm.ts";

const dir = Deno.makeTempDirSync({ prefix: "helm-lock-flags-" });
const chart = join(dir, "chart");
Deno.mkdirSync(join(chart, "templates"), { recursive: true });
Deno.writeTextFileSync(join(chart, "Chart.yaml"), "apiVersion: v2\nname: ns\nversion: 0.1.0\n");
Deno.writeTextFileSync(
  join(chart, "templates", "ns.yaml"),
  "# namespace=[{{ .Release.Namespace }}]\n",
);
const kubeconfig = join(dir, "kubeconfig");
Deno.writeTextFileSync(
  kubeconfig,
  JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster: { server: "https://c.example:6443" } }],
    users: [{ name: "u", user: { token: "t" } }],
    contexts: [
      { name: "a", context: { cluster: "c", user: "u", namespace: "ns-of-a" } },
      { name: "b", context: { cluster: "c", user: "u", namespace: "ns-of-b" } },
    ],
    "current-context": "a",
  }),
);

const ENV = { HELM_NAMESPACE: "from-env", HELM_KUBECONTEXT: "b" };
const CASES: string[][] = [
  [],
  ["-n", "x"],
  ["-nx"],
  ["-n=x"],
  ["-n="],
  ["-n=="],
  ["--namespace=x"],
  ["--namespace="],
  ["--namespace", ""],
  ["--kube-context=a"],
  ["--kube-context="],
  ["--kube-context", ""],
  ["--kube-context=", "--namespace="],
  ["-n", "x", "-n="],
];

for (const helm of helms) {
  Deno.test(`${helm.name}: cluster flags and their inline-empty forms pick helm's namespace and context`, async () => {
    const home = join(dir, `home-${helm.name}`);
    const env = {
      ...ENV,
      KUBECONFIG: kubeconfig,
      HOME: home,
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_DATA_HOME: join(home, "data"),
    };
    for (const flags of CASES) {
      const out = await run(helm.bin, ["template", "rel", chart, ...flags], env);
      assert.equal(out.code, 0, `${flags.join(" ")}: ${out.stderr}`);
      const helmNamespace = out.stdout.match(/namespace=\[(.*)\]/)?.[1];
      const parsed = parseArgs(["upgrade", "rel", chart, ...flags]);
      assert.equal(parsed.kind, "run");
      if (parsed.kind !== "run") continue;
      const resolve = () => connect(parsed.invocation.cluster, env, join(dir, "no-sa")).namespace;
      if (helmNamespace !== undefined && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(helmNamespace)) {
        assert.equal(resolve(), helmNamespace, `flags: ${JSON.stringify(flags)}`);
      } else {
        // helm reads "=" from `-n=`; no namespace can have that name: refused before any
        // request, naming the value helm would have used.
        assert.throws(
          resolve,
          (e: unknown) =>
            e instanceof HelmLockError && e.code === ExitCode.Usage &&
            e.message.includes(`namespace ${JSON.stringify(helmNamespace)}`),
          `flags: ${JSON.stringify(flags)}`,
        );
      }
    }
  });
}
