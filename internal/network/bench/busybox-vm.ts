import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { type GuestNetworkConfig, renderResolvConf } from "../../rtnetlink/netconfig.ts";
import type { VmNic } from "../network.ts";
import { qemuNicArgs } from "../qemu.ts";

/**
 * A throwaway micro-VM on a pod NIC: beetroot's guest kernel with a busybox initramfs whose
 * init applies the guest network config (with busybox `ip`, standing in for vminitd), reports
 * what the guest sees, and serves a byte-counting sink (port 5001) and an echo (port 5002)
 * with busybox nc. QEMU gets the TAP descriptor as fd 3, exactly as the launcher passes it.
 */
export const SINK_PORT = 5001;
export const ECHO_PORT = 5002;

const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** Shell commands that apply a guest config with busybox ip (values are validated by parseGuestNetworkConfig). */
export function busyboxNetScript(cfg: GuestNetworkConfig): string {
  const out = ["ip link set dev lo up"];
  for (const i of cfg.interfaces) {
    out.push(
      `IF=; for d in /sys/class/net/*; do [ "$(cat $d/address)" = ${q(i.mac)} ] && IF=\${d##*/}; done`,
      `[ -n "$IF" ] || echo "BEETROOT-ERROR no NIC with MAC ${i.mac}"`,
      `[ "$IF" = ${q(i.name)} ] || ip link set dev "$IF" name ${q(i.name)}`,
      `ip link set dev ${q(i.name)} mtu ${i.mtu}`,
      ...i.addresses.map((a) => `ip addr add ${q(a)} dev ${q(i.name)}`),
      `ip link set dev ${q(i.name)} up`,
    );
  }
  for (const r of cfg.routes) {
    const parts = ["ip route add", q(r.dst)];
    if (r.gateway) parts.push("via", q(r.gateway));
    parts.push("dev", q(r.interface));
    if (r.scope) parts.push("scope", r.scope);
    if (r.metric !== undefined) parts.push("metric", String(r.metric));
    out.push(parts.join(" "));
  }
  out.push(`cat > /etc/resolv.conf <<'EOF_RESOLV'\n${renderResolvConf(cfg.dns)}EOF_RESOLV`);
  return `${out.join("\n")}\n`;
}

function initScript(cfg: GuestNetworkConfig): string {
  const gw = cfg.routes.find((r) => r.gateway && /^(0\.0\.0\.0|::)\/0$/.test(r.dst))?.gateway ?? "";
  const nic = cfg.interfaces[0]?.name ?? "eth0";
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp /etc
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
. /net.sh
echo "BEETROOT-NIC $(cat /sys/class/net/${nic}/address) $(cat /sys/class/net/${nic}/mtu)"
echo "BEETROOT-ADDR $(ip -o addr show dev ${nic} scope global | awk '{print $4}' | tr '\\n' ' ')"
sed 's/^/BEETROOT-RESOLV /' /etc/resolv.conf
echo "BEETROOT-PING $(ping -c 3 -W 5 ${gw} 2>&1 | grep 'packets received')"
nc -ll -p ${SINK_PORT} -e wc -c &
nc -ll -p ${ECHO_PORT} -e cat &
sleep 1
echo BEETROOT-READY
while true; do sleep 3600; done
`;
}

async function buildInitramfs(busybox: string, cfg: GuestNetworkConfig, dir: string): Promise<string> {
  const root = join(dir, "root");
  mkdirSync(join(root, "bin"), { recursive: true });
  copyFileSync(busybox, join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  writeFileSync(join(root, "init"), initScript(cfg), { mode: 0o755 });
  writeFileSync(join(root, "net.sh"), busyboxNetScript(cfg));
  const cpio = join(dir, "initramfs.cpio");
  await execa("bash", [
    "-c",
    'cd "$1" && find . -print0 | cpio --null -o -H newc --quiet > "$2"',
    "x",
    root,
    cpio,
  ]);
  return cpio;
}

export interface BusyboxVm {
  /** Console lines tagged `BEETROOT-<tag> ...` so far, without the tag. */
  tagged(tag: string): string[];
  readonly console: () => string;
  readonly bootSeconds: number;
  stop(): Promise<void>;
}

export async function bootBusyboxVm(opts: {
  qemu: string;
  busybox: string;
  vmlinux: string;
  tscKhz?: number;
  nic: VmNic;
  config: GuestNetworkConfig;
  timeoutMs?: number;
}): Promise<BusyboxVm> {
  const dir = mkdtempSync(join(tmpdir(), "beetroot-netvm-"));
  let child: ChildProcess | undefined;
  try {
    const initrd = await buildInitramfs(opts.busybox, opts.config, dir);
    const append = ["console=ttyS0", "panic=-1", "reboot=t", "quiet"];
    if (opts.tscKhz) append.push(`tsc_early_khz=${opts.tscKhz}`);
    const started = performance.now();
    const proc = spawn(
      opts.qemu,
      [
        ...["-M", "microvm", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "256M"],
        ...["-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"],
        ...["-kernel", opts.vmlinux, "-initrd", initrd, "-append", append.join(" ")],
        ...qemuNicArgs(opts.nic, 3),
      ],
      { stdio: ["ignore", "pipe", "pipe", opts.nic.fd] },
    );
    child = proc;
    let out = "";
    proc.stdout?.on("data", (d) => {
      out += d.toString();
    });
    proc.stderr?.on("data", (d) => {
      out += d.toString();
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`VM not ready within ${opts.timeoutMs ?? 120_000} ms:\n${out.slice(-3000)}`)),
        opts.timeoutMs ?? 120_000,
      );
      const check = () => {
        if (/^BEETROOT-READY/m.test(out)) {
          clearTimeout(t);
          resolve();
        }
      };
      proc.stdout?.on("data", check);
      proc.once("exit", (code) => {
        clearTimeout(t);
        reject(new Error(`QEMU exited ${code} before the guest was ready:\n${out.slice(-3000)}`));
      });
    });
    const bootSeconds = (performance.now() - started) / 1000;
    return {
      bootSeconds,
      console: () => out,
      tagged: (tag) =>
        out
          .split(/\r?\n/)
          .filter((l) => l.startsWith(`BEETROOT-${tag} `) || l === `BEETROOT-${tag}`)
          .map((l) => l.slice(`BEETROOT-${tag}`.length).trim()),
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill("SIGKILL");
          await new Promise((r) => proc.once("exit", r));
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
