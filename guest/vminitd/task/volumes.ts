/**
 * The host's volume share (internal/volumes): one virtio-fs file system served by the pod VM's
 * virtiofsd, mounted here on first use. The host rewrote each volume's bind source to a path under
 * VOLUMES_DIR, so crun binds it like any other path.
 */

/** internal/volumes/virtiofsd.ts VOLUME_SHARE_TAG and GUEST_VOLUMES_DIR (paths-agree.test.ts). */
export const VOLUME_SHARE_TAG = "beetroot-volumes";
export const VOLUMES_DIR = "/run/beetroot/volumes";

/** Whether config.json binds anything from the share. */
export function usesVolumeShare(specJson: Uint8Array | string): boolean {
  let spec: unknown;
  try {
    spec = JSON.parse(typeof specJson === "string" ? specJson : Buffer.from(specJson).toString("utf8"));
  } catch {
    return false; // prepareSpec reports a malformed spec precisely
  }
  const mounts = (spec as { mounts?: unknown }).mounts;
  if (!Array.isArray(mounts)) return false;
  return mounts.some((m) => {
    const source = (m as { source?: unknown } | null)?.source;
    return typeof source === "string" && (source === VOLUMES_DIR || source.startsWith(`${VOLUMES_DIR}/`));
  });
}

export interface VolumeShareOps {
  isMounted(dir: string): boolean;
  /** Creates `dir` and mounts the virtio-fs `tag` on it. */
  mountVirtiofs(tag: string, dir: string): void;
}

/** Mounts the share unless it is; throws with the reason otherwise. */
export function ensureVolumeShare(ops: VolumeShareOps, dir = VOLUMES_DIR): void {
  if (ops.isMounted(dir)) return;
  ops.mountVirtiofs(VOLUME_SHARE_TAG, dir);
}
