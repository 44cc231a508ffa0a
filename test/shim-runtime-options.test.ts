import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PrivateContainerd, startContainerd } from "./fixtures/containerd.ts";
import { busyboxImage } from "./fixtures/oci-image.ts";
import { missingShimPrerequisites } from "./fixtures/shim-e2e.ts";
import { skipReason } from "./fixtures/skip.ts";

/**
 * A RuntimeClass's runtime options reach the shim: `ctr run --runtime-config-path` sends
 * runtimeoptions.v1.Options{ConfigPath} at `start` exactly as a CRI handler's `ConfigPath` does,
 * and the VM is sized by that file's [vm] defaults. A ConfigPath that does not exist fails the
 * start with a message naming it.
 */
const IMAGE = "docker.io/beetroot/busybox:rtopts";

const why = skipReason(import.meta.url, missingShimPrerequisites());

const memTotalMiB = (meminfo: string) => Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? 0) / 1024;

describe.skipIf(why)("runtime options (containerd 2.1)", () => {
  let c: PrivateContainerd;
  beforeAll(async () => {
    c = await startContainerd({ version: "2.1" });
    const tarball = join(c.dir, "image.tar");
    writeFileSync(tarball, busyboxImage(IMAGE));
    await c.ctr(["images", "import", tarball]);
  }, 120_000);
  afterAll(() => c?.stop());

  const run = (id: string, extra: string[]) =>
    c.ctr(
      ["run", "--rm", "--runtime", "io.containerd.beetroot.v1", ...extra, IMAGE, id, "cat", "/proc/meminfo"],
      {
        timeoutMs: 120_000,
        reject: false,
      },
    );

  it("sizes the VM from the config file ConfigPath names", async () => {
    const config = join(c.dir, "small-vm.toml");
    writeFileSync(config, '[vm]\naccel = "tcg"\nmemory_mib = 320\n');
    const sized = await run("rtopts-small", ["--runtime-config-path", config]);
    expect(sized.exitCode, String(sized.stderr)).toBe(0);
    const plain = await run("rtopts-default", []);
    expect(plain.exitCode, String(plain.stderr)).toBe(0);
    const small = memTotalMiB(String(sized.stdout));
    const normal = memTotalMiB(String(plain.stdout));
    console.log(
      `guest MemTotal: ConfigPath memory_mib=320 → ${small.toFixed(0)} MiB; defaults → ${normal.toFixed(0)} MiB`,
    );
    expect(small).toBeGreaterThan(200);
    expect(small).toBeLessThanOrEqual(320);
    expect(normal).toBeGreaterThan(320);
  }, 300_000);

  it("fails the start precisely when ConfigPath names no file", async () => {
    const gone = join(c.dir, "no-such.toml");
    const r = await run("rtopts-missing", ["--runtime-config-path", gone]);
    expect(r.exitCode).not.toBe(0);
    expect(String(r.stderr)).toContain(`ConfigPath names ${gone}, which does not exist`);
    const left = await c.ctr(["containers", "ls", "-q"]);
    expect(String(left.stdout)).not.toContain("rtopts-missing");
  }, 120_000);
});
