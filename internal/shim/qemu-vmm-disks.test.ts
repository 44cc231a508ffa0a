import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_VM_CONFIG } from "../config/config.ts";
import { beetrootPaths } from "../config/paths.ts";
import { createLogger } from "../log/logger.ts";
import { Code, TtrpcError } from "../ttrpc/index.ts";
import type { PodVm } from "../vm/pod-network.ts";
import type { VmExit } from "../vm/vm.ts";
import { QemuVmmAdapter } from "./qemu-vmm.ts";
import type { Vm } from "./vmm.ts";

/**
 * The adapter's attachDisks/detachDisks onto internal/vm's disk share (Vm.shareFile/unshareFile),
 * with a fake at the launchPodVm boundary; the real share is exercised by test/shim-pod-join.test.ts.
 */
const log = createLogger({ fd: null });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function adapterWithFakeShare(failOn?: string) {
  const calls: string[] = [];
  const shared = new Set<string>();
  const pod = {
    vm: {
      guest: { service: () => ({}) },
      pids: { qemu: 4242, vhostDeviceVsock: 4243 },
      exited: new Promise<VmExit>(() => {}),
      shareFile: async (name: string, path: string) => {
        calls.push(`share ${name} ${path}`);
        if (name === failOn) throw new Error(`mount: ${path}: permission denied`);
        shared.add(name);
      },
      unshareFile: async (name: string) => {
        calls.push(`unshare ${name}`);
        shared.delete(name);
      },
    },
    network: {
      attachment: { mode: "managed", netns: "/run/netns/x", guestConfig: { interfaces: [] } },
    },
    stop: async () => ({ state: "stopped" }) as VmExit,
  } as unknown as PodVm;
  const root = mkdtempSync(join(tmpdir(), "bqvd-"));
  dirs.push(root);
  const paths = beetrootPaths({
    ...process.env,
    BEETROOT_LIB_DIR: join(root, "lib"),
    BEETROOT_RUN_DIR: root,
  });
  const adapter = new QemuVmmAdapter(log, paths, {
    resolveHost: async () => ({
      vmm: { launch: () => Promise.reject(new Error("unused")) },
      kernel: "/k/vmlinux",
      rootImage: "/k/root.erofs",
      accel: "tcg",
      tscKhz: undefined,
      config: { vm: DEFAULT_VM_CONFIG, source: "defaults" },
    }),
    launchPodVm: async () => pod,
  });
  const vm = await adapter.launch({
    id: "pod-abc",
    cpus: 1,
    memoryMib: 512,
    disks: [],
    spec: { linux: { namespaces: [{ type: "network" }] } },
    log,
  });
  return { vm: vm as Vm & Required<Pick<Vm, "attachDisks" | "detachDisks">>, calls, shared };
}

describe("QemuVmmAdapter disks after boot", () => {
  it("shares each disk under its serial and unshares on detach", async () => {
    const { vm, calls, shared } = await adapterWithFakeShare();
    await vm.attachDisks([
      { path: "/l/a.erofs", serial: "br-2", readOnly: true },
      { path: "/l/b.erofs", serial: "br-3", readOnly: true },
    ]);
    expect(calls).toEqual(["share br-2 /l/a.erofs", "share br-3 /l/b.erofs"]);
    expect([...shared]).toEqual(["br-2", "br-3"]);
    await vm.detachDisks(["br-2", "br-3"]);
    expect(shared.size).toBe(0);
  });

  it("all or nothing: a failure unshares what was shared and names the cause", async () => {
    const { vm, calls, shared } = await adapterWithFakeShare("br-3");
    await expect(
      vm.attachDisks([
        { path: "/l/a.erofs", serial: "br-2", readOnly: true },
        { path: "/l/b.erofs", serial: "br-3", readOnly: true },
      ]),
    ).rejects.toThrow("mount: /l/b.erofs: permission denied");
    expect(calls).toEqual(["share br-2 /l/a.erofs", "share br-3 /l/b.erofs", "unshare br-2"]);
    expect(shared.size).toBe(0);
  });

  it("refuses a writable disk before sharing anything (the share is read-only)", async () => {
    const { vm, calls } = await adapterWithFakeShare();
    const err = await vm
      .attachDisks([
        { path: "/l/a.erofs", serial: "br-2", readOnly: true },
        { path: "/l/rw.ext4", serial: "br-3", readOnly: false },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TtrpcError);
    expect((err as TtrpcError).code).toBe(Code.FailedPrecondition);
    expect((err as TtrpcError).message).toBe(
      "disk br-3 (/l/rw.ext4) is writable: a running VM takes read-only disks only",
    );
    expect(calls).toEqual([]);
  });
});
