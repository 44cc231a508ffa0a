import { Duplex, PassThrough } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { NetworkStatusResponseSchema, System } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { configFromRequest } from "../../guest/network/wire.ts";
import type { GuestNetworkConfig } from "../rtnetlink/netconfig.ts";
import { Client, Code, Server, type ServiceImpl, TtrpcError } from "../ttrpc/index.ts";
import { configureGuestNetwork, guestNetworkMismatches, specResolvConf } from "./pod-network.ts";

const config: GuestNetworkConfig = {
  version: 1,
  interfaces: [{ name: "eth0", mac: "02:42:0a:7b:00:07", mtu: 1450, addresses: ["10.123.0.7/16"] }],
  routes: [{ dst: "0.0.0.0/0", gateway: "10.123.0.1", interface: "eth0" }],
  dns: { nameservers: [], search: [], options: [] },
};

const goodStatus = () =>
  create(NetworkStatusResponseSchema, {
    interfaces: [
      { name: "lo", mtu: 65536, up: true, addresses: ["127.0.0.1/8"] },
      {
        name: "eth0",
        mac: "02:42:0a:7b:00:07",
        mtu: 1450,
        up: true,
        carrier: true,
        addresses: ["10.123.0.7/16", "fe80::42:aff:fe7b:7/64"],
      },
    ],
    routes: [
      { dst: "0.0.0.0/0", gateway: "10.123.0.1", interface: "eth0", scope: "universe", protocol: "boot" },
      { dst: "10.123.0.0/16", interface: "eth0", scope: "link", protocol: "kernel" },
    ],
  });

function duplexPair() {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  return [
    Duplex.from({ readable: bToA, writable: aToB }),
    Duplex.from({ readable: aToB, writable: bToA }),
  ] as const;
}

describe("guestNetworkMismatches", () => {
  it("accepts a guest that holds the config (extra link-local addresses and kernel routes are fine)", () => {
    expect(guestNetworkMismatches(config, goodStatus())).toEqual([]);
  });

  it("names every contradiction", () => {
    const s = goodStatus();
    const eth0 = s.interfaces[1]!;
    eth0.mtu = 1500;
    eth0.mac = "02:00:00:00:00:01";
    eth0.up = false;
    eth0.addresses = [];
    s.routes = [];
    expect(guestNetworkMismatches(config, s)).toEqual([
      "eth0 has MAC 02:00:00:00:00:01, not 02:42:0a:7b:00:07",
      "eth0 has MTU 1500, not 1450",
      "eth0 is down",
      "eth0 lacks address 10.123.0.7/16",
      "no route 0.0.0.0/0 via 10.123.0.1 dev eth0",
    ]);
    expect(guestNetworkMismatches(config, undefined)).toEqual(["the answer has no status"]);
  });
});

describe("configureGuestNetwork", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  function guestWith(impl: Partial<ServiceImpl<typeof System>>): Client {
    const server = new Server().register(System, impl);
    const [a, b] = duplexPair();
    server.serveConnection(a);
    const client = new Client(b);
    close = async () => {
      await client.close();
      await server.close({ graceful: false });
    };
    return client;
  }

  it("sends the config as the guest parses it and returns the answer", async () => {
    let received: GuestNetworkConfig | undefined;
    const guest = guestWith({
      configureNetwork: (req) => {
        received = configFromRequest(req);
        return { status: goodStatus(), resolvConfPath: "/run/beetroot/resolv.conf" };
      },
    });
    const res = await configureGuestNetwork(guest, config);
    expect(received).toEqual(config);
    expect(res.resolvConfPath).toBe("/run/beetroot/resolv.conf");
  });

  it("tells an old guest image apart (Unimplemented → FailedPrecondition with the rebuild command)", async () => {
    const guest = guestWith({ health: () => ({ ok: true }) });
    await expect(configureGuestNetwork(guest, config)).rejects.toMatchObject({
      code: "FailedPrecondition",
      message: expect.stringMatching(/no System.ConfigureNetwork.*beetroot build guest/),
    });
  });

  it("keeps the guest's error code and refuses an answer that contradicts the config", async () => {
    const failing = guestWith({
      configureNetwork: () => {
        throw new TtrpcError(Code.NotFound, "no NIC with MAC 02:42:0a:7b:00:07 for eth0");
      },
    });
    await expect(configureGuestNetwork(failing, config)).rejects.toMatchObject({
      code: "NotFound",
      message: "guest network configuration failed: no NIC with MAC 02:42:0a:7b:00:07 for eth0",
    });
    await close?.();
    const lying = guestWith({ configureNetwork: () => ({ status: { interfaces: [] } }) });
    await expect(configureGuestNetwork(lying, config)).rejects.toMatchObject({
      code: "Internal",
      message: expect.stringMatching(/no interface eth0/),
    });
  });
});

describe("specResolvConf", () => {
  it("finds the host file a spec binds at /etc/resolv.conf (CRI's per-pod copy)", () => {
    const cri = "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/resolv.conf";
    expect(
      specResolvConf({
        mounts: [
          { destination: "/etc/hosts", type: "bind", source: "/x/hosts", options: ["rbind"] },
          { destination: "/etc/resolv.conf", type: "bind", source: cri, options: ["rbind", "ro"] },
        ],
      }),
    ).toBe(cri);
    expect(
      specResolvConf({ mounts: [{ destination: "/etc/resolv.conf", source: cri, options: ["bind"] }] }),
    ).toBe(cri);
  });

  it("ignores anything that is not a bind of an absolute host path", () => {
    expect(specResolvConf({})).toBeUndefined();
    expect(specResolvConf(null)).toBeUndefined();
    expect(
      specResolvConf({ mounts: [{ destination: "/etc/resolv.conf", type: "tmpfs", source: "tmpfs" }] }),
    ).toBeUndefined();
    expect(
      specResolvConf({
        mounts: [{ destination: "/etc/resolv.conf", type: "bind", source: "relative/resolv.conf" }],
      }),
    ).toBeUndefined();
  });
});
