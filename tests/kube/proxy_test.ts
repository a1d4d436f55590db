/**
 * proxyFromEnvironment() against Go's own httpproxy tests (golang.org/x/net v0.63.0,
 * http/httpproxy/proxy_test.go, translated), client-go's CIDR wrapper, and the lock's
 * client and the fence deciding alike.
 */
import assert from "node:assert/strict";
import { HelmLockError } from "../../lib/errors.ts";
import { fenceHelm } from "../../lib/helm/fence.ts";
import { connect } from "../../lib/kube/connection.ts";
import { proxyFromEnvironment } from "../../lib/kube/proxy.ts";
import { kubeClient } from "../../lib/kube/rest.ts";

type Env = Record<string, string>;

/** The proxy as Go prints it (no trailing slash), or `<nil>`. */
function proxy(req: string, env: Env): string {
  return proxyFromEnvironment(new URL(req), env)?.href.replace(/\/$/, "") ?? "<nil>";
}

Deno.test("proxyFromEnvironment() passes Go's proxyForURLTests", () => {
  // [HTTP_PROXY, HTTPS_PROXY, NO_PROXY, request (blank: http://example.com), want]
  const cases: [string, string, string, string, string][] = [
    ["127.0.0.1:8080", "", "", "", "http://127.0.0.1:8080"],
    ["cache.corp.example.com:1234", "", "", "", "http://cache.corp.example.com:1234"],
    ["cache.corp.example.com", "", "", "", "http://cache.corp.example.com"],
    ["localhost", "", "", "", "http://localhost"], // a single label parses as a scheme
    ["https://cache.corp.example.com", "", "", "", "https://cache.corp.example.com"],
    ["http://127.0.0.1:8080", "", "", "", "http://127.0.0.1:8080"],
    ["https://127.0.0.1:8080", "", "", "", "https://127.0.0.1:8080"],
    ["socks5://127.0.0.1", "", "", "", "socks5://127.0.0.1"],
    ["foo://host", "", "", "", "foo://host"], // unknown schemes are kept
    ["http.proxy.tld", "secure.proxy.tld", "", "http://insecure.tld/", "http://http.proxy.tld"],
    ["http.proxy.tld", "secure.proxy.tld", "", "https://secure.tld/", "http://secure.proxy.tld"],
    [
      "http.proxy.tld",
      "https://secure.proxy.tld",
      "",
      "https://secure.tld/",
      "https://secure.proxy.tld",
    ],
    ["http.proxy.tld", "", "", "https://secure.tld/", "<nil>"],
    ["http.proxy.tld", "", "", "ftp://insecure.tld/", "<nil>"],
    ["", "", "", "", "<nil>"],
    ["proxy", "", "example.com", "http://example.com/", "<nil>"],
    ["proxy", "", ".example.com", "http://example.com/", "http://proxy"],
    ["proxy", "", "ample.com", "http://example.com/", "http://proxy"],
    ["proxy", "", "example.com", "http://foo.example.com/", "<nil>"],
    ["proxy", "", ".foo.com", "http://example.com/", "http://proxy"],
    ["proxy", "", ".示例.com", "http://www.示例.com", "<nil>"],
    ["proxy", "", "xn--fsq092h.com", "http://www.示例.com", "<nil>"],
    ["proxy", "", "示例.com", "http://www.xn--fsq092h.com", "<nil>"],
    // Go's "http://[1000::%25.example.com]:123" is left out: WHATWG URLs have no IPv6 zones.
  ];
  for (const [http, https, noProxy, req, want] of cases) {
    const env = { HTTP_PROXY: http, HTTPS_PROXY: https, NO_PROXY: noProxy };
    assert.equal(proxy(req || "http://example.com", env), want, JSON.stringify([env, req]));
  }
});

Deno.test("proxyFromEnvironment() refuses HTTP_PROXY in a CGI environment, as Go (issue 16405)", () => {
  const env = { HTTP_PROXY: "http://10.1.2.3:8080", REQUEST_METHOD: "GET" };
  assert.throws(() => proxy("http://example.com", env), (err) => {
    assert.ok(err instanceof HelmLockError);
    assert.equal(err.code, 6);
    assert.match(err.message, /^Cannot use HTTP_PROXY for http:\/\/example\.com as .* CGI/);
    return true;
  });
  // Before NO_PROXY and loopback are looked at; HTTPS_PROXY is still used.
  assert.throws(() => proxy("http://127.0.0.1", { ...env, NO_PROXY: "*" }), HelmLockError);
  const https = { HTTPS_PROXY: "https://secure.proxy.tld", REQUEST_METHOD: "PUT" };
  assert.equal(proxy("https://secure.tld/", https), "https://secure.proxy.tld");
  assert.equal(proxy("http://example.com", { REQUEST_METHOD: "GET" }), "<nil>");
});

Deno.test("proxyFromEnvironment() reads the variables as net/http does: upper case first", () => {
  // x/net's FromEnvironment now prefers lower case; net/http (Go 1.26 included) still
  // vendors the copy that prefers upper case, and client-go's NO_PROXY read does too.
  const req = "https://api.example.com";
  assert.equal(proxy(req, { HTTPS_PROXY: "upper", https_proxy: "lower" }), "http://upper");
  assert.equal(proxy(req, { HTTPS_PROXY: "", https_proxy: "lower" }), "http://lower");
  assert.equal(proxy("http://x", { HTTP_PROXY: "", http_proxy: "lower" }), "http://lower");
  const both = { HTTPS_PROXY: "p", NO_PROXY: "other.com", no_proxy: "example.com" };
  assert.equal(proxy(req, both), "http://p");
  assert.equal(proxy(req, { HTTPS_PROXY: "p", no_proxy: "example.com" }), "<nil>");
});

Deno.test("proxyFromEnvironment() passes Go's UseProxyTests, TestInvalidNoProxy and TestAllNoProxy", () => {
  const noProxy = "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, " +
    "192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, " +
    "[2001:db8::52:0:3]:80, 2002:db8:a::45/64";
  const cases: [string, boolean][] = [
    ["localhost", false],
    ["127.0.0.1", false],
    ["127.0.0.2", false],
    ["[::1]", false],
    ["[::2]", true], // not a loopback address
    ["192.168.1.1", false], // matches exact IPv4
    ["192.168.1.2", true], // ports do not match
    ["192.168.1.3", false], // matches exact IPv4:port
    ["192.168.1.4", true], // no match
    ["10.0.0.2", false], // matches IPv4/CIDR
    ["[2001:db8::52:0:1]", false], // matches exact IPv6
    ["[2001:db8::52:0:2]", true], // no match
    ["[2001:db8::52:0:3]", false], // matches exact [IPv6]:port
    ["[2002:db8:a::123]", false], // matches IPv6/CIDR
    ["[fe80::424b:c8be:1643:a1b6]", true], // no match
    ["barbaz.net", true], // does not match as .barbaz.net
    ["www.barbaz.net", false], // does match as .barbaz.net
    ["foobar.com", false], // does match as foobar.com
    ["www.foobar.com", false], // match because NO_PROXY includes "foobar.com"
    ["foofoobar.com", true], // not match as a part of foobar.com
    ["baz.com", true], // not match as a part of barbaz.com
    ["localhost.net", true], // not match as suffix of address
    ["local.localhost", true], // not match as prefix as address
    ["barbarbaz.net", true], // not match, wrong domain
    ["wildcard.io", true], // does not match as *.wildcard.io
    ["nested.wildcard.io", false], // match as *.wildcard.io
    ["awildcard.io", true], // not a match because of '*'
  ];
  for (const [host, useProxy] of cases) {
    const req = `http://${host}:80`;
    const want = useProxy ? "http://proxy" : "<nil>";
    assert.equal(proxy(req, { HTTP_PROXY: "proxy", NO_PROXY: noProxy }), want, host);
    assert.equal(proxy(req, { HTTP_PROXY: "proxy", NO_PROXY: "*" }), "<nil>", `* ${host}`);
  }
  assert.equal(
    proxy("http://example.com", { HTTP_PROXY: "proxy", NO_PROXY: ":1" }),
    "http://proxy",
  );
});

Deno.test("proxyFromEnvironment() matches IPs and CIDRs as net.IP and net.IPNet do", () => {
  const via = (req: string, noProxy: string) => proxy(req, { HTTPS_PROXY: "p", NO_PROXY: noProxy });
  // The cases where helm-lock's client and its fence used to disagree.
  assert.equal(via("https://[fd00::1]:6443", "fd00::/8"), "<nil>");
  assert.equal(via("https://[2001:db8::5]:6443", "[2001:db8::5]:6443"), "<nil>");
  assert.equal(via("https://[2001:db8::5]:6443", "[2001:db8::5]:443"), "http://p");
  assert.equal(via("https://api.localhost", ""), "http://p", "only the host localhost is local");
  assert.equal(via("https://[::ffff:127.0.0.1]", ""), "<nil>", "an IPv4-mapped loopback");
  // Brackets without a port are no IP entry; a bare IPv6 address is.
  assert.equal(via("https://[2001:db8::5]", "[2001:db8::5]"), "http://p");
  assert.equal(via("https://[2001:db8::5]", "2001:DB8:0::5"), "<nil>");
  // IPv4 addresses are only in IPv4 networks; an IPv4-mapped IPv6 network is one.
  assert.equal(via("https://10.1.2.3", "::/0"), "http://p");
  assert.equal(via("https://10.1.2.3", "::ffff:10.0.0.0/104"), "<nil>");
  assert.equal(via("https://10.1.2.3", "::ffff:0:0/95"), "http://p");
  assert.equal(via("https://[::ffff:10.1.2.3]", "10.0.0.0/8"), "<nil>");
  assert.equal(via("https://10.1.2.3", "10.1.2.3:"), "<nil>", "an empty port matches any");
  assert.equal(via("https://10.1.2.3", "10.0.0.0/33"), "http://p");
  assert.equal(via("https://1.2.3.4", "1.2.3.04"), "http://p", "no leading zeros in Go's IPs");
  // CIDRs and IPs never match names (nothing is resolved), names never match IPs.
  assert.equal(via("https://kubernetes.default.svc", "10.0.0.0/8"), "http://p");
  assert.equal(via("https://10.1.2.3", "10.1.2.3.nip.io"), "http://p");
});

Deno.test("proxyFromEnvironment() adds client-go's NO_PROXY CIDRs for https: leading zeros allowed", () => {
  // k8s.io/apimachinery NewProxierWithNoProxyCIDR wraps http.ProxyFromEnvironment in the
  // transports client-go makes for TLS: ParseCIDRSloppy on each entry as written.
  const env = (noProxy: string) => ({ HTTPS_PROXY: "p", HTTP_PROXY: "p", NO_PROXY: noProxy });
  assert.equal(proxy("https://10.1.2.3", env("010.0.0.0/8")), "<nil>");
  assert.equal(proxy("https://10.1.2.3", env(" 010.0.0.0/8")), "http://p", "not trimmed");
  assert.equal(proxy("https://10.1.2.3", env(" 10.0.0.0/8")), "<nil>", "Go's own, trimmed");
  assert.equal(proxy("https://[fd00::1]", env("fd00::00001/8")), "<nil>");
  // An http:// server gets http.DefaultTransport, without the wrapper.
  assert.equal(proxy("http://10.1.2.3", env("010.0.0.0/8")), "http://p");
});

/** Whether helm-lock's own client connects to the proxy in `env` for `server`. */
async function lockUsesProxy(server: string, env: Env): Promise<boolean> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // The proxy answers nothing until it has been counted: the request cannot end first.
  const accepted = listener.accept().then((conn) => {
    conn.close();
    return true;
  }, () => false);
  const url = `http://127.0.0.1:${listener.addr.port}`;
  const withProxy = Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, v.replace("PROXY", url)]),
  );
  const client = kubeClient(
    connect({ kubeApiserver: server, kubeToken: "t" }, withProxy, "/nonexistent"),
  );
  // The decision is made before the first byte: a proxy would be dialled at once, and a
  // direct connection to these servers fails or times out. The limit is far above a dial's
  // time on a loaded machine (3 s was not: the request ended before the proxy's accept).
  const direct = client.request("GET", "/version", { timeoutMs: 15_000 }).then(
    () => false,
    () => false,
  );
  const used = await Promise.race([accepted, direct]);
  await direct; // the proxy hung up: the request ends at once
  client.close();
  listener.close();
  await accepted;
  return used;
}

/** Whether the fence's pass-through dials the API server through a proxy. */
async function fenceUsesProxy(server: string, env: Env): Promise<boolean> {
  const debug: string[] = [];
  const conn = connect({ kubeApiserver: server, kubeToken: "t" }, env, "/nonexistent");
  const held = { validUntil: () => Infinity, lost: new AbortController().signal };
  await using _fence = fenceHelm({ fence: true }, conn, held, {
    info: (line) => assert.fail(line),
    debug: (line) => debug.push(line),
  });
  return / through proxy /.test(debug[0] ?? "");
}

Deno.test({
  name: "the lock's client and the fence go through the proxy for the same servers",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Servers nothing answers (documentation and unique-local addresses, .invalid names).
    const https = (noProxy: string) => ({ HTTPS_PROXY: "PROXY", NO_PROXY: noProxy });
    const cases: [string, Env, boolean][] = [
      ["https://[fd00::1]:6443", https("fd00::/8"), false],
      ["https://[fd00::1]:6443", https("fd01::/16"), true],
      ["https://[2001:db8::5]:6443", https("[2001:db8::5]:6443"), false],
      ["https://[2001:db8::5]:6443", https("[2001:db8::5]:443"), true],
      ["https://api.localhost:6443", https(""), true],
      ["https://[::ffff:127.0.0.1]:1", https(""), false],
      ["https://localhost:1", https(""), false],
      ["https://127.0.0.2:1", https(""), false],
      ["https://192.0.2.10:6443", https(""), true],
      ["https://192.0.2.10:6443", https("192.0.2.0/24"), false],
      ["https://192.0.2.10:6443", https("192.000.002.0/24"), false],
      ["https://192.0.2.10:6443", https("::ffff:192.0.2.0/120"), false],
      ["https://192.0.2.10:6443", https("::/0"), true],
      ["https://192.0.2.10:6443", https("192.0.2.10:6443"), false],
      ["https://192.0.2.10:6443", https("192.0.2.10:443"), true],
      ["https://api.cluster.invalid:6443", https("cluster.invalid"), false],
      ["https://api.cluster.invalid:6443", https(".invalid"), false],
      ["https://api.cluster.invalid:6443", https("*.cluster.invalid:6443"), false],
      ["https://api.cluster.invalid:6443", https("cluster.invalid:443"), true],
      ["https://api.cluster.invalid:6443", https("api.cluster"), true],
      ["https://cluster.invalid:6443", https(".cluster.invalid"), true],
      ["https://api.cluster.invalid:6443", https("*"), false],
      ["https://api.cluster.invalid:6443", { https_proxy: "PROXY" }, true],
      ["https://api.cluster.invalid:6443", { HTTP_PROXY: "PROXY" }, false],
      ["http://api.cluster.invalid:8080", { HTTP_PROXY: "PROXY" }, true],
      ["http://api.cluster.invalid:8080", { HTTP_PROXY: "PROXY", no_proxy: "invalid" }, false],
      ["http://192.0.2.10:8080", { HTTP_PROXY: "PROXY", NO_PROXY: "192.000.002.0/24" }, true],
    ];
    const results = await Promise.all(cases.map(([server, env]) => lockUsesProxy(server, env)));
    for (const [i, [server, env, want]] of cases.entries()) {
      const what = `${server} ${JSON.stringify(env)}`;
      assert.equal(await fenceUsesProxy(server, env), want, `fence: ${what}`);
      assert.equal(results[i], want, `lock: ${what}`);
    }
  },
});
