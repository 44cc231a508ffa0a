import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { beetrootPaths } from "../../internal/config/paths.ts";
import {
  type GuestImageMeta,
  GuestImageMissingError,
  guestImageArtifact,
  imageDir,
  markCurrent,
  writeMeta,
} from "./artifact.ts";

const fp = "a".repeat(64);

describe("guestImageArtifact", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const paths = () => {
    dir = mkdtempSync(join(tmpdir(), "assets-"));
    return beetrootPaths({ BEETROOT_ASSETS_DIR: dir });
  };

  it("names the build command when nothing was built", () => {
    const p = paths();
    expect(() => guestImageArtifact(p)).toThrow(GuestImageMissingError);
    expect(() => guestImageArtifact(p)).toThrow(/npx beetroot build guest/);
  });

  it("follows current.json to a complete image", () => {
    const p = paths();
    mkdirSync(imageDir(p, fp), { recursive: true });
    writeFileSync(join(imageDir(p, fp), "guest.erofs"), "x");
    const meta: GuestImageMeta = {
      fingerprint: fp,
      builtAt: "2025-01-01T00:00:00.000Z",
      buildSeconds: 1,
      imageBytes: 1,
      stagedBytes: 2,
      bunVersion: "1.4.5",
      crunVersion: "1.21-1",
      libcVersion: "2.41",
      mkfsVersion: "1.8.6",
    };
    writeMeta(p, meta);
    markCurrent(p, fp);
    const a = guestImageArtifact(p);
    expect(a.image).toBe(join(dir, "guest", fp, "guest.erofs"));
    expect(a.fingerprint).toBe(fp);
    expect(a.meta.bunVersion).toBe("1.4.5");
  });

  it("refuses an image whose meta is missing (interrupted build)", () => {
    const p = paths();
    mkdirSync(imageDir(p, fp), { recursive: true });
    writeFileSync(join(imageDir(p, fp), "guest.erofs"), "x");
    markCurrent(p, fp);
    expect(() => guestImageArtifact(p)).toThrow(/is incomplete; run `npx beetroot build guest`/);
  });
});
