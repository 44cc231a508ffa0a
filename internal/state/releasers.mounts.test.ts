import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { setupMissing, skipReason } from "../../test/fixtures/skip.ts";
import { createLogger } from "../log/logger.ts";
import { basicReleasers } from "./releasers.ts";

const notRoot = skipReason(
  import.meta.url,
  setupMissing(process.getuid?.() === 0 ? undefined : "bind mounts need root; the test command runs as root"),
);

describe.skipIf(notRoot !== undefined)("releasing a dir that still holds a mount", () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });

  it("detaches the mount first: the bound host data survives the recursive removal", async () => {
    const root = mkdtempSync(join(tmpdir(), "beetroot-release-"));
    roots.push(root);
    const data = join(root, "user-data");
    mkdirSync(data);
    writeFileSync(join(data, "precious"), "keep me\n");
    const run = join(root, "run", "vm", "x");
    mkdirSync(join(run, "volumes", "v0"), { recursive: true });
    execFileSync("mount", ["--bind", data, join(run, "volumes", "v0")]);
    await basicReleasers().dir!(
      { kind: "dir", path: run },
      { allowedRoots: [join(root, "run")], log: createLogger({ fd: null }) },
    );
    expect(existsSync(run)).toBe(false);
    expect(readFileSync(join(data, "precious"), "utf8")).toBe("keep me\n");
  });
});
