import { mkdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { NetworkError } from "../rtnetlink/errors.ts";
import { Rtnl } from "../rtnetlink/rtnl.ts";
import { MNT_DETACH, type NativeNet } from "./native/addon.ts";

/**
 * Named network namespaces, pinned the way iproute2 and containerd pin them: a bind mount of
 * the namespace's nsfs file onto a file under /run/netns, so `ip netns` lists them and they
 * outlive the process that made them. Created through the addon (unshare on a private thread),
 * not by running `ip netns add`.
 */
export const NETNS_DIR = process.env.BEETROOT_NETNS_DIR ?? "/run/netns";
export const MANAGED_PREFIX = "beetroot-";

const sharedDirs = new Set<string>();

export function managedNetnsPath(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name))
    throw new NetworkError("InvalidArgument", `bad netns name ${JSON.stringify(name)}`);
  return join(NETNS_DIR, `${MANAGED_PREFIX}${name}`);
}

/** Field 5 of /proc/self/mountinfo with its octal escapes undone, paired with the fs type. */
function mountTypeAt(path: string): string | undefined {
  const abs = resolve(path);
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    const mp = fields[4]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (mp !== abs) continue;
    const sep = fields.indexOf("-");
    return sep >= 0 ? fields[sep + 1] : undefined;
  }
  return undefined;
}

/** True when path is a pinned network namespace (an nsfs mount), not just a file. */
export function isPinnedNetns(path: string): boolean {
  return mountTypeAt(path) === "nsfs";
}

/** Creates a new, empty namespace (loopback up) pinned at path; fails if path exists. */
export function createNetns(native: NativeNet, path: string): void {
  const dir = dirname(path);
  if (!sharedDirs.has(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    native.makeSharedMount(dir);
    sharedDirs.add(dir);
  }
  try {
    native.netnsCreate(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST")
      throw new NetworkError("AlreadyExists", `network namespace ${path} already exists`);
    throw new NetworkError("Internal", `creating network namespace ${path}: ${(err as Error).message}`);
  }
  // A CNI runtime brings loopback up (the CNI "loopback" plugin's job) before the chain runs.
  Rtnl.with(native, path, (r) => {
    const lo = r.link("lo");
    if (lo) r.setUp(lo);
  });
}

/** Unpins and removes a namespace; gone already is fine. The namespace dies with its last user. */
export function removeNetns(native: NativeNet, path: string): void {
  try {
    statSync(path);
  } catch {
    return;
  }
  if (isPinnedNetns(path)) {
    try {
      native.umount(path, MNT_DETACH);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
    }
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** Only namespaces beetroot itself named may be removed by a ledger entry. */
export function isManagedNetnsPath(path: string): boolean {
  const abs = resolve(path);
  return dirname(abs) === resolve(NETNS_DIR) && basename(abs).startsWith(MANAGED_PREFIX);
}
