/** planFence() and environmentProxy(): when helm can be fenced, and how it is pointed. */
import assert from "node:assert/strict";
import { planFence } from "../../lib/fence/plan.ts";
import { environmentProxy } from "../../lib/fence/proxy.ts";

const TARGET = { server: "https://api.example.com:6443", inCluster: false, apiserverOnArgv: false };

Deno.test("planFence() points helm at the pass-through through HELM_KUBEAPISERVER and the real TLS name", () => {
  const plan = planFence(TARGET, {});
  assert.ok(!("off" in plan));
  assert.deepEqual(plan.upstream, { hostname: "api.example.com", port: 6443, proxy: undefined });
  assert.deepEqual(plan.helmEnv(4321), {
    HELM_KUBEAPISERVER: "https://127.0.0.1:4321",
    HELM_KUBETLS_SERVER_NAME: "api.example.com",
  });
});

Deno.test("planFence() keeps the server's path and the kubeconfig's tls-server-name", () => {
  const plan = planFence({
    ...TARGET,
    server: "https://rancher.example.com/k8s/clusters/c-1",
    tlsServerName: "kube.internal",
  }, {});
  assert.ok(!("off" in plan));
  assert.equal(plan.upstream.port, 443);
  assert.deepEqual(plan.helmEnv(99), {
    HELM_KUBEAPISERVER: "https://127.0.0.1:99/k8s/clusters/c-1",
    HELM_KUBETLS_SERVER_NAME: "kube.internal",
  });
});

Deno.test("planFence() says why when helm cannot be fenced", () => {
  const off = (t: Partial<typeof TARGET> & { proxyUrl?: string }, env = {}) => {
    const plan = planFence({ ...TARGET, ...t }, env);
    return "off" in plan ? plan.off : "fenced";
  };
  assert.match(off({ apiserverOnArgv: true }), /--kube-apiserver/);
  assert.match(off({ inCluster: true }), /in-cluster/);
  assert.match(off({ proxyUrl: "http://proxy:3128" }), /proxy-url/);
  assert.match(off({}, { HTTPS_PROXY: "socks5://proxy:1080" }), /socks5/);
});

Deno.test("environmentProxy() follows Go: loopback never, NO_PROXY names, CIDRs and ports skip it", () => {
  const env = { HTTPS_PROXY: "proxy:3128", NO_PROXY: ".corp.example,10.0.0.0/8,api.other:6443" };
  const proxyFor = (url: string) => environmentProxy(new URL(url), env)?.href;
  assert.equal(proxyFor("https://api.example.com"), "http://proxy:3128/");
  assert.equal(proxyFor("https://127.0.0.1:6443"), undefined);
  assert.equal(proxyFor("https://localhost:6443"), undefined);
  assert.equal(proxyFor("https://kube.corp.example"), undefined);
  assert.equal(proxyFor("https://10.1.2.3:6443"), undefined);
  assert.equal(proxyFor("https://api.other:6443"), undefined);
  assert.equal(proxyFor("https://api.other:443"), "http://proxy:3128/");
  assert.equal(
    environmentProxy(new URL("https://x.example"), { https_proxy: "http://p:1" })?.host,
    "p:1",
  );
  assert.equal(environmentProxy(new URL("https://x.example"), {}), undefined);
});
