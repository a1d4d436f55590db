/**
 * Which proxy a request to the API server goes through, decided as client-go decides it:
 * the kubeconfig cluster's `proxy-url` if set, else Go's `http.ProxyFromEnvironment`
 * (golang.org/x/net/http/httpproxy): `HTTPS_PROXY`/`https_proxy` for https servers,
 * `HTTP_PROXY`/`http_proxy` for http ones, never for `localhost` or a loopback address, and
 * not for hosts `NO_PROXY`/`no_proxy` names (`*`, IPs, CIDRs, domains and their
 * subdomains, optionally with a port).
 *
 * @module
 */

/** An IP address as 16 bytes (IPv4 mapped into IPv6), or `undefined` if `text` is none. */
export function parseIp(text: string): Uint8Array | undefined {
  const v4 = (s: string): number[] | undefined => {
    const parts = s.split(".");
    if (parts.length !== 4) return undefined;
    const bytes = parts.map((p) => /^\d{1,3}$/.test(p) ? Number(p) : NaN);
    return bytes.every((b) => b >= 0 && b <= 255) ? bytes : undefined;
  };
  const four = v4(text);
  if (four) return Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...four]);
  if (!text.includes(":")) return undefined;
  let s = text;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const embedded = v4(s.slice(lastColon + 1));
    if (!embedded) return undefined;
    tail = embedded;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const words = (h: string) => h === "" ? [] : h.split(":");
  const head = words(halves[0]!);
  const rest = halves.length === 2 ? words(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if ((halves.length === 2 && fill < 1) || (halves.length === 1 && fill !== 0)) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...rest];
  if (!all.every((w) => /^[0-9a-f]{1,4}$/i.test(w))) return undefined;
  const bytes = all.flatMap((w) => {
    const n = parseInt(w, 16);
    return [n >> 8, n & 0xff];
  });
  if (tail.length) bytes.splice(12, 4, ...tail);
  return Uint8Array.from(bytes);
}

function isV4(ip: Uint8Array): boolean {
  return ip.slice(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff;
}

function isLoopback(ip: Uint8Array): boolean {
  if (isV4(ip)) return ip[12] === 127;
  return ip.slice(0, 15).every((b) => b === 0) && ip[15] === 1;
}

function inCidr(ip: Uint8Array, cidr: string): boolean | undefined {
  const [base = "", bitsText = ""] = cidr.split("/");
  const net = parseIp(base);
  if (!net || !/^\d+$/.test(bitsText)) return undefined;
  let bits = Number(bitsText);
  if (isV4(net) && !base.includes(":")) {
    if (bits > 32) return undefined;
    if (!isV4(ip)) return false;
    bits += 96;
  } else if (bits > 128) return undefined;
  for (let i = 0; i < 16; i++) {
    const mask = bits >= 8 * (i + 1)
      ? 0xff
      : bits <= 8 * i
      ? 0
      : (0xff << (8 - (bits - 8 * i))) & 0xff;
    if (((ip[i] ?? 0) & mask) !== ((net[i] ?? 0) & mask)) return false;
  }
  return true;
}

function equalIp(a: Uint8Array, b: Uint8Array): boolean {
  return a.every((x, i) => x === b[i]);
}

/** `host:port` → [host, port]; IPv6 in brackets. `undefined` without a port (Go's SplitHostPort). */
function splitHostPort(text: string): [string, string] | undefined {
  const m = text.match(/^\[([^\]]*)\]:(\d*)$/) ?? text.match(/^([^:]*):(\d*)$/);
  return m ? [m[1]!, m[2]!] : undefined;
}

/** Whether a request to `host`:`port` goes through the proxy, by `noProxy` (httpproxy's useProxy). */
export function useProxy(host: string, port: string, noProxy: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost") return false;
  const ip = parseIp(h);
  if (ip && isLoopback(ip)) return false;
  for (const raw of noProxy.split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return false;
    if (entry.includes("/")) {
      if (ip && inCidr(ip, entry)) return false;
      continue;
    }
    let phost = entry;
    let pport = "";
    const split = splitHostPort(entry);
    if (split) {
      if (split[0] === "") continue;
      [phost, pport] = split;
    }
    const pip = parseIp(phost);
    if (pip) {
      if (ip && equalIp(ip, pip) && (pport === "" || pport === port)) return false;
      continue;
    }
    if (phost.startsWith("*.")) phost = phost.slice(1);
    const matchHost = !phost.startsWith(".");
    if (matchHost) phost = `.${phost}`;
    if (h.endsWith(phost) || (matchHost && h === phost.slice(1))) {
      if (pport === "" || pport === port) return false;
    }
  }
  return true;
}

function firstSet(env: Record<string, string | undefined>, ...names: string[]): string {
  for (const name of names) {
    const value = env[name];
    if (value) return value;
  }
  return "";
}

/**
 * The proxy URL for requests to `server`, or `undefined` to connect directly.
 *
 * @param server The API server URL (without credentials).
 * @param proxyUrl The kubeconfig cluster's `proxy-url`.
 * @param env The environment to read the proxy variables from.
 */
export function proxyFor(
  server: URL,
  proxyUrl: string | undefined,
  env: Record<string, string | undefined>,
): URL | undefined {
  if (proxyUrl) return new URL(proxyUrl);
  const https = server.protocol === "https:";
  const proxy = https
    ? firstSet(env, "HTTPS_PROXY", "https_proxy")
    : firstSet(env, "HTTP_PROXY", "http_proxy");
  if (!proxy) return undefined;
  const port = server.port || (https ? "443" : "80");
  if (!useProxy(server.hostname, port, firstSet(env, "NO_PROXY", "no_proxy"))) return undefined;
  // Go: a value without a known scheme is read as http://value.
  try {
    const url = new URL(proxy);
    if (["http:", "https:", "socks5:", "socks5h:"].includes(url.protocol)) return url;
  } catch {
    // fall through
  }
  return new URL(`http://${proxy}`);
}
