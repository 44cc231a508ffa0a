/**
 * The kinds of host resources beetroot creates and must be able to release after a crash.
 * A ledger entry is written BEFORE the resource exists, so every kind is describable before
 * creation: a process is first recorded by its command and a unique marker in its argv, and
 * gains its pid and start time once spawned (see ledger `update`).
 */
export type Resource =
  | ProcessResource
  | SocketResource
  | FileResource
  | DirResource
  | NetnsResource
  | TapResource
  | CniResource
  | MountResource
  | DiskResource;

export interface ProcessResource {
  readonly kind: "process";
  /** argv[0] and the arguments, for humans and for the identity check below. */
  readonly cmd: readonly string[];
  /**
   * A string that occurs in this process' argv and in no other process' (e.g. its private
   * socket path). Lets gc find the process when the launcher died between spawn and `update`.
   */
  readonly marker: string;
  /** Filled in right after spawn. */
  readonly pid?: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot): pid + startTime + bootId is an identity. */
  readonly startTime?: number;
  /** /proc/sys/kernel/random/boot_id at spawn: after a reboot the process is gone whatever its pid says. */
  readonly bootId?: string;
}

export interface SocketResource {
  readonly kind: "socket";
  readonly path: string;
}

export interface FileResource {
  readonly kind: "file";
  readonly path: string;
}

/** Removed recursively on release (only under beetroot's own directories, see releasers.ts). */
export interface DirResource {
  readonly kind: "dir";
  readonly path: string;
}

export interface NetnsResource {
  readonly kind: "netns";
  readonly path: string;
}

export interface TapResource {
  readonly kind: "tap";
  readonly name: string;
  /** Path of the network namespace the TAP lives in. */
  readonly netns: string;
}

export interface CniResource {
  readonly kind: "cni";
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string;
  /** The network configuration list that ADD ran with; DEL needs the same one. */
  readonly configJson: string;
}

export interface MountResource {
  readonly kind: "mount";
  readonly path: string;
}

export interface DiskResource {
  readonly kind: "disk";
  readonly path: string;
}

export type ResourceKind = Resource["kind"];

export const RESOURCE_KINDS: readonly ResourceKind[] = [
  "process",
  "socket",
  "file",
  "dir",
  "netns",
  "tap",
  "cni",
  "mount",
  "disk",
];

export class InvalidResourceError extends Error {
  constructor(message: string) {
    super(`invalid ledger resource: ${message}`);
    this.name = "InvalidResourceError";
  }
}

type Obj = Record<string, unknown>;

function str(o: Obj, key: string, kind: string): string {
  const v = o[key];
  if (typeof v !== "string" || v.length === 0)
    throw new InvalidResourceError(`${kind}.${key} must be a non-empty string`);
  if (v.includes("\0")) throw new InvalidResourceError(`${kind}.${key} contains a NUL byte`);
  return v;
}

function absPath(o: Obj, key: string, kind: string): string {
  const v = str(o, key, kind);
  if (!v.startsWith("/"))
    throw new InvalidResourceError(`${kind}.${key} must be an absolute path, got ${JSON.stringify(v)}`);
  return v;
}

function optUint(o: Obj, key: string, kind: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidResourceError(`${kind}.${key} must be a non-negative integer`);
  }
  return v;
}

function onlyKeys(o: Obj, allowed: readonly string[], kind: string): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) throw new InvalidResourceError(`${kind} has unknown field "${key}"`);
  }
}

/**
 * Checks a value (from the caller or read back from disk) and returns it as a Resource. Strict:
 * a ledger is read after crashes by other versions of beetroot, and a wrong path given to a
 * releaser is worse than an error.
 */
export function parseResource(value: unknown): Resource {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidResourceError("not an object");
  }
  const o = value as Obj;
  const kind = o.kind;
  switch (kind) {
    case "process": {
      onlyKeys(o, ["kind", "cmd", "marker", "pid", "startTime", "bootId"], kind);
      const cmd = o.cmd;
      if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string")) {
        throw new InvalidResourceError("process.cmd must be a non-empty array of strings");
      }
      const marker = str(o, "marker", kind);
      if (!cmd.some((a: string) => a.includes(marker))) {
        throw new InvalidResourceError(
          `process.marker ${JSON.stringify(marker)} does not occur in process.cmd`,
        );
      }
      const pid = optUint(o, "pid", kind);
      if (pid === 0) throw new InvalidResourceError("process.pid must be > 0");
      const startTime = optUint(o, "startTime", kind);
      const bootId = o.bootId === undefined ? undefined : str(o, "bootId", kind);
      if ((pid === undefined) !== (startTime === undefined)) {
        throw new InvalidResourceError("process.pid and process.startTime go together");
      }
      return {
        kind,
        cmd: [...cmd],
        marker,
        ...(pid !== undefined && { pid }),
        ...(startTime !== undefined && { startTime }),
        ...(bootId !== undefined && { bootId }),
      };
    }
    case "socket":
    case "file":
    case "dir":
    case "netns":
    case "mount":
    case "disk":
      onlyKeys(o, ["kind", "path"], kind);
      return { kind, path: absPath(o, "path", kind) };
    case "tap": {
      onlyKeys(o, ["kind", "name", "netns"], kind);
      const name = str(o, "name", kind);
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name))
        throw new InvalidResourceError(`tap.name ${JSON.stringify(name)} is not a valid interface name`);
      return { kind, name, netns: absPath(o, "netns", kind) };
    }
    case "cni":
      onlyKeys(o, ["kind", "containerId", "ifname", "netns", "configJson"], kind);
      return {
        kind,
        containerId: str(o, "containerId", kind),
        ifname: str(o, "ifname", kind),
        netns: absPath(o, "netns", kind),
        configJson: str(o, "configJson", kind),
      };
    default:
      throw new InvalidResourceError(
        `unknown kind ${JSON.stringify(kind)} (known: ${RESOURCE_KINDS.join(", ")})`,
      );
  }
}

/** One line for logs and `beetroot gc` output. */
export function describeResource(r: Resource): string {
  switch (r.kind) {
    case "process":
      return `process ${r.pid ?? "(not yet spawned)"} ${r.cmd[0] ?? ""}`;
    case "tap":
      return `tap ${r.name} in ${r.netns}`;
    case "cni":
      return `cni ${r.containerId}/${r.ifname} in ${r.netns}`;
    default:
      return `${r.kind} ${r.path}`;
  }
}
