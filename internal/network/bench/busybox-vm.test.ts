import { describe, expect, it } from "vitest";
import { parseGuestNetworkConfig } from "../../rtnetlink/netconfig.ts";
import { busyboxNetScript } from "./busybox-vm.ts";

const good = {
  version: 1,
  interfaces: [{ name: "eth0", mac: "02:42:0A:7B:00:05", mtu: 1500, addresses: ["10.123.0.5/16"] }],
  routes: [
    { dst: "0.0.0.0/0", gateway: "10.123.0.1", interface: "eth0" },
    { dst: "10.200.0.0/16", interface: "eth0", scope: "link", metric: 10 },
  ],
  dns: { nameservers: ["10.123.0.1"], search: [], options: [] },
};

describe("busybox network script", () => {
  it("turns into busybox ip commands for the test VM", () => {
    const s = busyboxNetScript(parseGuestNetworkConfig(good));
    expect(s).toContain("ip addr add '10.123.0.5/16' dev 'eth0'");
    expect(s).toContain(
      "ip route add '10.200.0.0/16' dev 'eth0' scope link metric 10\nip route add '0.0.0.0/0' via '10.123.0.1' dev 'eth0'",
    );
  });
});
