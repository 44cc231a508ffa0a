/**
 * The guest's network as its kernel reports it: what System.NetworkStatus answers and what
 * System.ConfigureNetwork reads back after applying a config, so the host sees the result the
 * kernel holds rather than an echo of its own request. Pure over three rtnetlink dumps.
 */
import * as C from "../../internal/rtnetlink/constants.ts";
import { formatPrefix } from "../../internal/rtnetlink/ip.ts";
import type { Rtnl } from "../../internal/rtnetlink/rtnl.ts";

export interface InterfaceState {
  readonly name: string;
  readonly mac: string;
  readonly mtu: number;
  /** IFF_UP: administratively up. */
  readonly up: boolean;
  /** IFF_LOWER_UP: the link has carrier. */
  readonly carrier: boolean;
  /** "10.123.0.7/16", "fe80::42:aff:fe7b:7/64" (every address the kernel lists, link-local included). */
  readonly addresses: readonly string[];
}

export interface RouteState {
  readonly dst: string;
  readonly gateway?: string;
  readonly interface: string;
  readonly scope: string;
  readonly metric: number;
  readonly protocol: string;
}

export interface NetworkState {
  readonly interfaces: readonly InterfaceState[];
  readonly routes: readonly RouteState[];
}

const SCOPES = new Map([
  [C.RT_SCOPE_UNIVERSE, "universe"],
  [C.RT_SCOPE_LINK, "link"],
  [C.RT_SCOPE_HOST, "host"],
]);
const PROTOCOLS = new Map([
  [C.RTPROT_KERNEL, "kernel"],
  [C.RTPROT_BOOT, "boot"],
  [C.RTPROT_STATIC, "static"],
]);

export type NetlinkDumps = Pick<Rtnl, "links" | "addresses" | "routes">;

/** Links (loopback included), their addresses, and the main table's unicast routes that name a link. */
export function readNetworkState(rtnl: NetlinkDumps): NetworkState {
  const links = rtnl.links();
  const addresses = rtnl.addresses();
  const names = new Map(links.map((l) => [l.index, l.name]));
  const interfaces = links.map(
    (l): InterfaceState => ({
      name: l.name,
      mac: l.mac ?? "",
      mtu: l.mtu,
      up: (l.flags & C.IFF_UP) !== 0,
      carrier: (l.flags & C.IFF_LOWER_UP) !== 0,
      addresses: addresses.filter((a) => a.index === l.index).map((a) => formatPrefix(a.prefix)),
    }),
  );
  const routes: RouteState[] = [];
  for (const r of rtnl.routes()) {
    if (r.type !== C.RTN_UNICAST || r.outIndex === undefined) continue;
    const name = names.get(r.outIndex);
    if (name === undefined) continue;
    routes.push({
      dst: formatPrefix(r.dst),
      ...(r.gateway !== undefined && { gateway: r.gateway }),
      interface: name,
      scope: SCOPES.get(r.scope) ?? String(r.scope),
      metric: r.priority ?? 0,
      protocol: PROTOCOLS.get(r.protocol) ?? String(r.protocol),
    });
  }
  return { interfaces, routes };
}
