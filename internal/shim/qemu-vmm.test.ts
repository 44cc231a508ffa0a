import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_VM_CONFIG } from "../config/config.ts";
import { type BeetrootPaths, beetrootPaths } from "../config/paths.ts";
import { createLogger } from "../log/logger.ts";
import { NetworkError } from "../rtnetlink/errors.ts";
import { listOwners } from "../state/ledger.ts";
import { Code, TtrpcError } from "../ttrpc/index.ts";
import type { PodVm, PodVmOptions } from "../vm/pod-network.ts";
import type { VmExit, Vmm as VmLauncher } from "../vm/vm.ts";
import type { OciSpec } from "./oci.ts";
import { launchError, QemuVmmAdapter, type ResolvedHost } from "./qemu-vmm.ts";
import type { VmRequest } from "./vmm.ts";

/**
 * The adapter between the shim's Vmm seam and internal/vm's pod VM sequence. The fake sits at the
 * launchPodVm boundary (everything below it — CNI, TAPs, QEMU — has its own integration tests);
 * one case runs the real launchPodVm to prove the host-network refusal happens before anything is made.
 */
const log = createLogger({ fd: null });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function testPaths(): BeetrootPaths {
  const root = mkdtempSync(join(tmpdir(), "bqv-"));
  dirs.push(root);
  return beetrootPaths({
    ...process.env,
    BEETROOT_LIB_DIR: join(root, "lib"),
    BEETROOT_RUN_DIR: join(root, "run"),
  });
}

const launcherNeverCalled: VmLauncher = {
  launch: () => Promise.reject(new Error("the VM launcher must not be reached")),
};

const host = (vmm: VmLauncher = launcherNeverCalled): ResolvedHost => ({
  vmm,
  kernel: "/k/vmlinux",
  rootImage: "/k/root.erofs",
  accel: "tcg",
  tscKhz: 2596000,
  config: { vm: DEFAULT_VM_CONFIG, source: "defaults" },
});

const managedSpec: OciSpec = { linux: { namespaces: [{ type: "pid" }, { type: "network" }] } };

function request(spec: OciSpec = managedSpec): VmRequest {
  return {
    id: "pod-abc",
    cpus: 2,
    memoryMib: 384,
    disks: [{ path: "/d/0.erofs", serial: "br-0", readOnly: true }],
    spec,
    log,
  };
}

/** A pod VM whose QEMU "exits" when told to, recording the order of what the adapter asks for. */
function fakePod() {
  const calls: string[] = [];
  let exit!: (e: VmExit) => void;
  const exited = new Promise<VmExit>((r) => {
    exit = r;
  });
  let stopCalls = 0;
  const pod = {
    vm: {
      guest: { service: () => ({}) },
      pids: { qemu: 4242, vhostDeviceVsock: 4243 },
      exited,
      listen: () => Promise.reject(new Error("not used")),
    },
    network: {
      attachment: {
        mode: "managed",
        netns: "/run/netns/beetroot-0123456789abcdef",
        guestConfig: {
          interfaces: [{ name: "eth0", mac: "02:00:0a:7b:00:07", mtu: 1500, addresses: ["10.123.0.7/16"] }],
        },
      },
    },
    stop: async (o?: { timeoutMs?: number }) => {
      stopCalls++;
      calls.push(`stop ${o?.timeoutMs ?? "-"}`);
      exit({ state: "stopped" });
      return { state: "stopped" } as VmExit;
    },
  };
  return {
    pod: pod as unknown as PodVm,
    calls,
    crash: () => exit({ state: "failed", error: new Error("QEMU exited (signal SIGKILL)") }),
    stopCalls: () => stopCalls,
  };
}

describe("QemuVmmAdapter", () => {
  it("boots the pod VM with the sandbox's spec, the VM id as CNI container id, and reports its network", async () => {
    const f = fakePod();
    let seen: PodVmOptions | undefined;
    const adapter = new QemuVmmAdapter(log, testPaths(), {
      resolveHost: async () => host(),
      launchPodVm: async (o) => {
        seen = o;
        return f.pod;
      },
    });
    const vm = await adapter.launch(request());
    expect(seen?.ociSpec).toBe(managedSpec);
    expect(seen?.containerId).toBe("pod-abc");
    expect(seen?.spec).toMatchObject({
      id: "pod-abc",
      kernel: "/k/vmlinux",
      rootImage: "/k/root.erofs",
      cpus: 2,
      memoryMiB: 384,
      accel: "tcg",
      disks: [{ id: "br-0", path: "/d/0.erofs", readonly: true }],
    });
    expect(vm.pid).toBe(4242);
    expect(vm.network).toEqual({
      mode: "managed",
      netns: "/run/netns/beetroot-0123456789abcdef",
      addresses: ["10.123.0.7/16"],
    });
  });

  it("stop() releases the pod VM once (VM, then its network), with the grace as timeout", async () => {
    const f = fakePod();
    const adapter = new QemuVmmAdapter(log, testPaths(), {
      resolveHost: async () => host(),
      launchPodVm: async () => f.pod,
    });
    const vm = await adapter.launch(request());
    await Promise.all([vm.stop({ graceSeconds: 2 }), vm.stop()]);
    await vm.exited;
    expect(f.calls).toEqual(["stop 2000"]);
  });

  it("an unexpected VM exit releases the pod network before `exited` settles", async () => {
    const f = fakePod();
    const adapter = new QemuVmmAdapter(log, testPaths(), {
      resolveHost: async () => host(),
      launchPodVm: async () => f.pod,
    });
    const vm = await adapter.launch(request());
    let settled = false;
    void vm.exited.then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    f.crash();
    await vm.exited;
    expect(f.stopCalls()).toBe(1);
    // A later stop (the shim's shutdown) does not release twice.
    await vm.stop();
    expect(f.stopCalls()).toBe(1);
  });

  it("maps network errors to the gRPC code containerd should see", async () => {
    for (const [code, expected] of [
      ["InvalidArgument", Code.InvalidArgument],
      ["ResourceExhausted", Code.ResourceExhausted],
      ["NotFound", Code.NotFound],
      ["FailedPrecondition", Code.FailedPrecondition],
      ["Unavailable", Code.Unavailable],
    ] as const) {
      const adapter = new QemuVmmAdapter(log, testPaths(), {
        resolveHost: async () => host(),
        launchPodVm: async () => {
          throw new NetworkError(code, `cni said no (${code})`);
        },
      });
      const err = await adapter.launch(request()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TtrpcError);
      expect((err as TtrpcError).code).toBe(expected);
      expect((err as TtrpcError).message).toBe(`cni said no (${code})`);
    }
    expect(launchError(new Error("QEMU exited (code 1)")).code).toBe(Code.Internal);
    expect(launchError(new TtrpcError(Code.Unavailable, "x")).code).toBe(Code.Unavailable);
  });

  it("a host without assets is FailedPrecondition, and the next launch resolves again", async () => {
    let attempts = 0;
    const f = fakePod();
    const adapter = new QemuVmmAdapter(log, testPaths(), {
      resolveHost: async () => {
        attempts++;
        if (attempts === 1) throw new Error("no guest image: run `npx beetroot build guest`");
        return host();
      },
      launchPodVm: async () => f.pod,
    });
    const err = await adapter.launch(request()).catch((e: unknown) => e);
    expect((err as TtrpcError).code).toBe(Code.FailedPrecondition);
    expect((err as TtrpcError).message).toMatch(/cannot boot a VM: no guest image/);
    await adapter.launch(request());
    expect(attempts).toBe(2);
  });

  it("refuses host networking (no network namespace) before anything is made (real launchPodVm)", async () => {
    const paths = testPaths();
    const adapter = new QemuVmmAdapter(log, paths, { resolveHost: async () => host() });
    const err = await adapter
      .launch(request({ linux: { namespaces: [{ type: "pid" }, { type: "mount" }] } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TtrpcError);
    expect((err as TtrpcError).code).toBe(Code.InvalidArgument);
    expect((err as TtrpcError).message).toMatch(/cannot share the host's network stack/);
    expect(listOwners(paths)).toEqual([]);
    expect(existsSync(join(paths.runDir, "vm", "pod-abc"))).toBe(false);
  });
});
