/** Socket addresses vminitd builds by hand for connect(2). */

export const AF_VSOCK = 40;
/** The host's context id as seen from a guest. */
export const VMADDR_CID_HOST = 2;

/**
 * struct sockaddr_vm (linux/vm_sockets.h), 16 bytes:
 * sa_family u16, svm_reserved1 u16, svm_port u32, svm_cid u32, svm_flags u8, svm_zero[3].
 */
export function sockaddrVm(cid: number, port: number): Uint8Array {
  if (!Number.isInteger(cid) || cid < 0 || cid > 0xffff_ffff)
    throw new RangeError(`vsock cid ${cid} out of range`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff_ffff)
    throw new RangeError(`vsock port ${port} out of range`);
  const buf = new Uint8Array(16);
  const view = new DataView(buf.buffer);
  view.setUint16(0, AF_VSOCK, true);
  view.setUint32(4, port, true);
  view.setUint32(8, cid, true);
  return buf;
}

export const AF_UNIX = 1;

/** struct sockaddr_un for a filesystem path (for tests of the same connect path off-guest). */
export function sockaddrUnix(path: string): Uint8Array {
  const bytes = Buffer.from(path, "utf8");
  if (bytes.length >= 108) throw new RangeError(`unix socket path too long (${bytes.length} bytes): ${path}`);
  const buf = new Uint8Array(2 + bytes.length + 1);
  new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
  buf.set(bytes, 2);
  return buf;
}
