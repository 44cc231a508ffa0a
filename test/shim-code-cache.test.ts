import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { DeleteResponseSchema } from "../api/gen/containerd/task/v2/shim_pb.ts";
import { SHIM_SEA } from "./fixtures/containerd.ts";
import { setupMissing, skipReason } from "./fixtures/skip.ts";

/**
 * The single executable runs its bundle through V8 code caches of its own (loader.ts), one per
 * V8 flag set and action, written when a process exits without a cache V8 accepted. Proved on the
 * real executable: a second run finds the first run's cache and does not write it again (V8
 * accepted it), the server's flags get a cache of their own, and the output is unchanged.
 */
const why = skipReason(
  import.meta.url,
  setupMissing(existsSync(SHIM_SEA) ? undefined : `${SHIM_SEA} not built (npm run build)`),
);

const root = mkdtempSync(join(tmpdir(), "beetroot-code-cache-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function runDelete(env: Record<string, string>) {
  return execa(
    SHIM_SEA,
    ["-namespace", "cc", "-address", join(root, "none.sock"), "-id", "cc1", "-bundle", root, "delete"],
    { env: { BEETROOT_CACHE_DIR: join(root, "cache"), ...env }, encoding: "buffer", stdin: "ignore" },
  );
}

const caches = () => {
  const dir = join(root, "cache", "code-cache");
  return existsSync(dir) ? readdirSync(dir).sort() : [];
};

describe.skipIf(why !== undefined)("the shim executable's code caches", () => {
  it("are written once per flag set and action, and accepted by the next run", async () => {
    const first = await runDelete({ NODE_OPTIONS: "" });
    expect(fromBinary(DeleteResponseSchema, first.stdout).exitStatus).toBe(137);
    const [file] = caches();
    expect(file).toMatch(/^shim-[0-9a-f]{16}-v\d+\.\d+\.\d+-[0-9a-f]{8}-delete\.v8cache$/);
    const path = join(root, "cache", "code-cache", file ?? "");
    const before = statSync(path);

    const second = await runDelete({ NODE_OPTIONS: "" });
    expect(fromBinary(DeleteResponseSchema, second.stdout).exitStatus).toBe(137);
    const after = statSync(path);
    // Rewritten means V8 rejected it (or there was none): the same inode and mtime mean accepted.
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);

    // The server's V8 flags change what a cache must have been made under: a file of their own.
    await runDelete({ NODE_OPTIONS: "--jitless --max-semi-space-size=1" });
    expect(caches()).toHaveLength(2);

    // An earlier build's cache goes when a cache is next written.
    const stale = join(root, "cache", "code-cache", "shim-0000000000000000-v20.0.0-00000000-delete.v8cache");
    writeFileSync(stale, "stale");
    await execa(SHIM_SEA, ["-v"], { env: { BEETROOT_CACHE_DIR: join(root, "cache"), NODE_OPTIONS: "" } });
    expect(existsSync(stale)).toBe(false);
    expect(caches()).toHaveLength(3);
  });
});
