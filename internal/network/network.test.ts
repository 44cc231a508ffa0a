import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NetworkError } from "../rtnetlink/errors.ts";
import { isManagedNetnsPath, managedNetnsPath } from "./netns.ts";
import { hostDns, managedNetnsName, netnsRequestFromSpec } from "./network.ts";
import { qemuNicArgs } from "./qemu.ts";

describe("network mode from the OCI spec", () => {
  it("managed without a path, attach with one", () => {
    expect(netnsRequestFromSpec({ linux: { namespaces: [{ type: "pid" }, { type: "network" }] } })).toEqual({
      kind: "managed",
    });
    expect(
      netnsRequestFromSpec({ linux: { namespaces: [{ type: "network", path: "/var/run/netns/cni-1" }] } }),
    ).toEqual({
      kind: "attach",
      path: "/var/run/netns/cni-1",
    });
  });

  it("host networking (no network namespace at all) is InvalidArgument", () => {
    for (const spec of [{ linux: { namespaces: [{ type: "pid" }] } }, { linux: {} }, {}, null]) {
      try {
        netnsRequestFromSpec(spec);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(NetworkError);
        expect((err as NetworkError).code).toBe("InvalidArgument");
      }
    }
    expect(() =>
      netnsRequestFromSpec({ linux: { namespaces: [{ type: "network", path: "relative/ns" }] } }),
    ).toThrow(/not an absolute path/);
  });
});

describe("host DNS fallback", () => {
  it("drops loopback resolvers a VM cannot reach and keeps search/options", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetroot-dns-"));
    try {
      const f = join(dir, "resolv.conf");
      writeFileSync(
        f,
        "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver ::1\nnameserver fd00::53\nsearch a.test b.test\noptions edns0 trust-ad\n",
      );
      expect(hostDns(f)).toEqual({
        nameservers: ["192.0.2.1", "fd00::53"],
        search: ["a.test", "b.test"],
        options: ["edns0", "trust-ad"],
      });
      expect(hostDns(join(dir, "missing"))).toEqual({ nameservers: [], search: [], options: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("names and arguments", () => {
  it("managed namespaces are beetroot-<hash> under /run/netns, and only those are ours", () => {
    const name = managedNetnsName("vm-1", "ctr-1");
    expect(name).toMatch(/^[0-9a-f]{16}$/);
    expect(managedNetnsName("vm-1", "ctr-1")).toBe(name);
    expect(managedNetnsName("vm-2", "ctr-1")).not.toBe(name);
    expect(isManagedNetnsPath(managedNetnsPath(name))).toBe(true);
    expect(isManagedNetnsPath("/run/netns/cni-1234")).toBe(false);
    expect(isManagedNetnsPath("/run/netns/beetroot-x/../../etc")).toBe(false);
  });

  it("QEMU gets the TAP by descriptor, with the pod MAC and MTU", () => {
    const nic = {
      id: "net0",
      tap: "beetap0",
      fd: 21,
      vnetHdr: true,
      mac: "02:42:0a:7b:00:05",
      mtu: 1450,
      podInterface: "eth0",
    };
    expect(qemuNicArgs(nic, 3)).toEqual([
      "-netdev",
      "tap,id=net0,fd=3,vhost=off",
      "-device",
      "virtio-net-device,netdev=net0,mac=02:42:0a:7b:00:05,host_mtu=1450",
    ]);
    expect(() => qemuNicArgs(nic, 1)).toThrow(RangeError);
  });
});
