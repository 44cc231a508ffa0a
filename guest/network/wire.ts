/**
 * GuestNetworkConfig ↔ beetroot.guest.v1 messages (System.ConfigureNetwork / NetworkStatus). The
 * typed messages mirror the JSON document of internal/rtnetlink/netconfig.ts field by field; both
 * ends validate with the same parser, so a request the host accepted is one the guest accepts.
 * Host and guest import this file (it needs only api/gen types and internal/rtnetlink).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  ConfigureNetworkRequest,
  ConfigureNetworkRequestSchema,
  NetworkStatusResponseSchema,
} from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { type GuestNetworkConfig, parseGuestNetworkConfig } from "../../internal/rtnetlink/netconfig.ts";
import type { NetworkState } from "./status.ts";

/** Host side: the request for a validated config. */
export function configureNetworkRequest(
  config: GuestNetworkConfig,
): MessageInitShape<typeof ConfigureNetworkRequestSchema> {
  return {
    version: config.version,
    interfaces: config.interfaces.map((i) => ({
      name: i.name,
      mac: i.mac,
      mtu: i.mtu,
      addresses: [...i.addresses],
    })),
    routes: config.routes.map((r) => ({
      dst: r.dst,
      interface: r.interface,
      scope: r.scope ?? "",
      ...(r.gateway !== undefined && { gateway: r.gateway }),
      ...(r.metric !== undefined && { metric: r.metric }),
      ...(r.mtu !== undefined && { mtu: r.mtu }),
    })),
    dns: {
      nameservers: [...config.dns.nameservers],
      search: [...config.dns.search],
      options: [...config.dns.options],
    },
  };
}

/**
 * Guest side: the request as the JSON-shaped document, through the strict parser (bounds, CIDRs,
 * MACs, route interfaces, families). A NetworkError("InvalidArgument") names the bad field.
 */
export function configFromRequest(req: ConfigureNetworkRequest): GuestNetworkConfig {
  return parseGuestNetworkConfig({
    version: req.version,
    interfaces: req.interfaces.map((i) => ({
      name: i.name,
      mac: i.mac,
      mtu: i.mtu,
      addresses: i.addresses,
    })),
    routes: req.routes.map((r) => ({
      dst: r.dst,
      interface: r.interface,
      // proto3 has no "absent" for a plain string: "" is the universe scope.
      ...(r.scope !== "" && { scope: r.scope }),
      ...(r.gateway !== undefined && { gateway: r.gateway }),
      ...(r.metric !== undefined && { metric: r.metric }),
      ...(r.mtu !== undefined && { mtu: r.mtu }),
    })),
    dns: {
      nameservers: req.dns?.nameservers ?? [],
      search: req.dns?.search ?? [],
      options: req.dns?.options ?? [],
    },
  });
}

export function networkStatusMessage(
  state: NetworkState,
): MessageInitShape<typeof NetworkStatusResponseSchema> {
  return {
    interfaces: state.interfaces.map((i) => ({ ...i, addresses: [...i.addresses] })),
    routes: state.routes.map((r) => ({ ...r })),
  };
}
