/**
 * The host sends containerd's config.json as it is; the guest makes it true inside the VM:
 *  - root.path becomes the rootfs the guest assembled;
 *  - a network namespace given by path (the pod's netns on the host) is the VM's own network:
 *    the entry goes, so the container shares the guest's network namespace — the pod NIC;
 *  - other namespace paths must exist in the guest (`/proc/<guest pid>/ns/…` of a pod member);
 *  - bind mounts whose source does not exist in the guest (host files such as CRI's hosts) are
 *    dropped, except /dev/shm, which becomes a private tmpfs, and /etc/resolv.conf, which becomes
 *    the pod's resolv.conf the guest wrote (System.ConfigureNetwork) when there is one;
 *  - a container on the VM's network without a resolv.conf mount gets the pod's bound read-only;
 *  - AppArmor/SELinux labels go (the guest kernel has neither);
 *  - cgroupsPath must be a cgroupfs path: systemd-style values are replaced;
 *  - `net.*` sysctls of a container on the VM's network are the VM's (the pod's) network
 *    namespace's: they leave the spec (crun refuses them without a new network namespace) and
 *    the guest sets them itself (`vmSysctls`). containerd 2.x puts two in every CRI pod
 *    (`enable_unprivileged_ports`, `enable_unprivileged_icmp`).
 *  - a spec without linux.personality gets `{ domain: "LINUX" }`, the default persona: vminitd
 *    runs its helpers (crun) with ADDR_NO_RANDOMIZE (main.ts, for TCG's sake), children inherit
 *    personality flags, and crun's personality(PER_LINUX) before the container's exec clears the
 *    flag again, so the container's processes (init and execs) get ASLR as they would anywhere.
 *    Not a note: the container sees no difference.
 * Every change is reported in `notes`; what cannot be honoured is an InvalidArgument.
 */
import { invalidArgument } from "./errors.ts";

type Json = Record<string, unknown>;

export interface SpecContext {
  readonly id: string;
  readonly rootfs: string;
  readonly terminal: boolean;
  /** Whether a path exists in the guest. */
  readonly exists: (path: string) => boolean;
  /** The pod's resolv.conf in the guest, when the network was configured. */
  readonly podResolvConf?: string;
}

export interface PreparedSpec {
  readonly spec: Json;
  /** The container's cgroup, relative to /sys/fs/cgroup. */
  readonly cgroupsPath: string;
  /** `net.*` sysctls to set in the VM's network namespace before the container starts. */
  readonly vmSysctls: Readonly<Record<string, string>>;
  readonly notes: readonly string[];
}

const SYSCTL_KEY = /^net\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** The /proc/sys file of a sysctl key, as runc maps it (dots become slashes). */
export function sysctlPath(key: string): string {
  if (!SYSCTL_KEY.test(key)) throw invalidArgument(`sysctl key ${JSON.stringify(key)} is malformed`);
  return `/proc/sys/${key.replaceAll(".", "/")}`;
}

/** Moves the `net.*` sysctls out of the spec's linux.sysctl (see the module comment). */
function takeNetworkSysctls(linux: Json, notes: string[]): Record<string, string> {
  const taken: Record<string, string> = {};
  if (linux.sysctl === undefined) return taken;
  if (!isObject(linux.sysctl)) throw invalidArgument("spec linux.sysctl is not an object");
  const kept: Json = {};
  for (const [key, value] of Object.entries(linux.sysctl)) {
    if (typeof value !== "string") throw invalidArgument(`sysctl ${key} has a non-string value`);
    if (!key.startsWith("net.")) {
      kept[key] = value;
      continue;
    }
    sysctlPath(key);
    taken[key] = value;
    notes.push(`sysctl ${key}=${value} is set in the VM's network namespace (the pod's), not by crun`);
  }
  linux.sysctl = kept;
  return taken;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function parseJsonObject(bytes: Uint8Array | string, what: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw invalidArgument(`${what} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isObject(v)) throw invalidArgument(`${what} is not a JSON object`);
  return v;
}

const SHM_MOUNT = {
  destination: "/dev/shm",
  type: "tmpfs",
  source: "shm",
  options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
};

/** Drops labels the guest kernel cannot apply; checks the terminal flag agrees with the stdio request. */
export function prepareProcess(process: Json, terminal: boolean, what: string, notes: string[]): Json {
  const p = { ...process };
  if (!Array.isArray(p.args) || p.args.length === 0 || !p.args.every((a) => typeof a === "string")) {
    throw invalidArgument(`${what}.args must be a non-empty list of strings`);
  }
  if ((p.terminal === true) !== terminal) {
    throw invalidArgument(
      `${what}.terminal is ${p.terminal === true} but the stdio request says ${terminal}`,
    );
  }
  for (const key of ["apparmorProfile", "selinuxLabel"]) {
    if (p[key] !== undefined && p[key] !== "") {
      notes.push(`dropped ${what}.${key} ${JSON.stringify(p[key])}: the guest kernel has no such LSM`);
    }
    delete p[key];
  }
  return p;
}

function isBind(m: Json): boolean {
  const opts = Array.isArray(m.options) ? m.options : [];
  return m.type === "bind" || m.type === "rbind" || opts.includes("bind") || opts.includes("rbind");
}

export function prepareSpec(json: Uint8Array | string, ctx: SpecContext): PreparedSpec {
  const notes: string[] = [];
  const spec = parseJsonObject(json, "spec");
  if (!isObject(spec.process)) throw invalidArgument("spec has no process");
  spec.process = prepareProcess(spec.process, ctx.terminal, "spec.process", notes);
  const root = isObject(spec.root) ? spec.root : {};
  spec.root = { path: ctx.rootfs, readonly: root.readonly === true };

  const linux: Json = isObject(spec.linux) ? { ...spec.linux } : {};
  if (linux.mountLabel !== undefined && linux.mountLabel !== "") {
    notes.push("dropped linux.mountLabel: the guest kernel has no SELinux");
  }
  delete linux.mountLabel;

  let onVmNetwork = !Array.isArray(linux.namespaces);
  if (Array.isArray(linux.namespaces)) {
    const kept: Json[] = [];
    onVmNetwork = !linux.namespaces.some((ns) => isObject(ns) && ns.type === "network" && !ns.path);
    for (const ns of linux.namespaces) {
      if (!isObject(ns) || typeof ns.type !== "string")
        throw invalidArgument("spec linux.namespaces has a malformed entry");
      const path = typeof ns.path === "string" ? ns.path : "";
      if (path !== "" && ns.type === "network") {
        notes.push(`network namespace ${path} is the host's: the container uses the VM's network`);
        continue;
      }
      if (path !== "" && !ctx.exists(path)) {
        throw invalidArgument(`${ns.type} namespace ${path} does not exist in the VM`);
      }
      kept.push(ns);
    }
    linux.namespaces = kept;
  }

  const vmSysctls = onVmNetwork ? takeNetworkSysctls(linux, notes) : {};

  let cgroupsPath = typeof linux.cgroupsPath === "string" ? linux.cgroupsPath : "";
  if (!cgroupsPath.startsWith("/") || cgroupsPath.includes("..")) {
    const replacement = `/beetroot/${ctx.id}`;
    if (cgroupsPath !== "")
      notes.push(`cgroupsPath ${JSON.stringify(cgroupsPath)} is not a cgroupfs path: using ${replacement}`);
    cgroupsPath = replacement;
  }
  linux.cgroupsPath = cgroupsPath;
  if (linux.personality === undefined) linux.personality = { domain: "LINUX" };
  spec.linux = linux;

  if (spec.mounts !== undefined) {
    if (!Array.isArray(spec.mounts)) throw invalidArgument("spec mounts is not a list");
    const mounts: Json[] = [];
    for (const m of spec.mounts) {
      if (!isObject(m) || typeof m.destination !== "string")
        throw invalidArgument("spec mounts has a malformed entry");
      if (isBind(m) && typeof m.source === "string" && !ctx.exists(m.source)) {
        if (m.destination === "/etc/resolv.conf" && ctx.podResolvConf) {
          notes.push(
            `/etc/resolv.conf bind from ${m.source} (host) now binds the pod's ${ctx.podResolvConf}`,
          );
          mounts.push({ ...m, source: ctx.podResolvConf });
        } else if (m.destination === "/dev/shm") {
          notes.push(`/dev/shm bind from ${m.source} (host) became a private tmpfs`);
          mounts.push({ ...SHM_MOUNT });
        } else {
          notes.push(`dropped bind mount ${m.source} → ${m.destination}: the source is on the host`);
        }
        continue;
      }
      mounts.push(m);
    }
    spec.mounts = mounts;
  }
  const mounts = Array.isArray(spec.mounts) ? (spec.mounts as Json[]) : [];
  if (ctx.podResolvConf && onVmNetwork && !mounts.some((m) => m.destination === "/etc/resolv.conf")) {
    spec.mounts = [
      ...mounts,
      {
        destination: "/etc/resolv.conf",
        type: "bind",
        source: ctx.podResolvConf,
        options: ["rbind", "ro", "nosuid", "nodev", "noexec"],
      },
    ];
    notes.push(`bound the pod's ${ctx.podResolvConf} at /etc/resolv.conf`);
  }

  if (isObject(spec.hooks)) {
    for (const [kind, list] of Object.entries(spec.hooks)) {
      if (!Array.isArray(list)) continue;
      for (const h of list) {
        const path = isObject(h) && typeof h.path === "string" ? h.path : "";
        if (!ctx.exists(path))
          throw invalidArgument(`${kind} hook ${JSON.stringify(path)} does not exist in the VM`);
      }
    }
  }
  return { spec, cgroupsPath: cgroupsPath.replace(/^\/+/, ""), vmSysctls, notes };
}
