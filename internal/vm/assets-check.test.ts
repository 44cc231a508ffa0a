import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AssetError, checkErofsImage, checkKernel } from "./assets-check.ts";

const dir = mkdtempSync(join(tmpdir(), "beetroot-assets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe("asset checks", () => {
  it("accepts an x86-64 ELF and names the build command for everything else", () => {
    const elf = Buffer.alloc(0x400);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2;
    elf.writeUInt16LE(62, 18);
    expect(() => checkKernel(file("vmlinux", elf))).not.toThrow();

    const missing = join(dir, "nope");
    expect(() => checkKernel(missing)).toThrow(
      `${missing}: the guest kernel does not exist; rebuild it with \`npx beetroot build kernel\``,
    );
    const bz = Buffer.alloc(0x400);
    bz.write("HdrS", 0x202, "latin1");
    expect(() => checkKernel(file("bzImage", bz))).toThrow(/compressed bzImage/);
    expect(() => checkKernel(file("short", Buffer.alloc(10)))).toThrow(/truncated \(10 bytes\)/);
    const arm = Buffer.from(elf);
    arm.writeUInt16LE(183, 18);
    expect(() => checkKernel(file("arm", arm))).toThrow(/not an x86-64 ELF/);
    expect(() => checkKernel(dir)).toThrow(AssetError);
  });

  it("accepts an EROFS superblock and rejects anything else", () => {
    const img = Buffer.alloc(4096);
    img.writeUInt32LE(0xe0f5e1e2, 1024);
    expect(() => checkErofsImage(file("guest.erofs", img))).not.toThrow();
    const p = file("zero.erofs", Buffer.alloc(4096));
    expect(() => checkErofsImage(p)).toThrow(
      `${p}: the guest image is not an EROFS image (no superblock magic at 1024); rebuild it with \`npx beetroot build guest\``,
    );
  });
});
