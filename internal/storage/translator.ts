import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Mount } from "../../api/gen/containerd/types/mount_pb.ts";
import type { Logger } from "../log/logger.ts";
import type { CachedImage, LayerCache } from "./layer-cache.ts";
import {
  type GuestRootfsMount,
  type MountTranslator,
  type RootfsDisk,
  type TranslatedRootfs,
  type TranslateRequest,
  UnsupportedMountError,
} from "./types.ts";

/**
 * QEMU's microvm machine has 24 virtio-mmio transports (measured: the 25th virtio device fails with
 * "No 'virtio-bus' bus found"); the guest root disk, vsock, a NIC and the disk share take four
 * (containers joining a running VM get their layers on the share, docs/storage.md). 16 image layers
 * per container keeps every VM below the limit; deeper images get their bottom layers merged into one disk.
 */
export const DEFAULT_MAX_LAYER_DISKS = 16;

/** A read-only image layer as a block device (EROFS). */
interface Layer {
  /** The EROFS file to attach. */
  readonly image: string;
  /** The directory it came from, when there is one (needed to merge layers). */
  readonly dir?: string;
}

type Writable = { kind: "tmpfs" } | { kind: "disk"; image: string; fstype: string; options: string[] };

interface Plan {
  /** Bottom layer first. */
  layers: Layer[];
  writable: Writable;
}

function optionValue(options: readonly string[], key: string): string | undefined {
  const prefix = `${key}=`;
  return options.find((o) => o.startsWith(prefix))?.slice(prefix.length);
}

/** The erofs snapshotter (containerd 2.1) keeps each layer's image next to its mounted `fs` dir. */
function siblingErofs(dir: string): string | undefined {
  const candidate = join(dirname(dir), "layer.erofs");
  return existsSync(candidate) ? candidate : undefined;
}

function isTemplate(value: string): boolean {
  return value.includes("{{");
}

/** The base mount type under containerd's transformer prefixes (`format/mkdir/overlay` → `overlay`). */
export function baseMountType(type: string): { base: string; transforms: string[] } {
  const parts = type.split("/");
  return { base: parts.at(-1)!, transforms: parts.slice(0, -1) };
}

export interface TranslatorOptions {
  readonly cache: LayerCache;
  readonly log: Logger;
  readonly maxLayerDisks?: number;
  /** Size of the guest tmpfs holding the writable layer (0 = the guest's default). */
  readonly scratchBytes?: number;
}

/**
 * containerd rootfs mounts → virtio-blk disks + the guest's mount recipe (see docs/storage.md):
 *  - overlayfs / native snapshotters: host directories → cached EROFS images;
 *  - erofs snapshotter on 2.1 (`overlay` whose lowerdirs sit next to `layer.erofs`) → those files;
 *  - containerd ≥ 2.2 with our allow-mounts (`erofs`, `format/…`, `mkdir/…`) → the files, the
 *    templates re-expressed over our disks.
 * The writable layer lives in the guest (tmpfs) unless containerd gave a block-device one (ext4).
 */
export class ErofsMountTranslator implements MountTranslator {
  private readonly maxLayerDisks: number;

  constructor(private readonly opts: TranslatorOptions) {
    this.maxLayerDisks = opts.maxLayerDisks ?? DEFAULT_MAX_LAYER_DISKS;
  }

  async translate(req: TranslateRequest): Promise<TranslatedRootfs> {
    const plan = await this.plan(req.mounts);
    if (plan.layers.length === 0) throw new UnsupportedMountError("rootfs mounts name no image layer");
    const layers = await this.fitIntoDiskSlots(plan.layers);
    return this.emit(layers, plan.writable, req.allocateSerial);
  }

  private async layerOfDirectory(dir: string): Promise<Layer> {
    const sibling = siblingErofs(dir);
    if (sibling) return { image: sibling, dir };
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(dir);
    } catch {
      throw new UnsupportedMountError(`rootfs layer directory ${dir} does not exist`);
    }
    if (!st.isDirectory()) throw new UnsupportedMountError(`rootfs layer ${dir} is not a directory`);
    const img: CachedImage = await this.opts.cache.imageOfDirectory(dir);
    return { image: img.path, dir };
  }

  private async plan(mounts: readonly Mount[]): Promise<Plan> {
    if (mounts.length === 0) {
      throw new UnsupportedMountError(
        "the container has no rootfs mounts (a prepared host directory as rootfs cannot be shared with a VM): run it from an image",
      );
    }
    if (mounts.length === 1) {
      const m = mounts[0]!;
      switch (m.type) {
        case "overlay":
          return this.planOverlay(m.options, []);
        case "bind":
        case "rbind":
          return { layers: [await this.layerOfDirectory(m.source)], writable: { kind: "tmpfs" } };
        case "erofs":
          return { layers: [this.fileLayer(m.source)], writable: { kind: "tmpfs" } };
      }
    }
    return this.planTemplated(mounts);
  }

  private fileLayer(path: string): Layer {
    if (!existsSync(path)) throw new UnsupportedMountError(`erofs layer image ${path} does not exist`);
    return { image: path };
  }

  /** A plain overlay: lowerdir is top first; a host upperdir cannot reach the guest (tmpfs instead). */
  private async planOverlay(options: readonly string[], earlier: readonly Layer[]): Promise<Plan> {
    const lower = optionValue(options, "lowerdir");
    if (!lower) throw new UnsupportedMountError("overlay rootfs mount has no lowerdir");
    const topFirst = lower.split(":").filter((d) => d !== "");
    const layers: Layer[] = [...earlier];
    for (const dir of topFirst.reverse()) layers.push(await this.layerOfDirectory(dir));
    return { layers, writable: { kind: "tmpfs" } };
  }

  /**
   * containerd ≥ 2.2 with the mount manager: block-filesystem mounts first, then an overlay template
   * (`format/…overlay`) whose lowerdir references them with `{{ mount N }}` / `{{ overlay A B }}`.
   */
  private async planTemplated(mounts: readonly Mount[]): Promise<Plan> {
    const byIndex: Array<Layer | { writable: Writable } | undefined> = [];
    let overlay: Mount | undefined;
    for (const [i, m] of mounts.entries()) {
      const { base, transforms } = baseMountType(m.type);
      for (const t of transforms) {
        if (t !== "format" && t !== "mkdir") {
          throw new UnsupportedMountError(`unsupported rootfs mount transform "${t}/" in "${m.type}"`);
        }
      }
      if (base === "erofs") {
        byIndex[i] = this.fileLayer(m.source);
      } else if (base === "ext4" || base === "xfs") {
        byIndex[i] = {
          writable: {
            kind: "disk",
            image: m.source,
            fstype: base,
            options: m.options.filter((o) => o !== "loop"),
          },
        };
      } else if (base === "overlay" && i === mounts.length - 1) {
        overlay = m;
      } else {
        throw new UnsupportedMountError(`unsupported rootfs mount type "${m.type}"`);
      }
    }
    if (!overlay) {
      const last = mounts.at(-1)!;
      throw new UnsupportedMountError(
        `unsupported rootfs mount type "${last.type}" (expected an overlay last)`,
      );
    }

    // Resolve the lowerdir template to mount indexes, top first.
    const lower = optionValue(overlay.options, "lowerdir") ?? "";
    const layers: Layer[] = [];
    const topFirst: Layer[] = [];
    for (const part of lower.split(":").filter((p) => p !== "")) {
      const refs = templateRefs(part, mounts.length);
      if (refs === undefined) {
        topFirst.push(await this.layerOfDirectory(part));
        continue;
      }
      for (const i of refs) {
        const entry = byIndex[i];
        if (!entry || "writable" in entry)
          throw new UnsupportedMountError(`lowerdir references mount ${i}, which is not a layer`);
        topFirst.push(entry);
      }
    }
    layers.push(...topFirst.reverse());
    const writableEntry = byIndex.find(
      (e): e is { writable: Writable } => e !== undefined && "writable" in e,
    );
    const upper = optionValue(overlay.options, "upperdir");
    if (upper && !isTemplate(upper) && !writableEntry) {
      this.opts.log.debug("host upperdir replaced by a guest tmpfs", { upperdir: upper });
    }
    return { layers, writable: writableEntry?.writable ?? { kind: "tmpfs" } };
  }

  /** Keeps the top layers as disks and merges the rest into one, when there are too many. */
  private async fitIntoDiskSlots(layers: Layer[]): Promise<Layer[]> {
    if (layers.length <= this.maxLayerDisks) return layers;
    const keep = this.maxLayerDisks - 1;
    const bottom = layers.slice(0, layers.length - keep);
    const dirs = bottom.map((l) => l.dir);
    if (dirs.some((d) => d === undefined)) {
      throw new UnsupportedMountError(
        `image has ${layers.length} layers, more than the ${this.maxLayerDisks} disks a VM takes, and its layers are files that cannot be merged`,
      );
    }
    const merged = await this.opts.cache.mergedImage((dirs as string[]).slice().reverse());
    this.opts.log.info("merged bottom layers into one disk", { merged: bottom.length, total: layers.length });
    return [{ image: merged.path }, ...layers.slice(layers.length - keep)];
  }

  private emit(layers: readonly Layer[], writable: Writable, allocateSerial: () => string): TranslatedRootfs {
    const disks: RootfsDisk[] = [];
    const mounts: GuestRootfsMount[] = [];
    for (const layer of layers) {
      const serial = allocateSerial();
      disks.push({ path: layer.image, serial, readOnly: true });
      mounts.push({ type: "erofs", diskSerial: serial, options: ["ro"] });
    }
    const n = layers.length;
    if (writable.kind === "disk") {
      const serial = allocateSerial();
      disks.push({ path: writable.image, serial, readOnly: false });
      mounts.push({ type: writable.fstype, diskSerial: serial, options: writable.options });
    } else {
      const size = this.opts.scratchBytes ? [`size=${this.opts.scratchBytes}`] : [];
      mounts.push({ type: "tmpfs", source: "tmpfs", options: ["mode=0755", ...size] });
    }
    mounts.push({
      type: "format/mkdir/overlay",
      source: "overlay",
      options: [
        `X-containerd.mkdir.path={{ mount ${n} }}/upper:0755`,
        `X-containerd.mkdir.path={{ mount ${n} }}/work:0755`,
        `lowerdir=${n === 1 ? "{{ mount 0 }}" : `{{ overlay ${n - 1} 0 }}`}`,
        `upperdir={{ mount ${n} }}/upper`,
        `workdir={{ mount ${n} }}/work`,
      ],
    });
    return { disks, mounts, release: async () => {} };
  }
}

/**
 * Mount indexes a lowerdir element refers to: `{{ mount N }}` → [N]; `{{ overlay A B }}` → A..B in
 * that direction; a plain path → undefined. Anything else in braces is refused.
 */
export function templateRefs(part: string, count: number): number[] | undefined {
  if (!isTemplate(part)) return undefined;
  const mount = /^\{\{\s*mount\s+(\d+)\s*\}\}$/.exec(part);
  const check = (i: number) => {
    if (i >= count) throw new UnsupportedMountError(`template ${part} refers to mount ${i} of ${count}`);
    return i;
  };
  if (mount) return [check(Number(mount[1]))];
  const overlay = /^\{\{\s*overlay\s+(\d+)\s+(\d+)\s*\}\}$/.exec(part);
  if (overlay) {
    const a = check(Number(overlay[1]));
    const b = check(Number(overlay[2]));
    const out: number[] = [];
    for (let i = a; a <= b ? i <= b : i >= b; a <= b ? i++ : i--) out.push(i);
    return out;
  }
  throw new UnsupportedMountError(`unsupported mount template ${JSON.stringify(part)}`);
}
