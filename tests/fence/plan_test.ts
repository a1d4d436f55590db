/** planFence(): when helm can be fenced, and how it is pointed (its proxy: shared/proxy_test.ts). */
import assert from "node:assert/strict";
import { planFence } from "../../lib/fence/plan.ts";

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
  assert.match(off({}, { HTTPS_PROXY: "socks5h://proxy:1080" }), /socks5h/);
});

Deno.test("planFence() tunnels through a proxy of an unknown scheme with CONNECT, as Go does", () => {
  const plan = planFence(TARGET, { HTTPS_PROXY: "foo://proxy:3128" });
  assert.ok(!("off" in plan));
  assert.equal(plan.upstream.proxy?.href, "foo://proxy:3128");
});
