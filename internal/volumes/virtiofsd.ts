/**
 * virtiofsd's command line for a VM's volume share.
 *
 * - `--sandbox namespace`: virtiofsd pivots into the share in mount, pid and net namespaces of
 *   its own, so a guest that found a way past its path checks still sees only the share.
 * - `--cache auto`: the guest revalidates attributes and directory entries after one second, so a
 *   host edit (a ConfigMap's `..data` swap) shows in the container within a second; `always` would
 *   keep stale entries, `never` costs every read a round trip.
 * - `--xattr`: file capabilities and overlay's xattrs survive on volumes.
 * - `--announce-submounts`: each volume is its own host mount; the guest gets distinct st_dev
 *   values for them, as a container under runc would.
 */
export function virtiofsdArgs(socket: string, share: string): string[] {
  return [
    `--socket-path=${socket}`,
    `--shared-dir=${share}`,
    "--sandbox=namespace",
    "--cache=auto",
    "--xattr",
    "--announce-submounts",
  ];
}

/** The mount tag the guest looks for (guest/vminitd/task/volumes.ts has the same constant). */
export const VOLUME_SHARE_TAG = "beetroot-volumes";
/** Where the guest mounts the share; the spec's bind sources are rewritten to paths under it. */
export const GUEST_VOLUMES_DIR = "/run/beetroot/volumes";
