/** Proxy selection as Go's httpproxy (client-go's http.ProxyFromEnvironment) decides it. */
import assert from "node:assert/strict";
import { parseIp, proxyFor, useProxy } from "../../lib/kube/proxy.ts";

Deno.test("useProxy() never proxies localhost or loopback addresses", () => {
  for (const host of ["localhost", "127.0.0.1", "127.8.9.1", "::1", "[::1]", "::ffff:127.0.0.1"]) {
    assert.equal(useProxy(host, "443", ""), false, host);
  }
  assert.equal(useProxy("10.0.0.1", "443", ""), true);
  assert.equal(useProxy("api.example.com", "443", ""), true);
});

Deno.test("useProxy() reads NO_PROXY entries like Go: *, IPs, CIDRs, domains, ports", () => {
  const cases: [string, string, string, boolean][] = [
    ["api.example.com", "443", "*", false],
    ["api.example.com", "443", "example.com", false], // a domain matches its subdomains
    ["example.com", "443", "example.com", false], // and itself
    ["example.com", "443", ".example.com", true], // a leading dot: subdomains only
    ["api.example.com", "443", ".example.com", false],
    ["api.example.com", "443", "*.example.com", false],
    ["notexample.com", "443", "example.com", true],
    ["api.example.com", "443", "example.com:6443", true], // the port must match
    ["api.example.com", "6443", "example.com:6443", false],
    ["10.1.2.3", "443", "10.0.0.0/8", false],
    ["11.1.2.3", "443", "10.0.0.0/8", true],
    ["10.1.2.3", "443", "10.1.2.3", false],
    ["10.1.2.3", "443", "10.1.2.3:80", true],
    ["fd00::5", "443", "fd00::/8", false],
    ["API.Example.COM", "443", " other.org , EXAMPLE.com ", false], // trimmed, any case
    ["api.example.com", "443", ",,", true],
    // CIDRs and IPs match IP literals only: a name is not resolved for them.
    ["kubernetes.default.svc", "443", "10.0.0.0/8", true],
  ];
  for (const [host, port, noProxy, expected] of cases) {
    assert.equal(useProxy(host, port, noProxy), expected, `${host}:${port} NO_PROXY=${noProxy}`);
  }
});

Deno.test("proxyFor() picks the variable by scheme, the kubeconfig's proxy-url first", () => {
  const https = new URL("https://api.example.com:6443");
  const http = new URL("http://api.example.com:8080");
  const env = { HTTPS_PROXY: "http://secure:3128", http_proxy: "plain:3128" };
  assert.equal(proxyFor(https, undefined, env)?.href, "http://secure:3128/");
  assert.equal(proxyFor(http, undefined, env)?.href, "http://plain:3128/", "no scheme: http://");
  assert.equal(proxyFor(https, "socks5://s:1080", env)?.href, "socks5://s:1080");
  assert.equal(proxyFor(https, undefined, { ...env, NO_PROXY: "example.com" }), undefined);
  assert.equal(proxyFor(https, undefined, { https_proxy: "http://lower:1" })?.host, "lower:1");
  assert.equal(proxyFor(new URL("https://127.0.0.1:6443"), undefined, env), undefined);
  assert.equal(proxyFor(https, undefined, {}), undefined);
});

Deno.test("parseIp() reads IPv4, IPv6 and rejects names", () => {
  assert.deepEqual([...parseIp("1.2.3.4")!.slice(10)], [0xff, 0xff, 1, 2, 3, 4]);
  assert.deepEqual([...parseIp("::1")!], [...Array(15).fill(0), 1]);
  assert.deepEqual([...parseIp("::ffff:1.2.3.4")!.slice(10)], [0xff, 0xff, 1, 2, 3, 4]);
  for (const bad of ["example.com", "1.2.3", "1.2.3.256", "1::2::3", "12345::"]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});
