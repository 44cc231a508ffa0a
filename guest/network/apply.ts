/**
 * Configures the guest's NICs from the host's GuestNetworkConfig (see docs/network.md): the
 * module vminitd calls with the JSON document the host sends. Bun-only (netlink through vminitd's addon).
 *
 *   const { resolvConf } = applyNetworkConfig(JSON.parse(text));
 *   // write resolvConf where the containers' /etc/resolv.conf comes from
 */
import { applyGuestNetworkConfig } from "../../internal/rtnetlink/apply-netconfig.ts";
import {
  type GuestNetworkConfig,
  parseGuestNetworkConfig,
  renderResolvConf,
} from "../../internal/rtnetlink/netconfig.ts";
import { Rtnl } from "../../internal/rtnetlink/rtnl.ts";
import { netlinkTransport } from "./netlink-socket.ts";

export interface AppliedNetwork {
  readonly config: GuestNetworkConfig;
  /** Contents for /etc/resolv.conf. */
  readonly resolvConf: string;
}

/** Validates the document, then sets names, MTUs, addresses, link state and routes. */
export function applyNetworkConfig(document: unknown): AppliedNetwork {
  const config = parseGuestNetworkConfig(document);
  const rtnl = Rtnl.over(netlinkTransport());
  try {
    applyGuestNetworkConfig(rtnl, config);
  } finally {
    rtnl.close();
  }
  return { config, resolvConf: renderResolvConf(config.dns) };
}
