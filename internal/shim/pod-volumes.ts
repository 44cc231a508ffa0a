/**
 * The shim's use of internal/volumes: a container's host bind mounts are planned before anything
 * boots (a missing source fails Create and leaves nothing), bound into its VM's volume share once
 * the VM runs, and the bundle's config.json the guest gets names them by their guest paths.
 */
import { statSync } from "node:fs";
import type { Logger } from "../log/logger.ts";
import { type OciMount, planVolumes, type Volume, VolumeError } from "../volumes/plan.ts";
import { GUEST_VOLUMES_DIR } from "../volumes/virtiofsd.ts";
import { errorMessage, failedPrecondition, invalidArgument, notFound, wrapError } from "./errors.ts";
import { JsonObject, parseLossless, serializeLossless } from "./lossless-json.ts";
import type { OciSpec } from "./oci.ts";
import type { Vm } from "./vmm.ts";

/** The container's volumes, or the gRPC error containerd should see (NotFound names the source). */
export function containerVolumes(spec: OciSpec): Volume[] {
  const mounts = Array.isArray(spec.mounts) ? (spec.mounts as OciMount[]) : [];
  try {
    return planVolumes(mounts, (p) => {
      try {
        return statSync(p);
      } catch {
        return undefined;
      }
    });
  } catch (err) {
    if (err instanceof VolumeError)
      throw err.code === "not-found" ? notFound(err.message) : invalidArgument(err.message);
    throw err;
  }
}

/** Volumes bound into a VM for one container: their guest paths and the release of all of them. */
export interface SharedVolumes {
  readonly guestSources: ReadonlyMap<number, string>;
  release(): Promise<void>;
}

const NO_VOLUMES: SharedVolumes = { guestSources: new Map(), release: async () => {} };

/** Binds every volume into the VM (all or nothing); names come from `allocateName`. */
export async function shareVolumes(
  vm: Vm,
  volumes: readonly Volume[],
  allocateName: () => string,
  log: Logger,
): Promise<SharedVolumes> {
  if (volumes.length === 0) return NO_VOLUMES;
  if (!vm.addVolume)
    throw failedPrecondition("this VM has no volume share: host bind mounts cannot be given to it");
  const releases: (() => Promise<void>)[] = [];
  const guestSources = new Map<number, string>();
  const release = async () => {
    for (const r of releases.splice(0).reverse())
      await r().catch((err: unknown) =>
        log.error("releasing a volume failed (the VM's stop or `beetroot gc` retries)", {
          error: errorMessage(err),
        }),
      );
  };
  try {
    for (const v of volumes) {
      const name = allocateName();
      releases.push(await vm.addVolume(name, v));
      guestSources.set(v.index, `${GUEST_VOLUMES_DIR}/${name}`);
      log.info("volume shared", {
        source: v.source,
        destination: v.destination,
        share: name,
        mode: v.readOnly ? "ro" : "rw",
        via: "virtio-fs",
      });
    }
  } catch (err) {
    await release();
    throw wrapError(err, "sharing volumes with the VM");
  }
  return { guestSources, release };
}

/** config.json with each shared mount's `source` replaced by its guest path; byte for byte otherwise. */
export function specWithVolumes(raw: Uint8Array, shared: SharedVolumes): Uint8Array {
  if (shared.guestSources.size === 0) return raw;
  const spec = parseLossless(Buffer.from(raw).toString("utf8"), "config.json");
  const mounts = spec instanceof JsonObject ? spec.get("mounts") : undefined;
  if (!Array.isArray(mounts)) return raw;
  for (const [index, source] of shared.guestSources) {
    const m = mounts[index];
    if (m instanceof JsonObject) m.set("source", source);
  }
  return Buffer.from(serializeLossless(spec));
}
