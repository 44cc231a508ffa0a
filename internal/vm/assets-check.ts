import { closeSync, openSync, readSync, statSync } from "node:fs";

/**
 * Cheap checks of the two files a VM boots from, before anything is spawned: a missing or wrong
 * file must produce an error that names the file and the command that builds it, not a QEMU
 * message or a boot timeout.
 */
export const KERNEL_BUILD_COMMAND = "npx beetroot build kernel";
export const GUEST_BUILD_COMMAND = "npx beetroot build guest";

export class AssetError extends Error {
  constructor(
    readonly path: string,
    problem: string,
    readonly buildCommand: string,
  ) {
    super(`${path}: ${problem}; rebuild it with \`${buildCommand}\``);
    this.name = "AssetError";
  }
}

function readHead(path: string, what: string, length: number, buildCommand: string, offset = 0): Buffer {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new AssetError(path, `the ${what} is not a regular file`, buildCommand);
    size = st.size;
  } catch (err) {
    if (err instanceof AssetError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new AssetError(
      path,
      code === "ENOENT" ? `the ${what} does not exist` : `cannot stat the ${what} (${code})`,
      buildCommand,
    );
  }
  if (size < offset + length)
    throw new AssetError(path, `the ${what} is truncated (${size} bytes)`, buildCommand);
  const buf = Buffer.alloc(length);
  const fd = openSync(path, "r");
  try {
    readSync(fd, buf, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** An uncompressed x86-64 ELF (QEMU's microvm enters it through its PVH note). */
export function checkKernel(path: string): void {
  const head = readHead(path, "guest kernel", 0x210, KERNEL_BUILD_COMMAND);
  if (head.readUInt32BE(0) !== 0x7f454c46) {
    const isBzImage = head.toString("latin1", 0x202, 0x206) === "HdrS";
    throw new AssetError(
      path,
      isBzImage
        ? "the guest kernel is a compressed bzImage; microvm boots the uncompressed PVH vmlinux"
        : "the guest kernel is not an ELF vmlinux",
      KERNEL_BUILD_COMMAND,
    );
  }
  // EI_CLASS 2 = 64-bit, e_machine 62 = x86-64.
  if (head[4] !== 2 || head.readUInt16LE(18) !== 62) {
    throw new AssetError(path, "the guest kernel is not an x86-64 ELF", KERNEL_BUILD_COMMAND);
  }
}

const EROFS_MAGIC = 0xe0f5e1e2;
const EROFS_SUPER_OFFSET = 1024;

/** An EROFS image (its superblock magic at 1024, little-endian). */
export function checkErofsImage(
  path: string,
  what = "guest image",
  buildCommand = GUEST_BUILD_COMMAND,
): void {
  const sb = readHead(path, what, 4, buildCommand, EROFS_SUPER_OFFSET);
  if (sb.readUInt32LE(0) !== EROFS_MAGIC) {
    throw new AssetError(
      path,
      `the ${what} is not an EROFS image (no superblock magic at 1024)`,
      buildCommand,
    );
  }
}
