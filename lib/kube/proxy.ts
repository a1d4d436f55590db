/**
 * The proxy from the environment as helm picks it: Go's `http.ProxyFromEnvironment` behind
 * client-go's `NewProxierWithNoProxyCIDR`. Hosts come from WHATWG URLs, lower case with IPv4
 * shorthands resolved, where Go keeps the text (and proxies `LOCALHOST`, case-sensitive).
 * @module
 */

import { ExitCode, HelmLockError } from "../errors.ts";

type Env = Record<string, string | undefined>;

/** An IP as 16 bytes (IPv4 mapped), as Go's netip reads it, or k8s' `ParseIPSloppy` (`sloppy`). */
function parseIp(text: string, sloppy = false): Uint8Array | undefined {
  const octet = sloppy ? /^\d+$/ : /^(0|[1-9]\d*)$/;
  const v4 = (s: string): number[] | undefined => {
    const bytes = s.split(".").map((p) => octet.test(p) ? Number(p) : NaN);
    return bytes.length === 4 && bytes.every((b) => b <= 255) ? bytes : undefined;
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
  // The :: stands for at least one group of zeros.
  if ((halves.length === 2 && fill < 1) || (halves.length === 1 && fill !== 0)) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...rest];
  const field = sloppy ? /^[0-9a-f]+$/i : /^[0-9a-f]{1,4}$/i;
  if (!all.every((w) => field.test(w) && parseInt(w, 16) <= 0xffff)) return undefined;
  const bytes = all.flatMap((w) => [parseInt(w, 16) >> 8, parseInt(w, 16) & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return Uint8Array.from(bytes);
}

const isV4 = (ip: Uint8Array) => ip.slice(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff));

function maskByte(bits: number, i: number): number {
  return bits >= 8 * (i + 1) ? 0xff : bits <= 8 * i ? 0 : (0xff << (8 * (i + 1) - bits)) & 0xff;
}

/**
 * Whether a `NO_PROXY` CIDR (`net.ParseCIDR`, or `ParseCIDRSloppy`) holds `ip` as `IPNet.Contains`
 * decides (IPv4 only in IPv4 networks, IPv4-mapped too); `undefined` when the entry is no CIDR.
 */
function inCidr(ip: Uint8Array | undefined, entry: string, sloppy = false): boolean | undefined {
  const [, base = "", bitsText = ""] = entry.match(/^([^/]*)\/(\d+)$/) ?? [];
  const net = parseIp(base, sloppy);
  const bits = Number(bitsText) + (base.includes(":") ? 0 : 96);
  if (!net || bits > 128) return undefined;
  const masked = net.map((b, i) => b & maskByte(bits, i));
  if (!ip || isV4(ip) !== isV4(masked)) return false;
  return ip.every((b, i) => (b & maskByte(bits, i)) === masked[i]);
}

/** Go's `net.SplitHostPort`: `host:port` or `[host]:port`, the port not checked. */
function splitHostPort(text: string): [string, string] | undefined {
  const m = text.match(/^(?:\[([^[\]]*)\]|([^[\]:]*)):([^[\]:]*)$/);
  return m ? [m[1] ?? m[2]!, m[3]!] : undefined;
}

/** A name as Go's `idna.Lookup.ToASCII` gives it (punycode); unchanged where Go fails. */
function idnaAscii(name: string): string {
  const ascii = name.replace(/[\u0080-\uffff]/g, "");
  if (ascii === name || /[^a-z0-9.-]/.test(ascii)) return name;
  try {
    const converted = new URL(`http://${name}/`).hostname;
    return /^[a-z0-9.-]*$/.test(converted) ? converted : name;
  } catch {
    return name;
  }
}

/** httpproxy's `useProxy`: whether `host` (an IP if `ip`) and `port` go through the proxy. */
function useProxy(host: string, ip: Uint8Array | undefined, port: string, noProxy: string) {
  if (host === "localhost") return false;
  if (ip && (isV4(ip) ? ip[12] === 127 : ip.every((b, i) => b === (i === 15 ? 1 : 0)))) {
    return false;
  }
  for (const raw of noProxy.split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return false;
    const cidr = inCidr(ip, entry);
    if (cidr !== undefined) {
      if (cidr) return false;
      continue;
    }
    let [phost, pport] = splitHostPort(entry) ?? [entry, ""];
    if (phost === "") continue;
    const pip = parseIp(phost);
    if (pip) {
      if (ip?.every((b, i) => b === pip[i]) && (pport === "" || pport === port)) return false;
      continue;
    }
    if (phost.startsWith("*.")) phost = phost.slice(1);
    const matchHost = !phost.startsWith(".");
    phost = idnaAscii(matchHost ? `.${phost}` : phost);
    if (!ip && (host.endsWith(phost) || (matchHost && host === phost.slice(1)))) {
      if (pport === "" || pport === port) return false;
    }
  }
  return true;
}

/** httpproxy's `parseProxy`: a value without a scheme and host is read as `http://value`. */
function parseProxy(value: string): URL | undefined {
  if (!value) return undefined;
  const url = URL.parse(value);
  return url?.host ? url : URL.parse(`http://${value}`) ?? url ?? undefined;
}

const firstSet = (env: Env, ...names: string[]) => names.map((n) => env[n]).find((v) => v) ?? "";

/**
 * The proxy for requests to `target` from `HTTPS_PROXY`/`HTTP_PROXY` unless `NO_PROXY` or a
 * loopback host rules it out; `undefined` to connect directly. Any scheme is kept, as Go keeps it.
 *
 * @throws {HelmLockError} `Unreachable` for an http:// server with `HTTP_PROXY` set in a CGI
 *   environment (`REQUEST_METHOD` set), where Go fails every request (issue 16405).
 */
export function proxyFromEnvironment(target: URL, env: Env): URL | undefined {
  const https = target.protocol === "https:";
  if (!https && target.protocol !== "http:") return undefined;
  const proxy = https
    ? parseProxy(firstSet(env, "HTTPS_PROXY", "https_proxy"))
    : parseProxy(firstSet(env, "HTTP_PROXY", "http_proxy"));
  const noProxy = firstSet(env, "NO_PROXY", "no_proxy");
  const host = target.hostname.replace(/^\[(.*)\]$/, "$1");
  const ip = parseIp(host);
  // client-go wraps Go's decision for transports with a TLS configuration (https): entries
  // as written (untrimmed), leading zeros allowed.
  if (!proxy || (https && noProxy.split(",").some((entry) => inCidr(ip, entry, true)))) {
    return undefined;
  }
  if (!https && env.REQUEST_METHOD) {
    throw new HelmLockError(
      ExitCode.Unreachable,
      `Cannot use HTTP_PROXY for ${target.origin} as Go's net/http refuses it in a CGI ` +
        `environment: expected REQUEST_METHOD unset, found "${env.REQUEST_METHOD}"`,
    );
  }
  return useProxy(host, ip, target.port || (https ? "443" : "80"), noProxy) ? proxy : undefined;
}
