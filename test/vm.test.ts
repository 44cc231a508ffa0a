import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { System } from "../api/gen/beetroot/guest/v1/system_pb.ts";
import { VmFailedError } from "../internal/vm/launcher.ts";
import type { Vm } from "../internal/vm/vm.ts";
import { recordSkip, skipReason } from "./fixtures/skip.ts";
import {
  leftovers,
  missingVmAssets,
  NOTHING_LEFT,
  processesMentioning,
  type VmTestEnv,
  vmTestEnv,
} from "./vm-support.ts";

/**
 * The launcher against real QEMU, vhost-device-vsock, the built kernel and guest image: a boot
 * answered by vminitd, a stop that leaves nothing, and QEMU dying or going silent under a running
 * VM — detected, reported with evidence, and cleaned up.
 */
const missing = skipReason(import.meta.url, missingVmAssets());

describe.skipIf(missing)("VM launcher (real QEMU)", () => {
  let env: VmTestEnv;
  beforeAll(async () => {
    env = await vmTestEnv();
  });
  afterAll(() => env?.cleanup());

  it("boots, answers Info and Health over vsock TTRPC, and stops leaving nothing behind", async () => {
    const states: string[] = [];
    const vm = await env.host.vmm.launch(env.host.spec("boot-1"));
    vm.onStateChange((to) => states.push(to));
    expect(vm.state).toBe("running");
    const t = vm.timings;
    console.log(
      `boot (${vm.accel}): ${t.totalMs.toFixed(0)} ms spawn→first RPC; QMP ${t.qmpReadyMs.toFixed(0)} ms; ` +
        `vminitd start at guest ${t.guestVminitdStartS.toFixed(2)} s, dialling at ${t.guestReadyS.toFixed(2)} s`,
    );
    expect(vm.info.kernelRelease).toBe(env.host.kernel.version);
    const health = await vm.guest.service(System).health({}, { timeoutMs: 5000 });
    expect(health.ok).toBe(true);
    const again = await vm.guest.service(System).info({}, { timeoutMs: 5000 });
    expect(again.uptimeSeconds).toBeGreaterThanOrEqual(vm.info.uptimeSeconds);
    expect(existsSync(vm.consoleLog)).toBe(true);
    const pids = vm.pids;
    expect(processesMentioning(env.root).sort()).toEqual([pids.qemu, pids.vhostDeviceVsock].sort());

    const exit = await vm.stop();
    expect(exit).toEqual({ state: "stopped" });
    expect(states).toEqual(["stopping", "stopped"]);
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
    await expect(vm.connect(1234)).rejects.toThrow(/is stopped/);
  });

  it("detects a QEMU killed under a running VM, says so with the console, and cleans up", async () => {
    const vm: Vm = await env.host.vmm.launch(env.host.spec("kill-1"));
    process.kill(vm.pids.qemu, "SIGKILL");
    const exit = await vm.exited;
    expect(exit.state).toBe("failed");
    expect(vm.state).toBe("failed");
    expect(exit.error).toBeInstanceOf(VmFailedError);
    expect(exit.error?.message).toMatch(/^VM kill-1 failed: QEMU exited \(killed by SIGKILL\)/);
    // The console tail is in the error: the evidence survives the cleanup that removed the log.
    expect((exit.error as VmFailedError).consoleTail).toMatch(/\S/);
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
  });

  it("fails a VM whose QEMU stops answering QMP instead of hanging", async () => {
    const vm = await env.host.vmm.launch(env.host.spec("silent-1"));
    const started = Date.now();
    process.kill(vm.pids.qemu, "SIGSTOP");
    const exit = await vm.exited;
    const ms = Date.now() - started;
    console.log(`stopped QEMU detected after ${ms} ms`);
    expect(exit.error?.message).toMatch(/QEMU stopped answering QMP/);
    expect(ms).toBeLessThan(15_000);
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
  });

  it("refuses a second VM with a live VM's id and leaves the first one alone", async () => {
    const first = await env.host.vmm.launch(env.host.spec("dup-1"));
    await expect(env.host.vmm.launch(env.host.spec("dup-1"))).rejects.toThrow(/ledger of "vm-dup-1" is open/);
    expect(first.state).toBe("running");
    expect((await first.guest.service(System).health({}, { timeoutMs: 5000 })).ok).toBe(true);
    expect(existsSync(first.consoleLog)).toBe(true);
    expect(await first.stop()).toEqual({ state: "stopped" });
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
  });

  it("kill() ends a running VM at once", async () => {
    const vm = await env.host.vmm.launch(env.host.spec("kill-2"));
    const started = Date.now();
    expect(await vm.kill()).toEqual({ state: "stopped" });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
  });

  it("a launch aborted by its caller during boot releases everything", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await expect(env.host.vmm.launch(env.host.spec("abort-1"), { signal: ac.signal })).rejects.toThrow(
      /boot cancelled/,
    );
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
  });

  it("under -accel kvm on a host whose KVM probe failed, fails fast with QEMU's reason", async (ctx) => {
    if (env.host.accel.accel === "kvm") {
      const reason = "KVM works on this host: a failing KVM boot cannot be shown here";
      recordSkip(import.meta.url, { cause: "hardware", reason });
      ctx.skip(reason);
    }
    const started = Date.now();
    const err = await env.host.vmm.launch(env.host.spec("kvm-1", { accel: "kvm" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmFailedError);
    console.log(
      `KVM boot failure reported after ${Date.now() - started} ms: ${(err as Error).message.split("\n")[0]}`,
    );
    expect((err as Error).message).toMatch(/QEMU exited|KVM internal error|state "internal-error"/);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
  });
});
