import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { System } from "../api/gen/beetroot/guest/v1/system_pb.ts";
import { guestImageArtifact } from "../guest/build/artifact.ts";
import { beetrootPaths } from "../internal/config/paths.ts";
import { loadHostDeps } from "../internal/hostdeps/index.ts";
import { hostTscKhz, kernelArtifact } from "../internal/kernel/index.ts";
import { createLogger } from "../internal/log/logger.ts";
import { Code, TtrpcError } from "../internal/ttrpc/index.ts";
import { spawnChild, terminateChild } from "../internal/vm/child.ts";
import { QemuVmm } from "../internal/vm/launcher.ts";
import { buildKernelCmdline, buildQemuArgs } from "../internal/vm/qemu-args.ts";
import type { Vm } from "../internal/vm/vm.ts";
import pkg from "../package.json" with { type: "json" };
import { skipReason } from "./fixtures/skip.ts";
import { missingVmAssets } from "./vm-support.ts";

/**
 * The guest image booted for real: beetroot's kernel under TCG, vminitd as PID 1 on Bun dialling
 * back over vhost-device-vsock, the System service answering, and the binder round trip proving the
 * kernel's binder driver works between two guest processes.
 */
const reason = skipReason(import.meta.url, missingVmAssets());

describe.skipIf(reason)("the guest image in a micro-VM", () => {
  let vm: Vm;
  let runDir: string;
  const bootedAt = Date.now();

  beforeAll(async () => {
    const deps = loadHostDeps();
    // Short: unix socket paths are limited to 107 bytes.
    runDir = mkdtempSync(join(tmpdir(), "bg-"));
    const paths = beetrootPaths({
      ...process.env,
      BEETROOT_RUN_DIR: runDir,
      BEETROOT_LIB_DIR: join(runDir, "lib"),
    });
    const vmm = new QemuVmm({
      qemu: deps.qemu,
      vhostDeviceVsock: deps.vhostDeviceVsock,
      paths,
      log: createLogger({ fd: null }),
    });
    const tsc = await hostTscKhz().catch(() => undefined);
    vm = await vmm.launch({
      id: `guest-test-${process.pid}`,
      kernel: kernelArtifact().vmlinux,
      rootImage: guestImageArtifact().image,
      cpus: 2,
      memoryMiB: 512,
      // /dev/kvm on these machines is a PVM device that crashes stock kernels: TCG it is.
      accel: "tcg",
      tscKhz: tsc?.khz,
      bootTimeoutMs: 60_000,
    });
    const t = vm.timings;
    console.log(
      `guest booted (TCG): first RPC answered ${t.totalMs.toFixed(0)} ms after QEMU spawn; ` +
        `vminitd started at guest uptime ${t.guestVminitdStartS.toFixed(2)} s, dialling at ${t.guestReadyS.toFixed(2)} s, ` +
        `connected after ${t.guestConnectedMs.toFixed(0)} ms host time`,
    );
  });

  afterAll(async () => {
    await vm?.kill();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("answers Info with what runs in the guest", async () => {
    const info = await vm.guest.service(System).info({});
    expect(info.vminitdVersion).toBe(pkg.version);
    expect(info.bunVersion).toBe(guestImageArtifact().meta.bunVersion);
    expect(info.kernelRelease).toBe(kernelArtifact().version);
    expect(info.crunVersion).toBe(guestImageArtifact().meta.crunVersion);
    expect(info.imageFingerprint).toBe(guestImageArtifact().fingerprint);
    expect(info.cpus).toBe(2);
    expect(Number(info.memoryBytes)).toBeGreaterThan(400 * 1024 * 1024);
    for (const cap of [
      "binderfs",
      "erofs",
      "overlay",
      "cgroup2",
      "cgroup2.memory",
      "cgroup2.pids",
      "vsock",
    ]) {
      expect(info.capabilities).toContain(cap);
    }
    expect(info.initExecUptimeSeconds).toBeGreaterThan(0);
    expect(info.vminitdStartUptimeSeconds).toBeGreaterThan(info.initExecUptimeSeconds);
    expect(info.readyUptimeSeconds).toBeGreaterThanOrEqual(info.vminitdStartUptimeSeconds);
  });

  it("reports healthy", async () => {
    const h = await vm.guest.service(System).health({});
    expect(h.ok).toBe(true);
    expect(h.detail).toMatch(/^uptime=/);
  });

  it("round-trips a binder transaction between two guest processes", async () => {
    const r = await vm.guest.service(System).selfTest({ name: "binder" }, { timeoutMs: 60_000 });
    console.log(r.output.trim());
    expect(r.output).toContain("BINDER_CTL_ADD allocated /dev/binderfs/selftest-");
    expect(r.output).toContain("OK: transaction and reply round-tripped");
    expect(r).toMatchObject({ ok: true, exitCode: 0 });
  });

  it("refuses an unknown self-test with NotFound", async () => {
    const err = await vm.guest
      .service(System)
      .selfTest({ name: "does-not-exist" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TtrpcError);
    expect((err as TtrpcError).code).toBe(Code.NotFound);
  });

  it("set the clock and hostname from the command line and logged no errors", () => {
    const console_ = readFileSync(vm.consoleLog, "utf8");
    const start = /time=(\S+) level=info msg="vminitd starting".*hostname=(\S+)/.exec(console_);
    expect(start, console_).not.toBeNull();
    const loggedAt = Date.parse(start?.[1] ?? "");
    expect(Math.abs(loggedAt - bootedAt)).toBeLessThan(120_000);
    expect(start?.[2]).toBe(`guest-test-${process.pid}`);
    expect(console_).not.toMatch(/level=error/);
  });

  it("powers off on System.Shutdown", async () => {
    // The launcher removes the run dir once QEMU is gone; an open descriptor still reads the log.
    const fd = openSync(vm.consoleLog, "r");
    try {
      const started = performance.now();
      const exit = await vm.stop({ timeoutMs: 30_000 });
      const ms = performance.now() - started;
      expect(exit.state).toBe("stopped");
      const console_ = readFileSync(fd, "utf8");
      expect(console_).toMatch(/msg="shutting down" src=vminitd reason="System.Shutdown from the host"/);
      expect(console_).toMatch(/msg="powering off"/);
      expect(console_).toMatch(/reboot: Power down/);
      console.log(`System.Shutdown → QEMU exit: ${ms.toFixed(0)} ms`);
    } finally {
      closeSync(fd);
    }
  });
});

describe.skipIf(reason)("a guest whose host never answers", () => {
  it("powers itself off after the dial timeout instead of lingering as an orphan", async () => {
    const deps = loadHostDeps();
    const dir = mkdtempSync(join(tmpdir(), "bo-"));
    const vhostUser = join(dir, "vu.sock");
    const consoleLog = join(dir, "console.log");
    // vsock works, but nobody listens on <uds>_1024: every dial is refused.
    const vsockd = await spawnChild(
      deps.vhostDeviceVsock,
      ["--vm", `guest-cid=3,socket=${vhostUser},uds-path=${join(dir, "v.sock")}`],
      join(dir, "vsockd.log"),
    );
    try {
      const deadline = Date.now() + 5000;
      while (!existsSync(vhostUser) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const dialTimeoutMs = 3000;
      const cmdline = buildKernelCmdline({
        hostname: "orphan",
        port: 1024,
        hostTimeMs: Date.now(),
        dialTimeoutMs,
        tscKhz: (await hostTscKhz().catch(() => undefined))?.khz,
        init: "/sbin/init",
        verbose: false,
        extra: [],
      });
      const args = buildQemuArgs({
        kernel: kernelArtifact().vmlinux,
        cmdline,
        accel: "tcg",
        cpus: 1,
        memoryMiB: 256,
        disks: [{ id: "root", path: guestImageArtifact().image, readonly: true }],
        qmpSocket: join(dir, "qmp.sock"),
        consoleLog,
        vhostUserSocket: vhostUser,
      });
      const started = performance.now();
      const qemu = await spawnChild(deps.qemu, args, join(dir, "qemu.log"));
      const timer = setTimeout(() => qemu.process.kill("SIGKILL"), 60_000);
      const exit = await qemu.exited;
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      const console_ = readFileSync(consoleLog, "utf8");
      console.log(`unreachable host: QEMU exited on its own after ${seconds.toFixed(1)} s`);
      expect(exit, console_).toEqual({ code: 0, signal: null });
      expect(console_).toMatch(
        /msg="giving up on the host" src=vminitd reason="host unreachable after \d+ attempts/,
      );
      expect(console_).toMatch(/msg="powering off"/);
    } finally {
      await terminateChild(vsockd, 1000);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
