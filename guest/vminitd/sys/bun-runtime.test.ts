/**
 * vminitd's Bun-only code (bun:ffi, Bun's net and child handling), run under the Bun binary the
 * guest image ships: the unit project runs on Node, so these tests spawn Bun on fixture scripts.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { System } from "../../../api/gen/beetroot/guest/v1/system_pb.ts";
import { Client } from "../../../internal/ttrpc/index.ts";

const bun = resolve("node_modules/bun/bin/bun.exe");
const fixtures = resolve("guest/vminitd/sys/fixtures");
const haveBun = existsSync(bun);
if (!haveBun)
  console.warn(`SKIP bun-runtime tests: ${bun} missing (npm install installs the bun devDependency)`);

describe.skipIf(!haveBun)("vminitd under Bun", () => {
  const dir = mkdtempSync(join(tmpdir(), "vminitd-bun-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reaps orphans without stealing the statuses Bun waits for", async () => {
    const { stdout } = await promisify(execFile)(bun, [join(fixtures, "reaper-under-bun.ts")], {
      timeout: 20_000,
    });
    const r = JSON.parse(stdout.trim().split("\n").pop() ?? "{}");
    expect(r.runnerExit).toBe(3);
    expect(r.directExit).toBe(5);
    expect(r.orphan).toBeGreaterThan(1);
    expect(r.orphanExit).toBe(42);
    expect(r.reaped).toBe(1);
  });

  it("dials with FFI connect(), adopts the fd into net, and serves TTRPC on it", async () => {
    const path = join(dir, "host.sock");
    const accepted = new Promise<Socket>((resolveSocket) => {
      const srv = createServer((s) => {
        srv.close();
        resolveSocket(s);
      });
      srv.listen(path);
    });
    const child = execFile(bun, [join(fixtures, "serve-over-fd.ts"), path], { timeout: 20_000 });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const client = new Client(await accepted);
    const system = client.service(System);
    expect((await system.info({})).vminitdVersion).toBe("fixture");
    expect((await system.health({})).ok).toBe(true);
    const st = await system.selfTest({ name: "echo" });
    expect(st).toMatchObject({ ok: true, exitCode: 0, output: "round trip\n" });
    await client.close();
    expect(await exited).toBe(0);
  });
});
