/**
 * Disks by serial: the host names each disk it attaches ("br-3") and never a device path.
 * Disks the VM booted with are virtio-blk devices: the guest finds /dev/vdX by reading
 * /sys/block/vdX/serial. Disks given to a running VM (a container joining its pod with new image
 * layers; microvm cannot hot-plug virtio-blk) are regular files named by their serial on the
 * read-only virtio-9p share with tag `beetroot-disks` (internal/vm/disk-share.ts), mounted on
 * first use; EROFS mounts straight from such a file (CONFIG_EROFS_FS_BACKED_BY_FILE).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** The 9p mount tag of the host's disk share (internal/vm/disk-share.ts DISK_SHARE_TAG). */
export const DISK_SHARE_TAG = "beetroot-disks";
export const DISK_SHARE_DIR = "/run/beetroot/disks";
/** Filesystems that mount from a regular file; the others need a block device. */
const FILE_BACKED_FS = new Set(["erofs"]);

export class DiskNotFoundError extends Error {
  constructor(serial: string, seen: readonly string[], share?: string) {
    super(
      `no virtio disk with serial "${serial}" (disks: ${seen.length ? seen.join(", ") : "none"})` +
        (share === undefined ? "" : ` and ${share}`),
    );
    this.name = "DiskNotFoundError";
  }
}

/** The virtio-blk device with `serial`, or undefined; `seen` collects `vdX=serial` for errors. */
function scanBlockDevices(
  serial: string,
  sysBlock: string,
  devDir: string,
  seen: string[],
): string | undefined {
  for (const name of readdirSync(sysBlock).sort()) {
    const file = join(sysBlock, name, "serial");
    if (!existsSync(file)) continue;
    const s = readFileSync(file, "utf8").trim();
    seen.push(`${name}=${s}`);
    if (s === serial) return join(devDir, name);
  }
  return undefined;
}

export function findDiskBySerial(serial: string, sysBlock = "/sys/block", devDir = "/dev"): string {
  const seen: string[] = [];
  const dev = scanBlockDevices(serial, sysBlock, devDir, seen);
  if (dev === undefined) throw new DiskNotFoundError(serial, seen);
  return dev;
}

export interface DiskShareOps {
  isMounted(dir: string): boolean;
  /** Creates `dir` and mounts the 9p share with `tag` on it, read-only. */
  mountShare(tag: string, dir: string): void;
}

export interface DiskResolverOptions {
  readonly sysBlock?: string;
  readonly devDir?: string;
  readonly shareDir?: string;
  readonly share: DiskShareOps;
}

/** Resolves a serial to a virtio-blk device, else to its file on the disk share. */
export class DiskResolver {
  private readonly sysBlock: string;
  private readonly devDir: string;
  private readonly shareDir: string;

  constructor(private readonly opts: DiskResolverOptions) {
    this.sysBlock = opts.sysBlock ?? "/sys/block";
    this.devDir = opts.devDir ?? "/dev";
    this.shareDir = opts.shareDir ?? DISK_SHARE_DIR;
  }

  /** The mount source for a `fstype` filesystem on disk `serial`. */
  resolve(serial: string, fstype: string): string {
    const seen: string[] = [];
    const dev = scanBlockDevices(serial, this.sysBlock, this.devDir, seen);
    if (dev !== undefined) return dev;
    const share = this.shareProblem();
    if (share !== undefined) throw new DiskNotFoundError(serial, seen, share);
    const file = join(this.shareDir, serial);
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") throw new DiskNotFoundError(serial, seen, `${file} is unreadable (${code})`);
    }
    if (st === undefined) throw new DiskNotFoundError(serial, seen, `no file ${file} on the disk share`);
    if (!st.isFile())
      throw new DiskNotFoundError(serial, seen, `${file} on the disk share is no regular file`);
    if (!FILE_BACKED_FS.has(fstype)) {
      throw new Error(
        `disk "${serial}" is a file on the disk share, and ${fstype} cannot mount from a file (only ${[...FILE_BACKED_FS].join(", ")})`,
      );
    }
    return file;
  }

  /** Mounts the share on first use; why it is unusable, or undefined. Retried on every call. */
  private shareProblem(): string | undefined {
    if (this.opts.share.isMounted(this.shareDir)) return undefined;
    try {
      this.opts.share.mountShare(DISK_SHARE_TAG, this.shareDir);
      return undefined;
    } catch (err) {
      return `the disk share (9p tag ${DISK_SHARE_TAG}) cannot be mounted: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
}
