/**
 * Disks by virtio-blk serial: the host names each disk it attaches ("br-3") and never a device
 * path; the guest finds /dev/vdX by reading /sys/block/vdX/serial.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export class DiskNotFoundError extends Error {
  constructor(serial: string, seen: readonly string[]) {
    super(`no virtio disk with serial "${serial}" (disks: ${seen.length ? seen.join(", ") : "none"})`);
    this.name = "DiskNotFoundError";
  }
}

export function findDiskBySerial(serial: string, sysBlock = "/sys/block", devDir = "/dev"): string {
  const seen: string[] = [];
  for (const name of readdirSync(sysBlock).sort()) {
    const file = join(sysBlock, name, "serial");
    if (!existsSync(file)) continue;
    const s = readFileSync(file, "utf8").trim();
    seen.push(`${name}=${s}`);
    if (s === serial) return join(devDir, name);
  }
  throw new DiskNotFoundError(serial, seen);
}
