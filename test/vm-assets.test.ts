import { closeSync, openSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AssetError } from "../internal/vm/assets-check.ts";
import { VmFailedError } from "../internal/vm/launcher.ts";
import { skipReason } from "./fixtures/skip.ts";
import { leftovers, missingVmAssets, NOTHING_LEFT, type VmTestEnv, vmTestEnv } from "./vm-support.ts";

/**
 * A missing or corrupt kernel or guest image: the error names the file and the command that
 * builds it, comes fast (no boot timeout), and leaves nothing behind.
 */
const missing = skipReason(import.meta.url, missingVmAssets());

describe.skipIf(missing)("VM boot with bad assets", () => {
  let env: VmTestEnv;
  beforeAll(async () => {
    env = await vmTestEnv();
  });
  afterAll(() => env?.cleanup());

  const launchError = async (
    id: string,
    overrides: { kernel?: string; rootImage?: string },
  ): Promise<Error> => {
    const started = Date.now();
    const err = await env.host.vmm.launch(env.host.spec(id, overrides)).then(
      () => new Error("booted"),
      (e: unknown) => e as Error,
    );
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
    return err;
  };

  it("names a missing kernel and `npx beetroot build kernel`", async () => {
    const kernel = join(env.root, "no-such-vmlinux");
    const err = await launchError("a1", { kernel });
    expect(err).toBeInstanceOf(AssetError);
    expect(err.message).toMatch(
      `${kernel}: the guest kernel does not exist; rebuild it with \`npx beetroot build kernel\``,
    );
  });

  it("names a kernel that is not an ELF vmlinux", async () => {
    const kernel = join(env.root, "garbage-vmlinux");
    writeFileSync(kernel, Buffer.alloc(1 << 16, 0x5a));
    const err = await launchError("a2", { kernel });
    expect(err.message).toMatch(
      `${kernel}: the guest kernel is not an ELF vmlinux; rebuild it with \`npx beetroot build kernel\``,
    );
  });

  it("names a truncated kernel that QEMU cannot load", async () => {
    // A real ELF header followed by nothing: passes the cheap check, fails in QEMU's loader.
    const kernel = join(env.root, "truncated-vmlinux");
    const head = Buffer.alloc(1 << 16);
    const fd = openSync(env.host.kernel.vmlinux, "r");
    readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    writeFileSync(kernel, head);
    const err = await launchError("a3", { kernel });
    expect(err).toBeInstanceOf(VmFailedError);
    expect(err.message).toMatch(/QEMU exited/);
    expect(err.message).toContain(`(kernel ${kernel}: rebuild with \`npx beetroot build kernel\`)`);
  });

  it("names a missing guest image and `npx beetroot build guest`", async () => {
    const rootImage = join(env.root, "no-such.erofs");
    const err = await launchError("a4", { rootImage });
    expect(err.message).toBe(
      `${rootImage}: the guest image does not exist; rebuild it with \`npx beetroot build guest\``,
    );
  });

  it("names a guest image that is not EROFS", async () => {
    const rootImage = join(env.root, "zeros.erofs");
    writeFileSync(rootImage, Buffer.alloc(1 << 20));
    const err = await launchError("a5", { rootImage });
    expect(err.message).toBe(
      `${rootImage}: the guest image is not an EROFS image (no superblock magic at 1024); rebuild it with \`npx beetroot build guest\``,
    );
  });
});
