import { describe, expect, it } from "vitest";
import * as C from "../../internal/rtnetlink/constants.ts";
import type { Address, Link, Route } from "../../internal/rtnetlink/route.ts";
import { readNetworkState } from "./status.ts";

const lo: Link = {
  index: 1,
  name: "lo",
  hwType: 772,
  flags: C.IFF_UP | C.IFF_LOOPBACK | C.IFF_LOWER_UP,
  mtu: 65536,
};
const eth0: Link = {
  index: 2,
  name: "eth0",
  hwType: C.ARPHRD_ETHER,
  flags: C.IFF_UP | C.IFF_LOWER_UP,
  mtu: 1450,
  mac: "02:42:0a:7b:00:07",
};
const eth1: Link = {
  index: 3,
  name: "eth1",
  hwType: C.ARPHRD_ETHER,
  flags: 0,
  mtu: 1500,
  mac: "02:00:00:00:00:09",
};

const addr = (index: number, address: string, prefixLength: number): Address => ({
  index,
  family: address.includes(":") ? 6 : 4,
  prefix: { family: address.includes(":") ? 6 : 4, address, prefixLength },
  scope: 0,
  flags: 0,
});

const route = (r: Partial<Route> & { dst: Route["dst"] }): Route => ({
  family: 4,
  table: C.RT_TABLE_MAIN,
  protocol: C.RTPROT_BOOT,
  scope: C.RT_SCOPE_UNIVERSE,
  type: C.RTN_UNICAST,
  multipath: false,
  ...r,
});

describe("readNetworkState", () => {
  it("reports links with flags, addresses and the unicast routes through them", () => {
    const state = readNetworkState({
      links: () => [lo, eth0, eth1],
      addresses: () => [
        addr(1, "127.0.0.1", 8),
        addr(2, "10.123.0.7", 16),
        addr(2, "fe80::42:aff:fe7b:7", 64),
      ],
      routes: () => [
        route({
          dst: { family: 4, address: "0.0.0.0", prefixLength: 0 },
          gateway: "10.123.0.1",
          outIndex: 2,
        }),
        route({
          dst: { family: 4, address: "10.123.0.0", prefixLength: 16 },
          outIndex: 2,
          protocol: C.RTPROT_KERNEL,
          scope: C.RT_SCOPE_LINK,
          priority: 5,
        }),
        // Not unicast, and a route through a link that is gone: left out.
        route({ dst: { family: 4, address: "10.9.0.0", prefixLength: 16 }, outIndex: 2, type: 6 }),
        route({ dst: { family: 4, address: "10.8.0.0", prefixLength: 16 }, outIndex: 99 }),
      ],
    });
    expect(state.interfaces).toEqual([
      { name: "lo", mac: "", mtu: 65536, up: true, carrier: true, addresses: ["127.0.0.1/8"] },
      {
        name: "eth0",
        mac: "02:42:0a:7b:00:07",
        mtu: 1450,
        up: true,
        carrier: true,
        addresses: ["10.123.0.7/16", "fe80::42:aff:fe7b:7/64"],
      },
      { name: "eth1", mac: "02:00:00:00:00:09", mtu: 1500, up: false, carrier: false, addresses: [] },
    ]);
    expect(state.routes).toEqual([
      {
        dst: "0.0.0.0/0",
        gateway: "10.123.0.1",
        interface: "eth0",
        scope: "universe",
        metric: 0,
        protocol: "boot",
      },
      { dst: "10.123.0.0/16", interface: "eth0", scope: "link", metric: 5, protocol: "kernel" },
    ]);
  });
});
