import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DiskNotFoundError, findDiskBySerial } from "./disks.ts";

describe("findDiskBySerial", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("maps a serial to its /dev node and names what it saw otherwise", () => {
    dir = mkdtempSync(join(tmpdir(), "sysblock-"));
    for (const [name, serial] of [
      ["vda", "root"],
      ["vdb", "br-0"],
      ["vdc", "br-1\n"],
    ] as const) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, "serial"), serial);
    }
    mkdirSync(join(dir, "loop0")); // no serial attribute
    expect(findDiskBySerial("br-1", dir)).toBe("/dev/vdc");
    expect(() => findDiskBySerial("br-9", dir)).toThrow(DiskNotFoundError);
    expect(() => findDiskBySerial("br-9", dir)).toThrow(
      'no virtio disk with serial "br-9" (disks: vda=root, vdb=br-0, vdc=br-1)',
    );
  });
});
