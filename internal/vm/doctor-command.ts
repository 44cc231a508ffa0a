import { existsSync } from "node:fs";
import { availableParallelism, release } from "node:os";
import { parseArgs } from "node:util";
import { guestImageArtifact } from "../../guest/build/artifact.ts";
import { loadConfig } from "../config/config.ts";
import { beetrootPaths } from "../config/paths.ts";
import { type HostDeps, loadHostDeps } from "../hostdeps/index.ts";
import { hostTscKhz, kernelArtifact } from "../kernel/index.ts";
import { LedgerBusyError, listOwners, openLedger } from "../state/ledger.ts";
import { type AccelDecision, decideAccel, qemuVersion } from "./accel.ts";
import { checkErofsImage, checkKernel } from "./assets-check.ts";

/**
 * `beetroot doctor [--json] [--reprobe]`: what this host can do for beetroot, and what to run
 * where it cannot. Checks are independent, so one missing piece does not hide the others. Exit
 * status 0 means VMs can boot.
 */
interface Check {
  readonly name: string;
  readonly ok: boolean;
  /** Required for booting VMs (a failed optional check is information only). */
  readonly required: boolean;
  readonly detail: string;
}

function attempt(name: string, required: boolean, fn: () => string): Check {
  try {
    return { name, ok: true, required, detail: fn() };
  } catch (err) {
    return { name, ok: false, required, detail: err instanceof Error ? err.message : String(err) };
  }
}

async function attemptAsync(name: string, required: boolean, fn: () => Promise<string>): Promise<Check> {
  try {
    return { name, ok: true, required, detail: await fn() };
  } catch (err) {
    return { name, ok: false, required, detail: err instanceof Error ? err.message : String(err) };
  }
}

async function ledgerSummary(paths: ReturnType<typeof beetrootPaths>): Promise<string> {
  const owners = listOwners(paths);
  let alive = 0;
  let leftovers = 0;
  for (const owner of owners) {
    try {
      const l = await openLedger(owner, paths, { create: false, waitMs: 0 });
      leftovers += (await l.list()).length > 0 ? 1 : 0;
      await l.close();
    } catch (err) {
      if (err instanceof LedgerBusyError) alive++;
    }
  }
  const dead = owners.length - alive;
  return `${owners.length} owner(s): ${alive} alive, ${dead} gone${leftovers ? ` (${leftovers} with leftovers: run \`beetroot gc\`)` : ""}`;
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { json: { type: "boolean", default: false }, reprobe: { type: "boolean", default: false } },
  });
  const paths = beetrootPaths();
  const checks: Check[] = [];
  checks.push({
    name: "host",
    ok: true,
    required: false,
    detail: `Linux ${release()}, ${availableParallelism()} CPUs`,
  });

  let deps: HostDeps | undefined;
  checks.push(
    attempt("host deps", true, () => {
      deps = loadHostDeps(paths);
      return deps.manifestPath;
    }),
  );
  if (deps) {
    const d = deps;
    checks.push(await attemptAsync("qemu", true, async () => `${d.qemu} (${await qemuVersion(d.qemu)})`));
    checks.push(
      attempt("vhost-device-vsock", true, () => `${d.vhostDeviceVsock} (${d.vhostDeviceVsockVersion})`),
    );
    checks.push(attempt("busybox", false, () => `${d.busyboxStatic} (for the KVM probe)`));
  }
  let kernel: ReturnType<typeof kernelArtifact> | undefined;
  checks.push(
    attempt("guest kernel", true, () => {
      kernel = kernelArtifact(paths);
      checkKernel(kernel.vmlinux);
      return `${kernel.vmlinux} (${kernel.version})`;
    }),
  );
  checks.push(
    attempt("guest image", true, () => {
      const img = guestImageArtifact(paths);
      checkErofsImage(img.image);
      return `${img.image} (${(img.meta.imageBytes / 2 ** 20).toFixed(1)} MiB, Bun ${img.meta.bunVersion}, crun ${img.meta.crunVersion})`;
    }),
  );
  let tscKhz: number | undefined;
  checks.push(
    await attemptAsync("tsc", true, async () => {
      const t = await hostTscKhz();
      tscKhz = t.khz;
      return `${t.khz} kHz (from ${t.source}), passed as tsc_early_khz`;
    }),
  );
  let config: ReturnType<typeof loadConfig> | undefined;
  checks.push(
    attempt("config", true, () => {
      config = loadConfig(paths);
      const c = config.vm;
      return `${config.source === "defaults" ? `${paths.configFile} absent, defaults` : config.source}: accel=${c.accel} cpus=${c.cpus} memory=${c.memoryMiB}MiB`;
    }),
  );
  checks.push(
    attempt("/dev/kvm", false, () =>
      existsSync("/dev/kvm") ? "present (proves nothing: see the probe)" : "absent",
    ),
  );

  let decision: AccelDecision | undefined;
  if (deps && kernel && config) {
    const [d, k, c] = [deps, kernel, config];
    checks.push(
      await attemptAsync("accel", true, async () => {
        decision = await decideAccel({
          configured: c.vm.accel,
          cacheDir: paths.cacheDir,
          guestKernelId: k.fingerprint,
          reprobe: values.reprobe,
          probeInputs: {
            qemu: d.qemu,
            kernel: k.vmlinux,
            busybox: d.busyboxStatic,
            timeoutMs: c.vm.kvmProbeTimeoutMs,
            tscKhz,
          },
        });
        const p = decision.probe;
        const probe = p
          ? `; KVM probe ${p.ok ? "passed" : "failed"}: ${p.reason} (${p.cached ? `cached from ${p.probedAt}` : `just now, ${p.elapsedMs} ms`})`
          : "";
        return `${decision.accel.toUpperCase()}${probe}`;
      }),
    );
    if (decision?.announcement)
      checks.push({ name: "TCG", ok: true, required: false, detail: decision.announcement });
  }
  checks.push(await attemptAsync("ledger", false, () => ledgerSummary(paths)));

  const ready = checks.every((c) => c.ok || !c.required);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ready, checks, probe: decision?.probe }, null, 2)}\n`);
  } else {
    const width = Math.max(...checks.map((c) => c.name.length));
    for (const c of checks) {
      const mark = c.ok ? "ok  " : c.required ? "FAIL" : "warn";
      process.stdout.write(`${mark}  ${c.name.padEnd(width)}  ${c.detail}\n`);
    }
    process.stdout.write(
      ready
        ? "\nbeetroot can boot VMs on this host.\n"
        : "\nbeetroot cannot boot VMs yet: fix the FAIL lines above.\n",
    );
  }
  return ready ? 0 : 1;
}
