import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../log/logger.ts";
import type { MountTranslator, TranslateRequest } from "../storage/types.ts";
import { Code, TtrpcError } from "../ttrpc/index.ts";
import type { OciSpec } from "./oci.ts";
import { VmPodManager } from "./pod.ts";
import { FakeVmm } from "./testing/fake-vm.ts";
import type { VmDisk } from "./vmm.ts";

/** Containers joining a running pod VM with disks it did not boot with (CRI: sandbox, then apps). */
const log = createLogger({ fd: null });

/** One read-only disk per container, serials from the pod; records releases. */
function oneDiskPerContainer() {
  const released: string[] = [];
  const storage: MountTranslator = {
    async translate(req: TranslateRequest) {
      const serial = req.allocateSerial();
      return {
        disks: [{ path: `/layers/${req.containerId}.erofs`, serial, readOnly: true }],
        mounts: [{ type: "erofs", diskSerial: serial, options: ["ro"] }],
        release: async () => {
          released.push(req.containerId);
        },
      };
    },
  };
  return { storage, released };
}

const sandboxSpec: OciSpec = {
  annotations: { "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "pod1" },
};
const appSpec: OciSpec = {
  annotations: { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod1" },
};

describe("VmPodManager join", () => {
  const vmms: FakeVmm[] = [];
  afterEach(() => {
    for (const v of vmms.splice(0)) v.dispose();
  });

  function setup(attach: boolean) {
    const vmm = new FakeVmm();
    vmms.push(vmm);
    const calls: string[] = [];
    let failAttach: Error | undefined;
    const launch = vmm.launch.bind(vmm);
    vmm.launch = async (req) => {
      const vm = await launch(req);
      if (attach) {
        Object.assign(vm, {
          attachDisks: async (disks: readonly VmDisk[]) => {
            calls.push(
              `attach ${disks.map((d) => `${d.serial}=${d.path}${d.readOnly ? ":ro" : ""}`).join(" ")}`,
            );
            if (failAttach) throw failAttach;
          },
          detachDisks: async (serials: readonly string[]) => {
            calls.push(`detach ${serials.join(" ")}`);
          },
        });
      }
      return vm;
    };
    const { storage, released } = oneDiskPerContainer();
    const pods = new VmPodManager({ containerdAddress: "/run/c.sock", vmm, storage, log });
    return {
      vmm,
      pods,
      calls,
      released,
      failNextAttach: (e: Error) => {
        failAttach = e;
      },
    };
  }

  const prep = (pods: VmPodManager, id: string, spec: OciSpec) =>
    pods.prepare({ id, namespace: "default", spec, mounts: [], log });

  it("gives the running VM the app's disks (serials after the boot disks) and takes them away on release", async () => {
    const { vmm, pods, calls, released } = setup(true);
    const sandbox = await prep(pods, "pod1", sandboxSpec);
    expect(vmm.vms[0]?.request.disks).toEqual([
      { path: "/layers/pod1.erofs", serial: "br-0", readOnly: true },
    ]);
    const app = await prep(pods, "app1", appSpec);
    expect(vmm.vms).toHaveLength(1);
    expect(app.podId).toBe("pod1");
    expect(app.rootfs).toEqual([{ type: "erofs", diskSerial: "br-1", options: ["ro"] }]);
    expect(calls).toEqual(["attach br-1=/layers/app1.erofs:ro"]);
    await app.release();
    expect(calls).toEqual(["attach br-1=/layers/app1.erofs:ro", "detach br-1"]);
    expect(released).toEqual(["app1"]);
    // A second app after the first one left gets a fresh serial: names in the share are never reused.
    const app2 = await prep(pods, "app2", appSpec);
    expect(app2.rootfs[0]?.diskSerial).toBe("br-2");
    await app2.release();
    await sandbox.release();
    expect(vmm.vms[0]?.calls).toContain("stop");
  });

  it("the last member's release stops the VM, which takes its disks with it (no detach)", async () => {
    const { pods, calls } = setup(true);
    const sandbox = await prep(pods, "pod1", sandboxSpec);
    const app = await prep(pods, "app1", appSpec);
    await sandbox.release();
    await app.release();
    expect(calls).toEqual(["attach br-1=/layers/app1.erofs:ro"]);
  });

  it("a VMM that cannot take disks after boot: FailedPrecondition, the rootfs released", async () => {
    const { pods, released } = setup(false);
    await prep(pods, "pod1", sandboxSpec);
    const err = await prep(pods, "app1", appSpec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TtrpcError);
    expect((err as TtrpcError).code).toBe(Code.FailedPrecondition);
    expect((err as TtrpcError).message).toMatch(/app1 needs 1 image disk\(s\).*cannot take disks after boot/);
    expect(released).toEqual(["app1"]);
  });

  it("a failed attach is the caller's error, the rootfs released, the container not a member", async () => {
    const { pods, released, failNextAttach } = setup(true);
    const sandbox = await prep(pods, "pod1", sandboxSpec);
    failNextAttach(new TtrpcError(Code.FailedPrecondition, "disk br-1 is writable"));
    const err = await prep(pods, "app1", appSpec).catch((e: unknown) => e);
    expect((err as TtrpcError).code).toBe(Code.FailedPrecondition);
    expect((err as TtrpcError).message).toMatch(/disk br-1 is writable/);
    expect(released).toEqual(["app1"]);
    expect(() => pods.podOf("app1")).toThrow(/in no pod/);
    await sandbox.release();
  });
});
