/**
 * The disk share: disks for a running VM. QEMU's microvm machine has no PCI and fixes its
 * virtio-mmio devices at boot, so a virtio-blk disk cannot be hot-plugged; instead every VM boots
 * with one read-only virtio-9p device exporting an (initially empty) host directory, and a disk
 * added later appears there as a file named by its serial. The guest mounts EROFS straight from
 * that file (guest/vminitd/task/disks.ts). See docs/storage.md for the costs.
 *
 * A disk file is not copied: a read-only bind mount of the image onto an empty file in the share
 * works across filesystems, and QEMU (same mount namespace as the shim that spawned it) sees
 * mounts made after it started.
 */
import { execFile } from "node:child_process";
import { closeSync, openSync, statSync, unlinkSync } from "node:fs";
import { promisify } from "node:util";
import { detachMount } from "../state/releasers.ts";

/** The guest looks for this 9p mount tag (guest/vminitd/task/disks.ts has the same constant). */
export const DISK_SHARE_TAG = "beetroot-disks";
/** QEMU ids of the share's fsdev and device. */
const FSDEV_ID = "diskshare";

/** Names in the share are disk serials: the same rule as virtio-blk serials (20 bytes). */
const SHARED_NAME_RE = /^[A-Za-z0-9_-]{1,20}$/;

const execFileAsync = promisify(execFile);

/** QEMU options values use ',' as separator ("," must be doubled inside a value). */
function optValue(v: string): string {
  return v.replaceAll(",", ",,");
}

/**
 * QEMU arguments for the share. `readonly=on`: the guest cannot write the host's layer files.
 * `security_model=none`: files are served with the host's ownership and modes (QEMU runs as root
 * here). `multidevs=remap`: each bind-mounted disk sits on its own host filesystem, whose inode
 * numbers may collide with another's; without remapping the guest's 9p client could take two
 * disks with the same inode number for one file.
 */
export function diskShareArgs(dir: string): string[] {
  return [
    "-fsdev",
    `local,id=${FSDEV_ID},path=${optValue(dir)},security_model=none,readonly=on,multidevs=remap`,
    "-device",
    `virtio-9p-device,fsdev=${FSDEV_ID},mount_tag=${DISK_SHARE_TAG}`,
  ];
}

export function checkSharedName(name: string): void {
  if (!SHARED_NAME_RE.test(name))
    throw new Error(`shared disk name ${JSON.stringify(name)} must match ${SHARED_NAME_RE}`);
}

/** A disk to share must be a regular file: a directory or device bound into the share is refused. */
export function checkSharedSource(path: string): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (err) {
    throw new Error(`disk image ${path} cannot be shared: ${(err as Error).message}`);
  }
  if (!st.isFile()) throw new Error(`disk image ${path} cannot be shared: not a regular file`);
}

/** Makes `source` appear read-only at `target` (a new empty file is the mount point). */
export async function bindFileReadOnly(source: string, target: string): Promise<void> {
  // O_EXCL: a name already in the share is another disk's; never mount over it.
  closeSync(openSync(target, "wx", 0o400));
  // util-linux does the bind and the read-only remount in one call.
  await execFileAsync("mount", ["--bind", "-o", "ro", source, target]);
}

/** Undoes bindFileReadOnly; an absent mount or file counts as done. */
export async function unbindFile(target: string): Promise<void> {
  // Lazy: QEMU may still hold the file open for a guest that has not unmounted it.
  await detachMount(target);
  try {
    unlinkSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
