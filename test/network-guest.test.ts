import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { buildVminitdSysForHost } from "../guest/native/host-build.ts";
import { createNetns, removeNetns } from "../internal/network/netns.ts";
import { openTap } from "../internal/network/tap.ts";
import type { GuestNetworkConfig } from "../internal/rtnetlink/netconfig.ts";
import { setupMissing, skipReason } from "./fixtures/skip.ts";
import { missingNetworkCapability, native, withRtnl } from "./network-support.ts";

/**
 * guest/network under Bun (the guest's runtime), in a fresh network namespace standing in for
 * the VM: a NIC with the pod MAC but the wrong name and MTU gets renamed, sized, addressed and
 * routed from a GuestNetworkConfig; the host reads the result back over its own rtnetlink.
 */
const bun = resolve("node_modules/bun/bin/bun.exe");
const reason = skipReason(
  import.meta.url,
  missingNetworkCapability(),
  setupMissing(existsSync(bun) ? undefined : `${bun} missing (npm install)`),
);

describe.skipIf(reason)("guest/network applies a guest network config (Bun, vminitd's netlink addon)", () => {
  const dir = mkdtempSync(join(tmpdir(), "guest-net-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // The guest's runtime environment: no JIT, vminitd's addon built for this host.
  const guestEnv = () => ({ BEETROOT_VMINITD_SYS: buildVminitdSysForHost(dir), BUN_JSC_useJIT: "0" });

  it("renames by MAC, sets MTU, addresses, routes and renders resolv.conf", async () => {
    const n = await native();
    const ns = `/run/netns/btest-guestapply-${process.pid}`;
    createNetns(n, ns);
    const nic = openTap(n, ns, "enp0s1", { vnetHdr: false });
    try {
      const mac = "02:42:0a:7b:00:09";
      withRtnl(n, ns, (r) => {
        const l = r.link("enp0s1");
        if (!l) throw new Error("tap missing");
        r.setMac(l, mac);
      });
      const config: GuestNetworkConfig = {
        version: 1,
        interfaces: [{ name: "eth0", mac, mtu: 1400, addresses: ["10.123.4.9/24", "fd00:4::9/64"] }],
        routes: [
          { dst: "0.0.0.0/0", gateway: "10.123.4.1", interface: "eth0" },
          { dst: "10.77.0.0/16", gateway: "10.123.4.254", interface: "eth0", metric: 50 },
          { dst: "fd00:77::/64", gateway: "fd00:4::1", interface: "eth0" },
        ],
        dns: { nameservers: ["10.123.4.1"], search: ["svc.test"], options: ["ndots:5"] },
      };
      const r = await execa(
        "nsenter",
        [`--net=${ns}`, bun, "test/network-fixtures/guest-apply.ts", JSON.stringify(config)],
        {
          reject: false,
          timeout: 30_000,
          env: guestEnv(),
        },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).resolvConf).toContain(
        "nameserver 10.123.4.1\nsearch svc.test\noptions ndots:5\n",
      );
      const seen = withRtnl(n, ns, (rt) => {
        const eth0 = rt.link("eth0");
        if (!eth0) throw new Error("eth0 missing after rename");
        return {
          eth0,
          lo: rt.link("lo"),
          addrs: rt
            .addresses()
            .filter((a) => a.index === eth0.index && a.scope === 0)
            .map((a) => `${a.prefix.address}/${a.prefix.prefixLength}`),
          routes: rt
            .routes()
            .filter((x) => x.outIndex === eth0.index && x.gateway !== undefined)
            .map((x) => ({
              dst: `${x.dst.address}/${x.dst.prefixLength}`,
              gw: x.gateway,
              metric: x.priority,
            })),
        };
      });
      expect(seen.eth0).toMatchObject({ mac, mtu: 1400 });
      expect(seen.eth0.flags & 1).toBe(1);
      expect((seen.lo?.flags ?? 0) & 1).toBe(1);
      expect(seen.addrs.sort()).toEqual(["10.123.4.9/24", "fd00:4::9/64"]);
      expect(seen.routes).toEqual(
        expect.arrayContaining([
          { dst: "0.0.0.0/0", gw: "10.123.4.1", metric: undefined },
          { dst: "10.77.0.0/16", gw: "10.123.4.254", metric: 50 },
          expect.objectContaining({ dst: "fd00:77::/64", gw: "fd00:4::1" }),
        ]),
      );
      // A document that fails validation touches nothing and says why.
      const bad = await execa(
        "nsenter",
        [
          `--net=${ns}`,
          bun,
          "test/network-fixtures/guest-apply.ts",
          JSON.stringify({ ...config, version: 7 }),
        ],
        { reject: false, env: guestEnv() },
      );
      expect(bad.exitCode).not.toBe(0);
      expect(bad.stderr).toMatch(/guest network config: version 7 is not 1/);
    } finally {
      n.close(nic.fd);
      removeNetns(n, ns);
    }
  });
});
