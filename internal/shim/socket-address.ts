import { createHash } from "node:crypto";
import { createConnection } from "node:net";
import { posix } from "node:path";

/** containerd's state dir default; shim sockets live in `<state>/s/`. */
export const DEFAULT_SOCKET_ROOT = "/run/containerd/s";

/** sun_path holds 108 bytes including the terminator; containerd itself refuses > 106. */
export const SOCKET_PATH_LIMIT = 106;

/**
 * The socket a shim serves on, computed exactly like containerd's `shim.CreateSocketAddress`:
 * `unix://<root>/<hex sha256 of filepath.Join(address, namespace, id)>` (plus `/debug` for the
 * debug socket). containerd never recomputes it — it uses what `start` printed — but other shims
 * and `delete` do, and the hash keeps the path short whatever the id length is.
 */
export function shimSocketAddress(opts: {
  socketRoot?: string;
  containerdAddress: string;
  namespace: string;
  id: string;
  debug?: boolean;
}): string {
  if (opts.namespace === "") throw new Error("namespace is required to compute the shim socket address");
  let key = posix.join(opts.containerdAddress, opts.namespace, opts.id);
  if (opts.debug) key = posix.join(key, "debug");
  const digest = createHash("sha256").update(key).digest("hex");
  const address = `unix://${opts.socketRoot ?? DEFAULT_SOCKET_ROOT}/${digest}`;
  if (socketPath(address).length > SOCKET_PATH_LIMIT) {
    throw new Error(`shim socket path ${socketPath(address)} is longer than ${SOCKET_PATH_LIMIT} bytes`);
  }
  return address;
}

/** The filesystem path of a `unix://` address (beetroot never uses abstract sockets). */
export function socketPath(address: string): string {
  if (!address.startsWith("unix://")) throw new Error(`not a unix:// socket address: ${address}`);
  return address.slice("unix://".length);
}

/** Whether something accepts connections on a unix socket path: a live shim (or containerd). */
export function canConnect(path: string, timeoutMs = 200): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}
