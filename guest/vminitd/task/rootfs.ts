/**
 * Container root filesystems from the host's mount list (see internal/storage/translator.ts and
 * containerd's mount manager): each mount but the last lands in `<dir>/mounts/<i>`, the last one in
 * `<dir>/rootfs`. Block filesystems name their disk by virtio serial; `format/` mounts carry
 * `{{ mount N }}` / `{{ overlay A B }}` placeholders for earlier mounts' targets; `mkdir/` mounts
 * carry `X-containerd.mkdir.path=dir[:mode[:uid:gid]]` directories to create first.
 *
 * Planning is pure (and tested); executing goes through MountOps.
 */
import { join, normalize } from "node:path";

export interface RootfsMountInput {
  readonly type: string;
  readonly diskSerial: string;
  readonly options: readonly string[];
  readonly source: string;
}

export interface MkdirStep {
  readonly path: string;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}

export interface MountStep {
  readonly index: number;
  readonly target: string;
  /** A device path for block filesystems, else the mount's source ("overlay", "tmpfs"). */
  readonly source: string;
  /** Virtio serial to resolve to `source` at execution time (block filesystems). */
  readonly diskSerial?: string;
  readonly fstype: string;
  readonly flags: number;
  readonly data: string;
  readonly mkdirs: readonly MkdirStep[];
}

export interface RootfsPlan {
  readonly rootfs: string;
  readonly steps: readonly MountStep[];
}

export class RootfsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RootfsError";
  }
}

const FLAGS: Readonly<Record<string, number>> = {
  ro: 0x1,
  nosuid: 0x2,
  nodev: 0x4,
  noexec: 0x8,
  sync: 0x10,
  dirsync: 0x80,
  noatime: 0x400,
  nodiratime: 0x800,
  relatime: 0x20_0000,
  strictatime: 0x100_0000,
};
/** Options that only clear a flag (the default) or mean nothing for a fresh mount. */
const NEUTRAL = new Set(["rw", "suid", "dev", "exec", "defaults", "async", "atime", "diratime", "loop"]);

const BLOCK_FS = new Set(["erofs", "ext4", "xfs"]);
const SOURCE_FS = new Set(["overlay", "tmpfs"]);
const MAX_MOUNTS = 64;

export function splitOptions(options: readonly string[]): { flags: number; data: string[] } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAGS[o];
    if (f !== undefined) flags |= f;
    else if (!NEUTRAL.has(o)) data.push(o);
  }
  return { flags, data };
}

function parseMkdir(value: string, within: string, where: string): MkdirStep {
  const [path = "", mode, uid, gid] = value.split(":");
  const clean = normalize(path);
  if (!clean.startsWith(`${within}/`)) {
    throw new RootfsError(`${where}: X-containerd.mkdir.path ${JSON.stringify(path)} is outside ${within}`);
  }
  const step: { path: string; mode: number; uid?: number; gid?: number } = { path: clean, mode: 0o755 };
  if (mode !== undefined && mode !== "") {
    if (!/^[0-7]{3,4}$/.test(mode)) throw new RootfsError(`${where}: bad mkdir mode ${JSON.stringify(mode)}`);
    step.mode = Number.parseInt(mode, 8);
  }
  if (uid !== undefined || gid !== undefined) {
    if (!/^\d+$/.test(uid ?? "") || !/^\d+$/.test(gid ?? "")) {
      throw new RootfsError(`${where}: bad mkdir owner ${JSON.stringify(`${uid}:${gid}`)}`);
    }
    step.uid = Number(uid);
    step.gid = Number(gid);
  }
  return step;
}

/** Replaces `{{ mount N }}` and `{{ overlay A B }}` with targets of mounts before `index`. */
export function substituteTemplates(
  value: string,
  targets: readonly string[],
  index: number,
  where: string,
): string {
  return value.replace(/\{\{([^}]*)\}\}/g, (whole, inner: string) => {
    const words = inner.trim().split(/\s+/);
    const ref = (s: string | undefined): number => {
      if (s === undefined || !/^\d+$/.test(s)) throw new RootfsError(`${where}: bad template ${whole}`);
      const n = Number(s);
      if (n >= index)
        throw new RootfsError(`${where}: template ${whole} refers to mount ${n}, not an earlier one`);
      return n;
    };
    if (words[0] === "mount" && words.length === 2) return targets[ref(words[1])] ?? "";
    if (words[0] === "overlay" && words.length === 3) {
      const a = ref(words[1]);
      const b = ref(words[2]);
      const out: string[] = [];
      for (let i = a; a <= b ? i <= b : i >= b; a <= b ? i++ : i--) out.push(targets[i] ?? "");
      return out.join(":");
    }
    throw new RootfsError(`${where}: unsupported template ${whole}`);
  });
}

export function planRootfs(mounts: readonly RootfsMountInput[], dir: string): RootfsPlan {
  if (mounts.length === 0) throw new RootfsError("no rootfs mounts");
  if (mounts.length > MAX_MOUNTS)
    throw new RootfsError(`${mounts.length} rootfs mounts (at most ${MAX_MOUNTS})`);
  const mountsDir = join(dir, "mounts");
  const rootfs = join(dir, "rootfs");
  const targets = mounts.map((_, i) => (i === mounts.length - 1 ? rootfs : join(mountsDir, String(i))));
  const steps: MountStep[] = [];
  for (const [i, m] of mounts.entries()) {
    const where = `rootfs mount ${i} (${m.type})`;
    const parts = m.type.split("/");
    const fstype = parts.pop() ?? "";
    const transforms = new Set(parts);
    for (const t of transforms) {
      if (t !== "format" && t !== "mkdir") throw new RootfsError(`${where}: unsupported transform "${t}/"`);
    }
    let options = [...m.options];
    if (transforms.has("format")) options = options.map((o) => substituteTemplates(o, targets, i, where));
    else if (options.some((o) => o.includes("{{"))) {
      throw new RootfsError(`${where}: templates in options of a mount without the format/ prefix`);
    }
    const mkdirs: MkdirStep[] = [];
    if (transforms.has("mkdir")) {
      options = options.filter((o) => {
        if (!o.startsWith("X-containerd.mkdir.path=")) return true;
        mkdirs.push(parseMkdir(o.slice("X-containerd.mkdir.path=".length), mountsDir, where));
        return false;
      });
    }
    const bad = options.find((o) => o.startsWith("X-containerd."));
    if (bad) throw new RootfsError(`${where}: unsupported option ${JSON.stringify(bad)}`);
    const { flags, data } = splitOptions(options);
    const target = targets[i] ?? rootfs;
    if (BLOCK_FS.has(fstype)) {
      if (!/^[A-Za-z0-9_-]{1,20}$/.test(m.diskSerial)) {
        throw new RootfsError(
          `${where}: a ${fstype} mount needs a disk serial, got ${JSON.stringify(m.diskSerial)}`,
        );
      }
      steps.push({
        index: i,
        target,
        source: "",
        diskSerial: m.diskSerial,
        fstype,
        flags,
        data: data.join(","),
        mkdirs,
      });
    } else if (SOURCE_FS.has(fstype)) {
      if (m.diskSerial !== "") throw new RootfsError(`${where}: ${fstype} takes no disk`);
      if (fstype === "overlay") {
        const keys = new Set(data.map((d) => d.split("=")[0]));
        if (!keys.has("lowerdir")) throw new RootfsError(`${where}: overlay without lowerdir`);
        // Every directory the overlay names must be one of ours: the host names no guest paths.
        for (const d of data) {
          const [key, value = ""] = d.split("=", 2) as [string, string?];
          if (key !== "lowerdir" && key !== "upperdir" && key !== "workdir") continue;
          for (const p of value.split(":")) {
            if (!normalize(p).startsWith(`${mountsDir}/`)) {
              throw new RootfsError(`${where}: ${key} ${JSON.stringify(p)} is not inside an earlier mount`);
            }
          }
        }
      }
      steps.push({
        index: i,
        target,
        source: m.source || fstype,
        fstype,
        flags,
        data: data.join(","),
        mkdirs,
      });
    } else {
      throw new RootfsError(`${where}: unsupported filesystem type "${fstype}"`);
    }
  }
  return { rootfs, steps };
}

export interface RootfsOps {
  /** The mount source of disk `serial` for a `fstype` mount: a block device, or a file (task/disks.ts). */
  resolveDisk(serial: string, fstype: string): string;
  mkdirp(path: string, mode: number): void;
  chown(path: string, uid: number, gid: number): void;
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  unmount(target: string): void;
}

/** Mounts the plan; on failure unmounts what it mounted and rethrows. Returns targets, in mount order. */
export function mountRootfs(plan: RootfsPlan, ops: RootfsOps): string[] {
  const mounted: string[] = [];
  try {
    for (const s of plan.steps) {
      for (const d of s.mkdirs) {
        ops.mkdirp(d.path, d.mode);
        if (d.uid !== undefined && d.gid !== undefined) ops.chown(d.path, d.uid, d.gid);
      }
      const source = s.diskSerial !== undefined ? ops.resolveDisk(s.diskSerial, s.fstype) : s.source;
      ops.mkdirp(s.target, 0o755);
      ops.mount(source, s.target, s.fstype, s.flags, s.data);
      mounted.push(s.target);
    }
  } catch (err) {
    unmountAll(mounted, ops);
    throw err;
  }
  return mounted;
}

/** Unmounts in reverse order; returns the targets that failed. */
export function unmountAll(mounted: readonly string[], ops: Pick<RootfsOps, "unmount">): string[] {
  const failed: string[] = [];
  for (const t of [...mounted].reverse()) {
    try {
      ops.unmount(t);
    } catch {
      failed.push(t);
    }
  }
  return failed;
}
