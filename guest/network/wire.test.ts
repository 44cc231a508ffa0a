import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  ConfigureNetworkRequestSchema,
  NetworkRouteSchema,
} from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import type { GuestNetworkConfig } from "../../internal/rtnetlink/netconfig.ts";
import { configFromRequest, configureNetworkRequest } from "./wire.ts";

const config: GuestNetworkConfig = {
  version: 1,
  interfaces: [
    { name: "eth0", mac: "02:42:0a:7b:00:07", mtu: 1450, addresses: ["10.123.0.7/16", "fd00::7/64"] },
    { name: "net1", mac: "02:42:0a:7c:00:02", mtu: 9000, addresses: [] },
  ],
  routes: [
    { dst: "10.200.0.0/16", interface: "net1", scope: "link" },
    { dst: "0.0.0.0/0", gateway: "10.123.0.1", interface: "eth0" },
    { dst: "fd00:77::/64", gateway: "fd00::1", interface: "eth0", metric: 50, mtu: 1400 },
  ],
  dns: { nameservers: ["10.123.0.1"], search: ["svc.test"], options: ["ndots:5"] },
};

/** What crosses the vsock: the request encoded and decoded again. */
function overTheWire(c: GuestNetworkConfig) {
  const bytes = toBinary(
    ConfigureNetworkRequestSchema,
    create(ConfigureNetworkRequestSchema, configureNetworkRequest(c)),
  );
  return fromBinary(ConfigureNetworkRequestSchema, bytes);
}

function withRoutes(...routes: MessageInitShape<typeof NetworkRouteSchema>[]) {
  const req = create(ConfigureNetworkRequestSchema, configureNetworkRequest(config));
  req.routes = routes.map((r) => create(NetworkRouteSchema, r));
  return req;
}

describe("ConfigureNetworkRequest ↔ GuestNetworkConfig", () => {
  it("round-trips every field, optional ones included", () => {
    expect(configFromRequest(overTheWire(config))).toEqual(config);
  });

  it("keeps absent gateway/metric absent (not empty / zero)", () => {
    const req = overTheWire(config);
    expect(req.routes[0]?.gateway).toBeUndefined();
    expect(req.routes[0]?.metric).toBeUndefined();
    expect(req.routes[1]?.metric).toBeUndefined();
    expect(req.routes[2]?.metric).toBe(50);
  });

  it("rejects what the parser rejects, naming the field", () => {
    const req = overTheWire(config);
    expect(() => configFromRequest({ ...req, version: 0 })).toThrow(/version 0 is not 1/);
    const badMtu = overTheWire({ ...config, interfaces: [{ ...config.interfaces[0]!, mtu: 10 }] });
    expect(() => configFromRequest(badMtu)).toThrow(/interfaces\[0\]\.mtu 10/);
    const badScope = withRoutes({ dst: "10.0.0.0/8", interface: "eth0", scope: "host" });
    expect(() => configFromRequest(badScope)).toThrow(/routes\[0\]\.scope/);
    const unknownIf = withRoutes({ dst: "10.0.0.0/8", interface: "eth9" });
    expect(() => configFromRequest(unknownIf)).toThrow(/eth9, which is not configured/);
  });

  it("treats a missing dns message as no DNS", () => {
    const req = create(ConfigureNetworkRequestSchema, { ...configureNetworkRequest(config), dns: undefined });
    expect(configFromRequest(req).dns).toEqual({ nameservers: [], search: [], options: [] });
  });
});
