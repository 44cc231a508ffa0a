import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { beetrootPaths } from "../../config/paths.ts";
import { NetworkError } from "../../rtnetlink/errors.ts";
import { beetrootNetSource } from "./source.generated.ts";

/**
 * Loads `beetroot_net`, the small Node-API addon for the syscalls Node lacks (see beetroot_net.c).
 *
 * It is built from the C source embedded in this module, so the bundle and a SEA carry what
 * they need: the first load compiles it with the host's C compiler into the cache
 * (`<cacheDir>/native/beetroot_net-<hash>.node`, `beetroot setup` does this ahead of time),
 * later loads are a dlopen. BEETROOT_NET_ADDON names a prebuilt file instead (a SEA extracts
 * its embedded copy and points here).
 */
export interface NativeNet {
  netnsCreate(path: string): void;
  makeSharedMount(dir: string): void;
  umount(path: string, flags: number): void;
  /** A bound netlink socket in the namespace at netnsPath ("" = this process'). */
  netlinkSocket(netnsPath: string, protocol: number): number;
  netlinkSend(fd: number, datagram: Buffer): number;
  netlinkRecv(fd: number): Buffer;
  /** A TAP created inside the namespace at netnsPath; extraFlags: IFF_VNET_HDR etc. */
  tapOpen(netnsPath: string, name: string, extraFlags: number): { fd: number; name: string };
  close(fd: number): void;
  readonly path: string;
}

export const MNT_DETACH = 2;
export const IFF_VNET_HDR = 0x4000;
const ABI_VERSION = 1;

export function sourceHash(): string {
  return createHash("sha256").update(beetrootNetSource).digest("hex").slice(0, 16);
}

export function addonCachePath(cacheDir = beetrootPaths().cacheDir): string {
  return join(cacheDir, "native", `beetroot_net-${sourceHash()}-${process.arch}.node`);
}

function dlopen(path: string): NativeNet {
  const mod = { exports: {} as Record<string, unknown> };
  process.dlopen(mod, path);
  const raw = mod.exports as Omit<NativeNet, "close" | "path"> & { abiVersion?: number };
  if (raw.abiVersion !== ABI_VERSION)
    throw new NetworkError(
      "FailedPrecondition",
      `${path} is beetroot_net ABI ${String(raw.abiVersion)}, this beetroot needs ${ABI_VERSION}: rebuild it (beetroot setup)`,
    );
  return {
    netnsCreate: raw.netnsCreate,
    makeSharedMount: raw.makeSharedMount,
    umount: raw.umount,
    netlinkSocket: raw.netlinkSocket,
    netlinkSend: raw.netlinkSend,
    netlinkRecv: raw.netlinkRecv,
    tapOpen: raw.tapOpen,
    close: (fd) => closeSync(fd),
    path,
  };
}

async function findCompiler(): Promise<string | undefined> {
  for (const cc of [process.env.CC, "cc", "gcc", "clang"]) {
    if (!cc) continue;
    const r = await execa(cc, ["--version"], { reject: false });
    if (r.exitCode === 0) return cc;
  }
  return undefined;
}

/** Compiles the embedded source into the cache (atomically: concurrent builders both succeed). */
export async function buildAddon(cacheDir = beetrootPaths().cacheDir): Promise<string> {
  const out = addonCachePath(cacheDir);
  if (existsSync(out)) return out;
  const cc = await findCompiler();
  if (cc === undefined)
    throw new NetworkError(
      "FailedPrecondition",
      `the beetroot_net addon is not built (${out}) and no C compiler (cc, gcc, clang or $CC) is on PATH: run \`beetroot setup\``,
    );
  const dir = join(cacheDir, "native");
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.build-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  try {
    const src = join(tmp, "beetroot_net.c");
    writeFileSync(src, beetrootNetSource);
    const obj = join(tmp, "beetroot_net.node");
    // Shared objects may leave symbols undefined: the napi_* ones resolve against node at dlopen.
    const r = await execa(cc, ["-shared", "-fPIC", "-O2", "-Wall", "-o", obj, src, "-lpthread"], {
      reject: false,
    });
    if (r.exitCode !== 0)
      throw new NetworkError(
        "FailedPrecondition",
        `building the beetroot_net addon with ${cc} failed:\n${r.stderr}`,
      );
    renameSync(obj, out);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

let loading: Promise<NativeNet> | undefined;

async function load(): Promise<NativeNet> {
  const explicit = process.env.BEETROOT_NET_ADDON;
  const path = explicit && explicit !== "" ? explicit : await buildAddon();
  if (!existsSync(path))
    throw new NetworkError("FailedPrecondition", `BEETROOT_NET_ADDON=${path} does not exist`);
  return dlopen(path);
}

/** The addon, building it first when needed (once per process, however many callers race). */
export function loadNativeNet(): Promise<NativeNet> {
  loading ??= load().catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}
