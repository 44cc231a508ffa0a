/**
 * A minimal writer for the "newc" cpio format the kernel unpacks as an initramfs: enough for the
 * KVM probe's tiny root (a few dirs, a device node, busybox and a script). Each entry is a
 * 110-byte ASCII header, the NUL-terminated name, the data, each padded to 4 bytes.
 */
export type CpioEntry =
  | { readonly type: "dir"; readonly path: string; readonly mode: number }
  | { readonly type: "file"; readonly path: string; readonly mode: number; readonly data: Uint8Array }
  | {
      readonly type: "char";
      readonly path: string;
      readonly mode: number;
      readonly major: number;
      readonly minor: number;
    };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function header(
  ino: number,
  mode: number,
  nlink: number,
  size: number,
  rmaj: number,
  rmin: number,
  nameLen: number,
): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return `070701${[ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, nameLen, 0].map(hex8).join("")}`;
}

export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const add = (name: string, mode: number, nlink: number, data: Uint8Array, rmaj = 0, rmin = 0) => {
    const nameBuf = Buffer.from(`${name}\0`);
    const head = Buffer.from(header(ino++, mode, nlink, data.length, rmaj, rmin, nameBuf.length), "latin1");
    parts.push(head, nameBuf, pad4(head.length + nameBuf.length), Buffer.from(data), pad4(data.length));
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, "");
    if (!name || name.split("/").includes("..")) throw new Error(`bad cpio path ${JSON.stringify(e.path)}`);
    if (e.type === "dir") add(name, S_IFDIR | (e.mode & 0o7777), 2, new Uint8Array(0));
    else if (e.type === "file") add(name, S_IFREG | (e.mode & 0o7777), 1, e.data);
    else add(name, S_IFCHR | (e.mode & 0o7777), 1, new Uint8Array(0), e.major, e.minor);
  }
  add("TRAILER!!!", 0, 1, new Uint8Array(0));
  return Buffer.concat(parts);
}
