import { Duplex, PassThrough } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import {
  ConfigureNetworkRequestSchema,
  NetworkInterfaceSchema,
  System,
} from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { NetworkError } from "../../internal/rtnetlink/errors.ts";
import type { GuestNetworkConfig } from "../../internal/rtnetlink/netconfig.ts";
import { Client, Code, Server } from "../../internal/ttrpc/index.ts";
import type { GuestNetworkOps } from "../network/guest-ops.ts";
import type { NetworkState } from "../network/status.ts";
import { configureNetworkRequest } from "../network/wire.ts";
import { GuestNetworkService, RESOLV_CONF_PATH } from "./network-service.ts";
import { SelfTests } from "./selftests.ts";
import { systemService } from "./system-service.ts";

const config: GuestNetworkConfig = {
  version: 1,
  interfaces: [{ name: "eth0", mac: "02:42:0a:7b:00:07", mtu: 1450, addresses: ["10.123.0.7/16"] }],
  routes: [{ dst: "0.0.0.0/0", gateway: "10.123.0.1", interface: "eth0" }],
  dns: { nameservers: ["10.123.0.1"], search: ["svc.test"], options: [] },
};

/** Ops that remember what they were asked and report a state derived from the applied config. */
function fakeOps(opts: { failApply?: Error } = {}) {
  const applied: GuestNetworkConfig[] = [];
  const files = new Map<string, string>();
  const ops: GuestNetworkOps = {
    apply: (c) => {
      if (opts.failApply) throw opts.failApply;
      applied.push(c);
      return `nameserver ${c.dns.nameservers.join(" ")}\n`;
    },
    read: (): NetworkState => ({
      interfaces: applied.flatMap((c) =>
        c.interfaces.map((i) => ({ ...i, up: true, carrier: true, addresses: [...i.addresses] })),
      ),
      routes: [],
    }),
    writeFile: (path, text) => {
      files.set(path, text);
    },
  };
  return { ops, applied, files };
}

function duplexPair() {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  return [
    Duplex.from({ readable: bToA, writable: aToB }),
    Duplex.from({ readable: aToB, writable: bToA }),
  ] as const;
}

describe("System.ConfigureNetwork / NetworkStatus", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  function serve(ops: GuestNetworkOps) {
    let loads = 0;
    const server = new Server().register(
      System,
      systemService({
        info: async () => ({}),
        health: () => ({ ok: true }),
        beginShutdown: () => {},
        selfTests: new SelfTests(async () => {
          throw new Error("unused");
        }),
        network: new GuestNetworkService(() => {
          loads++;
          return ops;
        }),
      }),
    );
    const [a, b] = duplexPair();
    server.serveConnection(a);
    const client = new Client(b);
    close = async () => {
      await client.close();
      await server.close({ graceful: false });
    };
    return { system: client.service(System), loads: () => loads };
  }

  it("applies once, writes resolv.conf, answers with the kernel's view; a retry gets the same answer", async () => {
    const f = fakeOps();
    const { system, loads } = serve(f.ops);
    const res = await system.configureNetwork(configureNetworkRequest(config));
    expect(f.applied).toEqual([config]);
    expect(f.files.get(RESOLV_CONF_PATH)).toBe("nameserver 10.123.0.1\n");
    expect(res.resolvConfPath).toBe(RESOLV_CONF_PATH);
    expect(res.resolvConf).toBe("nameserver 10.123.0.1\n");
    expect(res.status?.interfaces.map((i) => [i.name, i.mac, i.mtu, i.up, i.addresses])).toEqual([
      ["eth0", "02:42:0a:7b:00:07", 1450, true, ["10.123.0.7/16"]],
    ]);
    const again = await system.configureNetwork(configureNetworkRequest(config));
    expect(f.applied).toHaveLength(1);
    expect(again.resolvConf).toBe(res.resolvConf);
    expect((await system.networkStatus({})).interfaces).toHaveLength(1);
    expect(loads()).toBe(1);
  });

  it("refuses a different second config with FailedPrecondition", async () => {
    const f = fakeOps();
    const { system } = serve(f.ops);
    await system.configureNetwork(configureNetworkRequest(config));
    const other = { ...config, interfaces: [{ ...config.interfaces[0]!, mtu: 1400 }] };
    await expect(system.configureNetwork(configureNetworkRequest(other))).rejects.toMatchObject({
      code: Code.FailedPrecondition,
      message: expect.stringMatching(/already configured with a different config/),
    });
    expect(f.applied).toHaveLength(1);
  });

  it("answers a malformed request with InvalidArgument and touches nothing", async () => {
    const f = fakeOps();
    const { system } = serve(f.ops);
    const bad = create(ConfigureNetworkRequestSchema, configureNetworkRequest(config));
    bad.interfaces = [create(NetworkInterfaceSchema, { name: "eth0", mac: "not-a-mac", mtu: 1500 })];
    await expect(system.configureNetwork(bad)).rejects.toMatchObject({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/interfaces\[0\]\.mac/),
    });
    expect(f.applied).toHaveLength(0);
    // Still configurable: nothing was applied.
    await system.configureNetwork(configureNetworkRequest(config));
    expect(f.applied).toHaveLength(1);
  });

  it("maps the apply error's code, and a half-applied network stays refused", async () => {
    const f = fakeOps({
      failApply: new NetworkError("NotFound", "no NIC with MAC 02:42:0a:7b:00:07 for eth0"),
    });
    const { system } = serve(f.ops);
    await expect(system.configureNetwork(configureNetworkRequest(config))).rejects.toMatchObject({
      code: Code.NotFound,
      message: "no NIC with MAC 02:42:0a:7b:00:07 for eth0",
    });
    await expect(system.configureNetwork(configureNetworkRequest(config))).rejects.toMatchObject({
      code: Code.FailedPrecondition,
      message: expect.stringMatching(/earlier ConfigureNetwork failed half-way \(no NIC with MAC/),
    });
  });
});
