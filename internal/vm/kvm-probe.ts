import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describeExit, spawnChild, tailFile, terminateChild } from "./child.ts";
import { buildCpio } from "./cpio.ts";
import { type Accelerator, CPU_MODEL, MICROVM_OPTIONS } from "./qemu-args.ts";
import { QmpClient } from "./qmp.ts";

/**
 * Does KVM actually run our guest on this host? `/dev/kvm` existing proves nothing: on PVM hosts
 * (KVM nested in a paravirtualised VM) the guest dies with "KVM internal error" and QEMU pauses
 * instead of exiting. So the probe boots the real guest kernel under `-accel kvm` into a tiny
 * busybox initramfs that prints a marker and powers off; only the marker counts as success.
 */
export interface KvmProbeResult {
  readonly ok: boolean;
  /** One line: why KVM is usable or not. */
  readonly reason: string;
  /** Milliseconds the probe boot took. */
  readonly elapsedMs: number;
  /** Console + QEMU stderr excerpt when it failed. */
  readonly evidence?: string;
}

export interface KvmProbeInputs {
  readonly qemu: string;
  readonly kernel: string;
  readonly busybox: string;
  readonly timeoutMs: number;
  /** Host TSC rate for `tsc_early_khz`: without it a microvm guest (no PIT) cannot calibrate its TSC. */
  readonly tscKhz?: number;
  readonly kvmDevice?: string;
}

export const PROBE_MARKER = "BEETROOT-KVM-PROBE-OK";

function probeInitramfs(busybox: string): Buffer {
  // The marker is assembled at run time so that the kernel echoing its command line or the script
  // text can never be mistaken for success.
  const script = [
    "#!/bin/busybox sh",
    `/bin/busybox printf '%s-%s\\n' BEETROOT-KVM-PROBE OK`,
    "/bin/busybox poweroff -f",
    "",
  ].join("\n");
  return buildCpio([
    { type: "dir", path: "bin", mode: 0o755 },
    { type: "dir", path: "dev", mode: 0o755 },
    { type: "dir", path: "proc", mode: 0o755 },
    { type: "char", path: "dev/console", mode: 0o600, major: 5, minor: 1 },
    { type: "file", path: "bin/busybox", mode: 0o755, data: readFileSync(busybox) },
    { type: "file", path: "init", mode: 0o755, data: Buffer.from(script) },
  ]);
}

/** KVM_INTERNAL_ERROR_* suberror codes (linux/kvm.h). */
const KVM_SUBERRORS: Readonly<Record<string, string>> = {
  "1": "emulation failure",
  "2": "simultaneous exceptions",
  "3": "event delivery failure",
  "4": "unexpected exit reason",
};

/** Picks the most telling line out of QEMU's stderr for the one-line reason. */
export function summarizeKvmFailure(stderr: string, status: string | undefined): string {
  const internal = /KVM internal error\. Suberror: (\d+)/.exec(stderr);
  if (internal) {
    const name = KVM_SUBERRORS[internal[1]!];
    return `KVM internal error (suberror ${internal[1]}${name ? `: ${name}` : ""})`;
  }
  const firstError = stderr
    .split("\n")
    .map((l) => l.trim())
    .find((l) => /error|fail|cannot|could not/i.test(l));
  if (firstError) return firstError.replace(/^qemu-system-x86_64: /, "");
  if (status) return `guest stopped in state "${status}"`;
  return "the guest did not reach its marker";
}

export async function probeKvm(inputs: KvmProbeInputs): Promise<KvmProbeResult> {
  const dev = inputs.kvmDevice ?? "/dev/kvm";
  if (!existsSync(dev)) return { ok: false, reason: `${dev} does not exist`, elapsedMs: 0 };
  try {
    accessSync(dev, constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, reason: `${dev} is not readable and writable by this user`, elapsedMs: 0 };
  }
  return probeBoot(inputs, "kvm");
}

/**
 * The probe boot itself, under either accelerator: under TCG it shows that the probe's kernel,
 * initramfs and marker work on this host, so a KVM failure is KVM's.
 */
export async function probeBoot(inputs: KvmProbeInputs, accel: Accelerator): Promise<KvmProbeResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);

  const dir = mkdtempSync(join(tmpdir(), "beetroot-kvm-probe-"));
  const consoleLog = join(dir, "console.log");
  const stderrLog = join(dir, "qemu.log");
  const qmpPath = join(dir, "qmp.sock");
  const initrd = join(dir, "initramfs.cpio");
  writeFileSync(initrd, probeInitramfs(inputs.busybox));
  writeFileSync(consoleLog, "");
  const args = [
    "-M",
    MICROVM_OPTIONS.join(","),
    "-accel",
    accel === "tcg" ? "tcg,thread=multi" : "kvm",
    "-cpu",
    CPU_MODEL[accel],
    "-m",
    "128M",
    "-smp",
    "1",
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-no-reboot",
    "-kernel",
    inputs.kernel,
    "-initrd",
    initrd,
    "-append",
    ["console=ttyS0 quiet panic=-1 rdinit=/init", inputs.tscKhz && `tsc_early_khz=${inputs.tscKhz}`]
      .filter(Boolean)
      .join(" "),
    "-chardev",
    `file,id=console,path=${consoleLog}`,
    "-serial",
    "chardev:console",
    "-qmp",
    `unix:${qmpPath},server=on,wait=off`,
  ];
  // Under coreutils' timeout: if our process dies mid-probe (Ctrl-C on doctor, a killed shim), a
  // hung probe QEMU still ends instead of spinning forever. SIGTERM to timeout reaches QEMU too.
  const hardLimit = String(Math.ceil(inputs.timeoutMs / 1000) + 5);
  const child = await spawnChild("timeout", ["--kill-after=2", hardLimit, inputs.qemu, ...args], stderrLog);
  let qmp: QmpClient | undefined;
  let status: string | undefined;
  try {
    const deadline = performance.now() + inputs.timeoutMs;
    let lastStatusCheck = 0;
    for (;;) {
      if (tailFile(consoleLog, 65536).includes(PROBE_MARKER)) {
        return {
          ok: true,
          reason: `a probe boot under KVM reached userspace in ${elapsed()} ms`,
          elapsedMs: elapsed(),
        };
      }
      if (child.exit) {
        await sleep(20); // let the last console bytes land
        if (tailFile(consoleLog, 65536).includes(PROBE_MARKER)) continue;
        const why = summarizeKvmFailure(tailFile(stderrLog), undefined);
        return fail(`QEMU exited (${describeExit(child.exit)}) before the marker: ${why}`);
      }
      if (performance.now() > deadline) {
        return fail(
          `no marker within ${inputs.timeoutMs} ms: ${summarizeKvmFailure(tailFile(stderrLog), status)}`,
        );
      }
      // A KVM internal error pauses QEMU rather than ending it: ask QMP what state it is in.
      if (performance.now() - lastStatusCheck > 200) {
        lastStatusCheck = performance.now();
        qmp ??= await QmpClient.connect(qmpPath, { timeoutMs: 2000 }).catch(() => undefined);
        const st = await qmp?.queryStatus(1000).catch(() => undefined);
        status = st?.status;
        if (status === "internal-error" || status === "guest-panicked") {
          return fail(summarizeKvmFailure(tailFile(stderrLog), status));
        }
      }
      await sleep(20);
    }
  } finally {
    qmp?.close();
    await terminateChild(child, 2000);
    rmSync(dir, { recursive: true, force: true });
  }

  function fail(reason: string): KvmProbeResult {
    const evidence = [
      tailFile(stderrLog, 1500) && `--- QEMU stderr ---\n${tailFile(stderrLog, 1500)}`,
      tailFile(consoleLog, 1500) && `--- console ---\n${tailFile(consoleLog, 1500)}`,
    ]
      .filter(Boolean)
      .join("\n");
    return { ok: false, reason, elapsedMs: elapsed(), ...(evidence && { evidence }) };
  }
}
