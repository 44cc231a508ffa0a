/**
 * vminitd's Bun-only code (its native addon, Bun's net and child handling), run under the Bun
 * binary the guest image ships with the JIT off as in the guest: the unit project runs on Node, so
 * these tests build the addon with the image's flags and spawn Bun on fixture scripts.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { System } from "../../../api/gen/beetroot/guest/v1/system_pb.ts";
import { Client } from "../../../internal/ttrpc/index.ts";
import { setupMissing, skipReason } from "../../../test/fixtures/skip.ts";
import { buildVminitdSysForHost } from "../../native/host-build.ts";

const bun = resolve("node_modules/bun/bin/bun.exe");
const fixtures = resolve("guest/vminitd/sys/fixtures");
const haveBun = !skipReason(
  import.meta.url,
  setupMissing(existsSync(bun) ? undefined : `${bun} missing (npm install installs the bun devDependency)`),
);

describe.skipIf(!haveBun)("vminitd under Bun", () => {
  const dir = mkdtempSync(join(tmpdir(), "vminitd-bun-"));
  // The guest's environment: no JIT (guest/init/init.c), the addon built as the image builds it.
  const env = { ...process.env, BEETROOT_VMINITD_SYS: buildVminitdSysForHost(dir), BUN_JSC_useJIT: "0" };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs programs with Bun.spawn: capture, exit codes, signals, deadline, bound, missing program", async () => {
    const { stdout } = await promisify(execFile)(bun, [join(fixtures, "runner-under-bun.ts")], {
      timeout: 20_000,
      env,
    });
    const r = JSON.parse(stdout.trim().split("\n").pop() ?? "{}");
    expect(r.captured).toMatchObject({ exitCode: 7, signal: null, timedOut: false, truncated: false });
    expect(r.captured.output).toContain("out\n");
    expect(r.captured.output).toContain("err\n");
    expect(r.ownership.owned).toHaveLength(1);
    expect(r.ownership.released).toEqual(r.ownership.owned);
    expect(r.signalled).toMatchObject({ exitCode: 143, signal: "SIGTERM" });
    expect(r.deadline).toMatchObject({ timedOut: true, exitCode: 137, signal: "SIGKILL" });
    expect(r.bounded.output).toHaveLength(100);
    expect(r.bounded.truncated).toBe(true);
    expect(r.heldOpen.output).toBe("early\nlate\n");
    expect(r.missing).toEqual({
      isStartError: true,
      message: expect.stringMatching(/cannot run \/nonexistent\/prog: .*ENOENT/),
    });
  });

  it("reaps orphans without stealing the statuses Bun waits for", async () => {
    const { stdout } = await promisify(execFile)(bun, [join(fixtures, "reaper-under-bun.ts")], {
      timeout: 20_000,
      env,
    });
    const r = JSON.parse(stdout.trim().split("\n").pop() ?? "{}");
    expect(r.runnerExit).toBe(3);
    expect(r.directExit).toBe(5);
    expect(r.orphan).toBeGreaterThan(1);
    expect(r.orphanExit).toBe(42);
    expect(r.reaped).toBe(1);
  });

  it("dials with connect() through the addon, adopts the fd with Bun.connect, and serves TTRPC on it", async () => {
    const path = join(dir, "host.sock");
    const accepted = new Promise<Socket>((resolveSocket) => {
      const srv = createServer((s) => {
        srv.close();
        resolveSocket(s);
      });
      srv.listen(path);
    });
    const child = execFile(bun, [join(fixtures, "serve-over-fd.ts"), path], { timeout: 20_000, env });
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

  it("writes through Bun's native socket under backpressure, in order, then ends both ways", async () => {
    const path = join(dir, "bytes.sock");
    const total = 8 * 1024 * 1024 + 123;
    const accepted = new Promise<Socket>((resolveSocket) => {
      // Half-open: the guest's FIN must not end this side before it answered.
      const srv = createServer({ allowHalfOpen: true }, (s) => {
        srv.close();
        resolveSocket(s);
      });
      srv.listen(path);
    });
    const child = execFile(bun, [join(fixtures, "byte-stream-under-bun.ts"), path, String(total)], {
      timeout: 60_000,
      env,
    });
    let out = "";
    child.stdout?.on("data", (d) => {
      out += d;
    });
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    const sock = await accepted;
    // Not reading for a while makes the guest side's writes back up.
    sock.pause();
    await new Promise((r) => setTimeout(r, 300));
    let got = 0;
    let mismatch = -1;
    const done = new Promise<void>((r) => sock.on("end", () => r()));
    sock.on("data", (d: Buffer) => {
      for (let i = 0; i < d.length; i++) if (mismatch < 0 && d[i] !== ((got + i) & 0xff)) mismatch = got + i;
      got += d.length;
    });
    sock.resume();
    await done;
    sock.end(Buffer.alloc(100_000, 7));
    await exited;
    expect({ got, mismatch }).toEqual({ got: total, mismatch: -1 });
    const r = JSON.parse(out.trim());
    expect(r).toMatchObject({ sent: total, ended: true, received: 100_000, destroyed: true });
    expect(r.drains).toBeGreaterThan(0);
  });

  /** Runs `script` under process-io-under-bun.ts with unix-socket "host" streams 1-3 (stdin, stdout, stderr). */
  async function processIo(script: string) {
    const sockDir = mkdtempSync(join(dir, "io-"));
    const streams = await Promise.all(
      [1, 2, 3].map(
        (port) =>
          new Promise<{ port: number; accepted: Promise<Socket> }>((ready) => {
            let resolveSocket!: (s: Socket) => void;
            const accepted = new Promise<Socket>((r) => {
              resolveSocket = r;
            });
            const srv = createServer((s) => {
              srv.close();
              resolveSocket(s);
            });
            srv.listen(join(sockDir, `${port}.sock`), () => ready({ port, accepted }));
          }),
      ),
    );
    const child = execFile(bun, [join(fixtures, "process-io-under-bun.ts"), sockDir, script], {
      timeout: 60_000,
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    let log = "";
    child.stderr?.on("data", (d) => {
      log += d;
    });
    const exited = new Promise<{ out: string; log: () => string }>((r) => {
      let out = "";
      child.stdout?.on("data", (d) => {
        out += d;
      });
      child.once("exit", () => r({ out, log: () => log }));
    });
    const [stdin, stdout, stderr] = await Promise.all(streams.map((s) => s.accepted));
    return { stdin, stdout, stderr, exited };
  }

  const bytesOf = (s: Socket | undefined) =>
    new Promise<Buffer>((r) => {
      const chunks: Buffer[] = [];
      s?.on("data", (d: Buffer) => chunks.push(d));
      s?.on("end", () => r(Buffer.concat(chunks)));
    });

  it("copies a process's pipes to host sockets and ends them once drained", async () => {
    const { stdin, stdout, stderr, exited } = await processIo(
      "read line; echo got:$line; echo to-err >&2; exit 4",
    );
    const out = bytesOf(stdout);
    const err = bytesOf(stderr);
    stdin?.end("hello\n");
    expect((await out).toString()).toBe("got:hello\n");
    expect((await err).toString()).toBe("to-err\n");
    expect(JSON.parse((await exited).out.trim())).toEqual({ exitCode: 4 });
  });

  // Unix sockets splice without blocking, so this passes here even with a blocking stdin socket;
  // vsock (no splice_read: a plain blocking recv) hangs then, which test/shim.test.ts catches.
  it("releases the stdio of an exited process while the host keeps stdin open", async () => {
    const { stdin, stdout, exited } = await processIo("echo bye");
    const out = bytesOf(stdout);
    const done = await exited;
    expect(JSON.parse(done.out.trim())).toEqual({ exitCode: 0 });
    expect((await out).toString()).toBe("bye\n");
    expect(done.log()).toMatch(/stdio stream drained.*stream=stdin.*cancelled=true/);
    stdin?.destroy();
  });

  it("pumps a large output byte-exact with splice, both streams at once, EOF after the last byte", async () => {
    const files = mkdtempSync(join(dir, "out-"));
    const { stdin, stdout, stderr, exited } = await processIo(
      `head -c 16777216 /dev/urandom | tee ${files}/out.bin; head -c 3000000 /dev/urandom | tee ${files}/err.bin >&2`,
    );
    stdin?.end();
    const [out, err, done] = await Promise.all([bytesOf(stdout), bytesOf(stderr), exited]);
    expect(JSON.parse(done.out.trim())).toEqual({ exitCode: 0 });
    expect(out.equals(readFileSync(join(files, "out.bin")))).toBe(true);
    expect(err.equals(readFileSync(join(files, "err.bin")))).toBe(true);
    // The native pump moved it (not a JS copy): vminitd logs how each stream ended.
    expect(done.log()).toMatch(/stdio stream drained.*stream=stdout.*bytes=16777216.*spliced=true/);
  });
});
