import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../log/logger.ts";
import type { MountTranslator } from "../storage/types.ts";
import { VmPodManager } from "./pod.ts";
import { FakeVmm } from "./testing/fake-vm.ts";
import type { VmRequest } from "./vmm.ts";

const log = createLogger({ fd: null });
const noMounts: MountTranslator = {
  async translate() {
    return { disks: [], mounts: [], release: async () => {} };
  },
};

describe("VmPodManager", () => {
  const vmms: FakeVmm[] = [];
  afterEach(() => {
    for (const v of vmms.splice(0)) v.dispose();
  });

  it("passes the container's spec to the VMM and shutdown() waits for a VM still booting, then stops it", async () => {
    const vmm = new FakeVmm();
    vmms.push(vmm);
    const launch = vmm.launch.bind(vmm);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let requested: VmRequest | undefined;
    vmm.launch = async (req) => {
      requested = req;
      await gate;
      return launch(req);
    };
    const pods = new VmPodManager({ containerdAddress: "/run/c.sock", vmm, storage: noMounts, log });
    const spec = { linux: { namespaces: [{ type: "network" }] } };
    const prepared = pods.prepare({ id: "c1", namespace: "default", spec, mounts: [], log });
    await new Promise((r) => setTimeout(r, 10));
    expect(requested?.spec).toBe(spec);

    let shutDown = false;
    const shutdown = pods.shutdown().then(() => {
      shutDown = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(shutDown).toBe(false); // the boot is still in flight
    release();
    await shutdown;
    await prepared;
    expect(vmm.vms).toHaveLength(1);
    expect(vmm.vms[0]?.calls).toContain("stop");
  });
});
