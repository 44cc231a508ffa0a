import * as C from "../rtnetlink/constants.ts";
import { formatPrefix, type Prefix } from "../rtnetlink/ip.ts";
import type { GuestInterface, GuestRoute } from "../rtnetlink/netconfig.ts";
import type { Link } from "../rtnetlink/route.ts";
import type { Rtnl } from "../rtnetlink/rtnl.ts";

/**
 * What a pod namespace's network looks like, read over rtnetlink: the Ethernet interfaces
 * CNI made, their addresses and the routes through them. The same reading serves both modes
 * (after our own CNI ADD, or a namespace CRI configured), so the guest always gets what the
 * namespace really holds.
 */
export interface PodInterface {
  readonly link: Link;
  readonly guest: GuestInterface;
}

export interface PodNetwork {
  readonly interfaces: readonly PodInterface[];
  readonly routes: readonly GuestRoute[];
}

const isIpv6LinkLocal = (p: Prefix) => p.family === 6 && /^fe[89ab]/i.test(p.address);
const isMulticast = (p: Prefix) =>
  p.family === 6 ? /^ff/i.test(p.address) : /^2(2[4-9]|3\d)\./.test(p.address);

/** Interfaces that get a VM NIC: Ethernet with a MAC, not loopback, not a TAP of ours. */
export function eligible(link: Link): boolean {
  return (
    link.hwType === C.ARPHRD_ETHER &&
    (link.flags & C.IFF_LOOPBACK) === 0 &&
    link.mac !== undefined &&
    link.kind !== "tun"
  );
}

export function discoverPodNetwork(rtnl: Rtnl): PodNetwork {
  const links = rtnl.links().filter(eligible);
  const addresses = rtnl.addresses();
  const routes = rtnl.routes();
  const byIndex = new Map(links.map((l) => [l.index, l]));

  const interfaces = links.map((link): PodInterface => {
    const addrs = addresses
      .filter((a) => a.index === link.index && a.scope === C.RT_SCOPE_UNIVERSE)
      // IPv6 link-local and autoconfigured addresses: the guest derives the same ones from the same MAC.
      .filter((a) => a.family === 4 || (!isIpv6LinkLocal(a.prefix) && (a.flags & C.IFA_F_PERMANENT) !== 0))
      .map((a) => formatPrefix(a.prefix));
    return { link, guest: { name: link.name, mac: link.mac ?? "", mtu: link.mtu, addresses: addrs } };
  });

  const guestRoutes: GuestRoute[] = [];
  for (const r of routes) {
    const link = r.outIndex === undefined ? undefined : byIndex.get(r.outIndex);
    if (!link) continue;
    if (r.type !== C.RTN_UNICAST || r.multipath) continue;
    // The kernel adds the on-link route of every address itself, in the guest too.
    if (r.protocol === C.RTPROT_KERNEL) continue;
    if (isIpv6LinkLocal(r.dst) || isMulticast(r.dst)) continue;
    guestRoutes.push({
      dst: formatPrefix(r.dst),
      ...(r.gateway !== undefined && { gateway: r.gateway }),
      interface: link.name,
      ...(r.scope === C.RT_SCOPE_LINK && { scope: "link" as const }),
      ...(r.priority !== undefined && r.priority !== 0 && { metric: r.priority }),
      ...(r.mtu !== undefined && { mtu: r.mtu }),
    });
  }
  return { interfaces, routes: guestRoutes };
}
