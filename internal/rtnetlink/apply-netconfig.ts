import { IFF_UP } from "./constants.ts";
import { NetworkError } from "./errors.ts";
import { parsePrefix } from "./ip.ts";
import type { GuestNetworkConfig } from "./netconfig.ts";
import type { Rtnl } from "./rtnl.ts";

/**
 * Applies a guest network config to the namespace an Rtnl talks to: what vminitd does in the
 * VM, written against the same rtnetlink code so the host can prove the config is complete (the
 * integration tests use it on a stand-in "guest" namespace before a VM exists). NICs are found by
 * MAC; addresses, MTU, link state, then routes in the config's order.
 */
export function applyGuestNetworkConfig(rtnl: Rtnl, config: GuestNetworkConfig): void {
  const links = rtnl.links();
  const lo = links.find((l) => l.name === "lo");
  if (lo) rtnl.setUp(lo);
  const indexByName = new Map<string, number>();
  for (const want of config.interfaces) {
    const link = links.find((l) => l.mac === want.mac);
    if (!link) throw new NetworkError("NotFound", `no NIC with MAC ${want.mac} for ${want.name}`);
    indexByName.set(want.name, link.index);
    if (link.name !== want.name) {
      // Renaming needs the link down; a NIC fresh from boot is.
      if ((link.flags & IFF_UP) !== 0) rtnl.setUp(link, false);
      rtnl.setName(link, want.name);
    }
    if (link.mtu !== want.mtu) rtnl.setMtu(link, want.mtu);
    for (const a of want.addresses) rtnl.addAddress(link, a, { noDad: parsePrefix(a).family === 6 });
    rtnl.setUp(link);
  }
  for (const r of config.routes) {
    const outIndex = indexByName.get(r.interface);
    if (outIndex === undefined)
      throw new NetworkError("InvalidArgument", `route ${r.dst} uses unknown interface ${r.interface}`);
    rtnl.addRoute({
      dst: r.dst,
      outIndex,
      ...(r.gateway !== undefined && { gateway: r.gateway }),
      ...(r.scope !== undefined && { scope: r.scope }),
      ...(r.metric !== undefined && { priority: r.metric }),
    });
  }
}
