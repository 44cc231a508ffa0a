import { describe, expect, it } from "vitest";
import { parseImageManifest } from "./image-manifest.ts";
import { countCpuList, filesystemCapabilities, InfoSource, memTotalBytes, uptimeSeconds } from "./info.ts";

const manifest = {
  fingerprint: "f".repeat(64),
  bunVersion: "1.4.5",
  crunVersion: "1.21-1",
  libcVersion: "2.41-12",
};
const files: Record<string, string> = {
  "/proc/uptime": "1.52 0.80\n",
  "/proc/filesystems": "nodev\tsysfs\nnodev\ttmpfs\nnodev\tbinder\n\terofs\nnodev\toverlay\nnodev\tcgroup2\n",
  "/sys/devices/system/cpu/online": "0-1\n",
  "/proc/meminfo": "MemTotal:        2015232 kB\nMemFree:  100 kB\n",
  "/usr/lib/beetroot/image.json": JSON.stringify(manifest),
};
const read = (p: string) => {
  const t = files[p];
  if (t === undefined) throw new Error(`ENOENT ${p}`);
  return t;
};

describe("parsers", () => {
  it("count cpus, memory, uptime", () => {
    expect(countCpuList("0-3,6\n")).toBe(5);
    expect(countCpuList("0")).toBe(1);
    expect(memTotalBytes(files["/proc/meminfo"] ?? "")).toBe(2015232n * 1024n);
    expect(uptimeSeconds(read)).toBe(1.52);
    expect(() => memTotalBytes("nothing")).toThrow(/MemTotal/);
  });
  it("name capabilities from /proc/filesystems", () => {
    expect(filesystemCapabilities(files["/proc/filesystems"] ?? "")).toEqual([
      "binderfs",
      "erofs",
      "overlay",
      "cgroup2",
      "tmpfs",
    ]);
  });
  it("validate the image manifest", () => {
    expect(parseImageManifest(JSON.stringify(manifest))).toEqual(manifest);
    expect(() => parseImageManifest("{")).toThrow(/not JSON/);
    expect(() => parseImageManifest('{"fingerprint":"x"}')).toThrow(/lacks the string field "bunVersion"/);
  });
});

describe("InfoSource", () => {
  const opts = {
    version: "0.1.0",
    bunVersion: "1.4.5",
    timeline: () => ({ initExecUptime: 0.5, startUptime: 0.9, readyUptime: 1.1 }),
    cgroupControllers: () => ["cpu", "memory"],
  };

  it("assembles Info from /proc, /sys and the image manifest", () => {
    const info = new InfoSource({ ...opts, read }).info();
    expect(info).toMatchObject({
      vminitdVersion: "0.1.0",
      bunVersion: "1.4.5",
      crunVersion: "1.21-1",
      imageFingerprint: "f".repeat(64),
      uptimeSeconds: 1.52,
      cpus: 2,
      memoryBytes: 2015232n * 1024n,
      initExecUptimeSeconds: 0.5,
      vminitdStartUptimeSeconds: 0.9,
      readyUptimeSeconds: 1.1,
    });
    expect(info.capabilities).toEqual([
      "binderfs",
      "erofs",
      "overlay",
      "cgroup2",
      "tmpfs",
      "cgroup2.cpu",
      "cgroup2.memory",
      "vsock",
    ]);
  });

  it("says why when the manifest is missing", () => {
    const info = new InfoSource({
      ...opts,
      read: (p) => (p.endsWith("image.json") ? read("/nope") : read(p)),
    }).info();
    expect(info.crunVersion).toBe("unavailable (ENOENT /nope)");
    expect(info.imageFingerprint).toBe("");
  });
});
