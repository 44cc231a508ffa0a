import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { beetrootPaths } from "../internal/config/paths.ts";
import { SetupError } from "../internal/hostdeps/errors.ts";
import { loadHostDeps } from "../internal/hostdeps/index.ts";
import { createPrivateApt } from "../internal/hostdeps/private-apt.ts";
import { runSetup } from "../internal/hostdeps/setup.ts";
import { setupMissing, skipReason } from "./fixtures/skip.ts";

/**
 * Runs the real `beetroot setup` against this machine (apt, the mirror, dpkg-deb) and then uses
 * what it installed. The first run may install; the second must find everything cached quickly.
 */
const reason = skipReason(
  import.meta.url,
  setupMissing(
    process.getuid?.() !== 0 ? "beetroot setup needs root (the test command runs as root)" : undefined,
  ),
);

describe.skipIf(reason !== undefined)("beetroot setup on this host", () => {
  it("is idempotent and a second run is fast and all cached", async () => {
    const lines: string[] = [];
    const opts = {
      paths: beetrootPaths(),
      refresh: false,
      maxListAgeHours: 12,
      log: (l: string) => lines.push(l),
    };
    await runSetup(opts);
    const started = Date.now();
    const again = await runSetup(opts);
    const seconds = (Date.now() - started) / 1000;
    console.log(`warm setup: ${seconds.toFixed(2)} s`);
    expect(seconds).toBeLessThan(10);
    expect(again.rows.map((r) => r.state)).toEqual(again.rows.map(() => "cached"));
    expect(again.rows.map((r) => r.set)).toEqual([
      "containerd-2.1",
      "containerd-1.7",
      "vhost-device-vsock",
      "erofs-utils",
      "virtiofsd",
      "linux-source-6.12",
      "go-ttrpc",
      "guest-userspace",
    ]);
  });

  it("installs binaries that run on this host", async () => {
    const deps = loadHostDeps();
    expect(String((await execa(deps.containerd["2.1"].containerd, ["--version"])).stdout)).toMatch(
      /containerd .*2\.1\./,
    );
    expect(String((await execa(deps.containerd["1.7"].containerd, ["--version"])).stdout)).toMatch(
      /containerd .*1\.7\./,
    );
    expect(String((await execa(deps.vhostDeviceVsock, ["--version"])).stdout)).toMatch(/vhost-device-vsock/);
    expect(String((await execa(deps.virtiofsd, ["--version"])).stdout)).toMatch(
      /virtiofsd 1\.(1[0-9]|[2-9]\d)/,
    );
    expect(String((await execa(deps.guestUserspace.crunWrapper, ["--version"])).stdout)).toMatch(
      /crun version 1\.(2[1-9]|[3-9]\d)/,
    );
    expect(String((await execa(deps.runc, ["--version"])).stdout)).toMatch(/runc version/);
  });

  it("mkfs.erofs >= 1.8 from the trixie set builds an image its fsck accepts", async () => {
    const deps = loadHostDeps();
    const dir = mkdtempSync(join(tmpdir(), "beetroot-erofs-"));
    const src = join(dir, "src");
    await execa("mkdir", ["-p", join(src, "a/b")]);
    writeFileSync(join(src, "a/b/hello.txt"), "hello from beetroot\n".repeat(100));
    const img = join(dir, "img.erofs");
    const mk = await execa(deps.mkfsErofs, ["-zlz4hc", img, src], { all: true });
    expect(String(mk.all)).toMatch(/mkfs\.erofs.*1\.(8|9)/);
    const fsck = await execa(deps.erofs.fsckErofs, [img], { reject: false, all: true });
    expect(fsck.exitCode, String(fsck.all)).toBe(0);
  });

  it("reports an unreachable mirror with the suite, the URI and what to do", async () => {
    const apt = createPrivateApt({
      cacheDir: mkdtempSync(join(tmpdir(), "beetroot-apt-")),
      // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
      mirror: { uri: "http://127.0.0.1:9/debian", origin: "test" },
      suite: "trixie",
      arch: "amd64",
    });
    const err = await apt.update(() => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SetupError);
    expect((err as SetupError).what).toMatch(
      /apt-get update of trixie from http:\/\/127\.0\.0\.1:9\/debian failed/,
    );
    expect((err as SetupError).remedy).toMatch(/reachable .*npx beetroot setup --refresh/);
  });
});
