/**
 * Which of a container's OCI mounts are host data the VM must be given (bind mounts of host paths),
 * which the guest makes itself (proc, tmpfs, …), and which cannot work in a VM at all. Pure: the
 * host file system is asked through `stat`, so the rules are unit-tested without mounts.
 */

/** An OCI `mounts[]` entry as config.json has it. */
export interface OciMount {
  readonly destination: string;
  readonly type?: string;
  readonly source?: string;
  readonly options?: readonly string[];
}

/** One host path the container gets through the VM's volume share. */
export interface Volume {
  /** Index of the mount in the spec's `mounts`. */
  readonly index: number;
  readonly source: string;
  readonly destination: string;
  readonly kind: "dir" | "file";
  readonly readOnly: boolean;
  /** rbind: the source's submounts come along. */
  readonly recursive: boolean;
  /** nosuid / nodev / noexec, applied on the host mount too. */
  readonly flags: readonly ("nosuid" | "nodev" | "noexec")[];
}

export type HostStat = (path: string) => { isDirectory(): boolean; isFile(): boolean } | undefined;

export class VolumeError extends Error {
  constructor(
    message: string,
    /** gRPC-ish class: a missing source is NotFound, what a VM cannot do is InvalidArgument. */
    readonly code: "not-found" | "invalid-argument",
  ) {
    super(message);
    this.name = "VolumeError";
  }
}

/** File systems the guest kernel mounts itself; their `source` is a label, not a host path. */
const GUEST_FS_TYPES = new Set([
  "proc",
  "sysfs",
  "tmpfs",
  "devtmpfs",
  "devpts",
  "mqueue",
  "cgroup",
  "cgroup2",
  "binder",
  "securityfs",
  "debugfs",
  "tracefs",
  "fusectl",
  "hugetlbfs",
  "configfs",
  "bpf",
  "pstore",
]);

/**
 * Binds the guest still answers itself (guest/vminitd/task/spec.ts): CRI's sandbox /dev/shm
 * becomes a private tmpfs, and /etc/resolv.conf the pod's resolv.conf the guest wrote from CNI.
 */
const GUEST_HANDLED_DESTINATIONS = new Set(["/dev/shm", "/etc/resolv.conf"]);

export function isBindMount(m: OciMount): boolean {
  const opts = m.options ?? [];
  return m.type === "bind" || m.type === "rbind" || opts.includes("bind") || opts.includes("rbind");
}

/**
 * The volumes among `mounts`, in order. Throws VolumeError for a bind whose host source does not
 * exist (as runc fails Create), a source that is neither a directory nor a regular file (a unix
 * socket or device node on the host means nothing inside a VM), and a mount type the VM cannot
 * provide (anything that would need a host device or a host file system).
 */
export function planVolumes(mounts: readonly OciMount[], stat: HostStat): Volume[] {
  const volumes: Volume[] = [];
  mounts.forEach((m, index) => {
    const at = `mount at ${m.destination}`;
    if (!isBindMount(m)) {
      const type = m.type ?? "";
      if (!GUEST_FS_TYPES.has(type))
        throw new VolumeError(
          `${at}: mount type ${JSON.stringify(type)} is not supported in a beetroot VM (supported: bind, rbind, ${[...GUEST_FS_TYPES].join(", ")})`,
          "invalid-argument",
        );
      return;
    }
    if (GUEST_HANDLED_DESTINATIONS.has(m.destination)) return;
    const source = m.source ?? "";
    if (!source.startsWith("/"))
      throw new VolumeError(
        `${at}: bind source ${JSON.stringify(source)} is not an absolute path`,
        "invalid-argument",
      );
    const st = stat(source);
    if (st === undefined)
      throw new VolumeError(`${at}: bind source ${source}: no such file or directory`, "not-found");
    const kind = st.isDirectory() ? "dir" : st.isFile() ? "file" : undefined;
    if (kind === undefined)
      throw new VolumeError(
        `${at}: bind source ${source} is neither a directory nor a regular file; a VM can be given only those`,
        "invalid-argument",
      );
    const opts = m.options ?? [];
    volumes.push({
      index,
      source,
      destination: m.destination,
      kind,
      // The last of ro/rw wins, as in mount(8) and runc.
      readOnly: opts.findLast((o) => o === "ro" || o === "rw") === "ro",
      recursive: m.type === "rbind" || opts.includes("rbind"),
      flags: (["nosuid", "nodev", "noexec"] as const).filter((f) => opts.includes(f)),
    });
  });
  return volumes;
}
