import { describe, expect, it } from "vitest";
import {
  countCpuList,
  filesystemCapabilities,
  InfoSource,
  memTotalBytes,
  parseCrunVersion,
  uptimeSeconds,
} from "./info.ts";
import type { ProgramRunner } from "./runner.ts";

const files: Record<string, string> = {
  "/proc/uptime": "1.52 0.80\n",
  "/proc/filesystems": "nodev\tsysfs\nnodev\ttmpfs\nnodev\tbinder\n\terofs\nnodev\toverlay\nnodev\tcgroup2\n",
  "/sys/devices/system/cpu/online": "0-1\n",
  "/proc/meminfo": "MemTotal:        2015232 kB\nMemFree:  100 kB\n",
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
  it("reads crun's version line", () => {
    expect(parseCrunVersion("crun version 1.21\ncommit: abc\n+SYSTEMD")).toBe("1.21");
    expect(() => parseCrunVersion("bash: crun: not found")).toThrow(/unexpected crun --version output/);
  });
});

describe("InfoSource", () => {
  it("assembles Info and asks crun once", async () => {
    let calls = 0;
    const run: ProgramRunner = async () => {
      calls++;
      return {
        exitCode: 0,
        signal: null,
        output: "crun version 1.21\n",
        truncated: false,
        timedOut: false,
        durationMs: 5,
      };
    };
    const src = new InfoSource({
      version: "0.1.0",
      bunVersion: "1.4.5",
      run,
      read,
      timeline: () => ({ startUptime: 0.9, readyUptime: 1.1 }),
      cgroupControllers: () => ["cpu", "memory"],
    });
    const info = await src.info();
    await src.info();
    expect(calls).toBe(1);
    expect(info).toMatchObject({
      vminitdVersion: "0.1.0",
      bunVersion: "1.4.5",
      crunVersion: "1.21",
      uptimeSeconds: 1.52,
      cpus: 2,
      memoryBytes: 2015232n * 1024n,
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

  it("reports a broken crun in the version field and retries next time", async () => {
    let calls = 0;
    const run: ProgramRunner = async () => {
      calls++;
      return {
        exitCode: 127,
        signal: null,
        output: "error while loading shared libraries",
        truncated: false,
        timedOut: false,
        durationMs: 5,
      };
    };
    const src = new InfoSource({
      version: "0",
      bunVersion: "0",
      run,
      read,
      timeline: () => ({ startUptime: 0, readyUptime: 0 }),
      cgroupControllers: () => [],
    });
    expect(await src.crunVersion()).toMatch(/^unavailable \(crun --version exited 127: error while loading/);
    await src.crunVersion();
    expect(calls).toBe(2);
  });
});
