/**
 * System.Info and System.Health: what runs in the guest and whether it is well. Reads /proc, /sys
 * and the image manifest through an injectable reader so the parsing is tested on fixtures.
 */
import { readFileSync } from "node:fs";
import { release } from "node:os";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HealthResponseSchema, InfoResponseSchema } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { type ImageManifest, parseImageManifest } from "./image-manifest.ts";
import { errorMessage } from "./log.ts";
import { GUEST_PATHS } from "./paths.ts";

export type InfoInit = MessageInitShape<typeof InfoResponseSchema>;
export type HealthInit = MessageInitShape<typeof HealthResponseSchema>;

export type ReadText = (path: string) => string;
export const readText: ReadText = (path) => readFileSync(path, "utf8");

/** Seconds since boot (CLOCK_BOOTTIME), from /proc/uptime. */
export function uptimeSeconds(read: ReadText = readText): number {
  const first = read("/proc/uptime").split(/\s+/)[0] ?? "";
  const n = Number(first);
  if (!Number.isFinite(n)) throw new Error(`unexpected /proc/uptime: ${JSON.stringify(first)}`);
  return n;
}

/** "0-3,6" → 5 */
export function countCpuList(list: string): number {
  let n = 0;
  for (const part of list.trim().split(",")) {
    if (part === "") continue;
    const [a, b] = part.split("-").map(Number);
    if (a === undefined || !Number.isInteger(a)) throw new Error(`bad cpu list: ${list}`);
    n += b === undefined ? 1 : b - a + 1;
  }
  return n;
}

export function memTotalBytes(meminfo: string): bigint {
  const m = /^MemTotal:\s+(\d+) kB$/m.exec(meminfo);
  if (!m?.[1]) throw new Error("MemTotal missing from /proc/meminfo");
  return BigInt(m[1]) * 1024n;
}

/** Filesystem types this kernel offers that matter to containers, by capability name. */
const FS_CAPABILITIES: Readonly<Record<string, string>> = {
  binder: "binderfs",
  erofs: "erofs",
  overlay: "overlay",
  cgroup2: "cgroup2",
  ext4: "ext4",
  tmpfs: "tmpfs",
  fuse: "fuse",
};

export function filesystemCapabilities(procFilesystems: string): string[] {
  const types = new Set(
    procFilesystems
      .split("\n")
      .map((l) => l.trim().split(/\s+/).pop() ?? "")
      .filter(Boolean),
  );
  return Object.entries(FS_CAPABILITIES)
    .filter(([fs]) => types.has(fs))
    .map(([, cap]) => cap);
}

export interface BootTimeline {
  /** Uptime when the init launcher exec'd Bun (0 when unknown). */
  readonly initExecUptime: number;
  /** Uptime when vminitd's code started. */
  readonly startUptime: number;
  /** Uptime when the system was set up and vminitd started dialling the host. */
  readonly readyUptime: number;
}

export interface InfoSourceOptions {
  readonly version: string;
  readonly bunVersion: string;
  readonly timeline: () => BootTimeline;
  readonly cgroupControllers: () => readonly string[];
  readonly read?: ReadText;
}

export class InfoSource {
  private readonly read: ReadText;
  private manifest: ImageManifest | string | undefined;

  constructor(private readonly opts: InfoSourceOptions) {
    this.read = opts.read ?? readText;
  }

  /** The image manifest, or why it cannot be read (read once: the root filesystem is read-only). */
  imageManifest(): ImageManifest | string {
    if (this.manifest === undefined) {
      try {
        this.manifest = parseImageManifest(this.read(GUEST_PATHS.manifest));
      } catch (err) {
        this.manifest = `unavailable (${errorMessage(err)})`;
      }
    }
    return this.manifest;
  }

  info(): InfoInit {
    const caps = filesystemCapabilities(this.read("/proc/filesystems"));
    caps.push(...this.opts.cgroupControllers().map((c) => `cgroup2.${c}`));
    caps.push("vsock");
    const t = this.opts.timeline();
    const manifest = this.imageManifest();
    return {
      vminitdVersion: this.opts.version,
      bunVersion: this.opts.bunVersion,
      kernelRelease: release(),
      crunVersion: typeof manifest === "string" ? manifest : manifest.crunVersion,
      imageFingerprint: typeof manifest === "string" ? "" : manifest.fingerprint,
      uptimeSeconds: uptimeSeconds(this.read),
      capabilities: caps,
      cpus: countCpuList(this.read("/sys/devices/system/cpu/online")),
      memoryBytes: memTotalBytes(this.read("/proc/meminfo")),
      initExecUptimeSeconds: t.initExecUptime,
      vminitdStartUptimeSeconds: t.startUptime,
      readyUptimeSeconds: t.readyUptime,
    };
  }
}
