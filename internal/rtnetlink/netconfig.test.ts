import { describe, expect, it } from "vitest";
import { parseGuestNetworkConfig, renderResolvConf } from "./netconfig.ts";

const good = {
  version: 1,
  interfaces: [
    { name: "eth0", mac: "02:42:0A:7B:00:05", mtu: 1500, addresses: ["10.123.0.5/16", "fd00::5/64"] },
  ],
  routes: [
    { dst: "0.0.0.0/0", gateway: "10.123.0.1", interface: "eth0" },
    { dst: "10.200.0.0/16", interface: "eth0", scope: "link", metric: 10 },
  ],
  dns: { nameservers: ["10.123.0.53"], search: ["pod.test"], options: ["ndots:5"] },
};

describe("guest network config", () => {
  it("accepts a complete document, lower-cases MACs and puts on-link routes first", () => {
    const c = parseGuestNetworkConfig(good);
    expect(c.interfaces[0]?.mac).toBe("02:42:0a:7b:00:05");
    expect(c.routes.map((r) => r.dst)).toEqual(["10.200.0.0/16", "0.0.0.0/0"]);
    expect(renderResolvConf(c.dns)).toContain("nameserver 10.123.0.53\nsearch pod.test\noptions ndots:5\n");
  });

  it("names exactly what is wrong", () => {
    const bad = (patch: object, re: RegExp) =>
      expect(() => parseGuestNetworkConfig({ ...good, ...patch })).toThrow(re);
    bad({ version: 2 }, /version 2 is not 1/);
    bad({ interfaces: [{ ...good.interfaces[0], mtu: 10 }] }, /mtu 10 is not between 68 and 65535/);
    bad({ interfaces: [{ ...good.interfaces[0], mac: "nope" }] }, /interfaces\[0\]\.mac.*not a MAC/);
    bad(
      { interfaces: [{ ...good.interfaces[0], name: "eth0; reboot" }] },
      /interfaces\[0\]\.name .* is malformed/,
    );
    bad({ routes: [{ dst: "0.0.0.0/0", gateway: "fd00::1", interface: "eth0" }] }, /mixes IPv4 and IPv6/);
    bad({ routes: [{ dst: "0.0.0.0/0", interface: "eth9" }] }, /eth9, which is not configured/);
    bad({ dns: { nameservers: ["dns.example"], search: [], options: [] } }, /not an IPv4 or IPv6 address/);
    bad({ interfaces: Array(9).fill(good.interfaces[0]) }, /at most 8/);
  });
});
