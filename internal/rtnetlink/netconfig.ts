import { NetworkError } from "./errors.ts";
import { familyOf, macToBytes, parsePrefix } from "./ip.ts";

/**
 * What the guest (vminitd) needs to configure its NICs: the document the host sends, as JSON.
 *
 * The guest matches interfaces by MAC (virtio NIC order is not a promise), renames each to
 * `name`, sets the MTU, adds the addresses, brings it up, then adds the routes in order (routes
 * without a gateway first, so every gateway is reachable when its route is added), and writes
 * `renderResolvConf(dns)` where the container expects /etc/resolv.conf.
 */
export interface GuestInterface {
  /** The name the interface had in the pod's namespace ("eth0"); the guest uses the same. */
  readonly name: string;
  /** Identical to the pod interface's MAC, so the peers' ARP/ND caches stay right. */
  readonly mac: string;
  readonly mtu: number;
  /** CIDRs: "10.123.0.7/16", "fd00::7/64". */
  readonly addresses: readonly string[];
}

export interface GuestRoute {
  /** CIDR; "0.0.0.0/0" / "::/0" is the default route. */
  readonly dst: string;
  readonly gateway?: string;
  /** GuestInterface.name */
  readonly interface: string;
  /** "link" for on-link routes without a gateway. */
  readonly scope?: "link";
  readonly metric?: number;
  readonly mtu?: number;
}

export interface GuestDns {
  readonly nameservers: readonly string[];
  readonly search: readonly string[];
  readonly options: readonly string[];
}

export interface GuestNetworkConfig {
  readonly version: 1;
  readonly interfaces: readonly GuestInterface[];
  readonly routes: readonly GuestRoute[];
  readonly dns: GuestDns;
}

/** Routes without a gateway first: a gateway must be on-link before a route can use it. */
export function orderRoutes(routes: readonly GuestRoute[]): GuestRoute[] {
  return [...routes].sort((a, b) => Number(a.gateway !== undefined) - Number(b.gateway !== undefined));
}

export function renderResolvConf(dns: GuestDns): string {
  const lines = ["# written by beetroot from the pod network's DNS settings"];
  for (const ns of dns.nameservers) lines.push(`nameserver ${ns}`);
  if (dns.search.length > 0) lines.push(`search ${dns.search.join(" ")}`);
  if (dns.options.length > 0) lines.push(`options ${dns.options.join(" ")}`);
  return `${lines.join("\n")}\n`;
}

const MAX_INTERFACES = 8;
const MAX_ITEMS = 64;
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function fail(why: string): never {
  throw new NetworkError("InvalidArgument", `guest network config: ${why}`);
}

function list(v: unknown, where: string, max = MAX_ITEMS): unknown[] {
  if (!Array.isArray(v)) fail(`${where} is not a list`);
  if (v.length > max) fail(`${where} has ${v.length} entries, at most ${max}`);
  return v;
}

function str(v: unknown, where: string, re?: RegExp): string {
  if (typeof v !== "string" || v.length === 0 || v.length > 255) fail(`${where} is not a string`);
  if (re && !re.test(v)) fail(`${where} ${JSON.stringify(v)} is malformed`);
  return v;
}

function guard<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof NetworkError) throw err;
    return fail(`${where}: ${(err as Error).message}`);
  }
}

/** Strict validation of a config document (both sides use it: the host before sending, the guest on receipt). */
export function parseGuestNetworkConfig(value: unknown): GuestNetworkConfig {
  if (!isObj(value)) fail("not an object");
  if (value.version !== 1) fail(`version ${JSON.stringify(value.version)} is not 1`);
  const names = new Set<string>();
  const interfaces = list(value.interfaces, "interfaces", MAX_INTERFACES).map((i, n): GuestInterface => {
    if (!isObj(i)) fail(`interfaces[${n}] is not an object`);
    const name = str(i.name, `interfaces[${n}].name`, /^[A-Za-z0-9_.-]{1,15}$/);
    if (names.has(name)) fail(`interface name ${name} appears twice`);
    names.add(name);
    const mac = str(i.mac, `interfaces[${n}].mac`);
    guard(`interfaces[${n}].mac`, () => macToBytes(mac));
    const mtu = i.mtu;
    if (typeof mtu !== "number" || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
      fail(`interfaces[${n}].mtu ${JSON.stringify(mtu)} is not between 68 and 65535`);
    const addresses = list(i.addresses, `interfaces[${n}].addresses`).map((a, k) => {
      const s = str(a, `interfaces[${n}].addresses[${k}]`);
      guard(s, () => parsePrefix(s));
      return s;
    });
    return { name, mac: mac.toLowerCase(), mtu, addresses };
  });
  const routes = list(value.routes, "routes").map((r, n): GuestRoute => {
    if (!isObj(r)) fail(`routes[${n}] is not an object`);
    const dst = str(r.dst, `routes[${n}].dst`);
    const family = guard(dst, () => parsePrefix(dst).family);
    const iface = str(r.interface, `routes[${n}].interface`);
    if (!names.has(iface)) fail(`routes[${n}] uses interface ${iface}, which is not configured`);
    let gateway: string | undefined;
    if (r.gateway !== undefined) {
      gateway = str(r.gateway, `routes[${n}].gateway`);
      const gw = gateway;
      if (guard(gw, () => familyOf(gw)) !== family) fail(`routes[${n}] mixes IPv4 and IPv6`);
    }
    if (r.scope !== undefined && r.scope !== "link") fail(`routes[${n}].scope must be "link" or absent`);
    const num = (v: unknown, what: string) => {
      if (v === undefined) return undefined;
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
        fail(`routes[${n}].${what} is not a u32`);
      return v;
    };
    const metric = num(r.metric, "metric");
    const mtu = num(r.mtu, "mtu");
    return {
      dst,
      ...(gateway !== undefined && { gateway }),
      interface: iface,
      ...(r.scope === "link" && { scope: "link" as const }),
      ...(metric !== undefined && { metric }),
      ...(mtu !== undefined && { mtu }),
    };
  });
  if (!isObj(value.dns)) fail("dns is not an object");
  const d = value.dns;
  const nameservers = list(d.nameservers, "dns.nameservers", 8).map((s, k) => {
    const v = str(s, `dns.nameservers[${k}]`);
    guard(v, () => familyOf(v));
    return v;
  });
  const search = list(d.search, "dns.search", 32).map((s, k) =>
    str(s, `dns.search[${k}]`, /^[A-Za-z0-9_.-]+$/),
  );
  const options = list(d.options, "dns.options", 32).map((s, k) =>
    str(s, `dns.options[${k}]`, /^[A-Za-z0-9_.:-]+$/),
  );
  return { version: 1, interfaces, routes: orderRoutes(routes), dns: { nameservers, search, options } };
}
