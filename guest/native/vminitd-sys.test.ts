import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildVminitdSysForHost } from "./host-build.ts";

// The addon is plain Node-API, so Node loads it too: built here with the image's flags.
const dir = mkdtempSync(join(tmpdir(), "vminitd-sys-"));
let native: typeof import("./vminitd-sys.ts");

const NR = { read: 0, write: 1, close: 3, socketpair: 53, fcntl: 72, pipe2: 293 };
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const EBADF = 9;
const EAGAIN = 11;
const EPIPE = 32;
const O_CLOEXEC = 0o2000000;

beforeAll(async () => {
  process.env.BEETROOT_VMINITD_SYS = buildVminitdSysForHost(dir);
  native = await import("./vminitd-sys.ts");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function socketPair(): [number, number] {
  const fds = new Int32Array(2);
  expect(native.sys(NR.socketpair, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds)).toBe(0);
  return [fds[0] ?? -1, fds[1] ?? -1];
}

function pipe(): [number, number] {
  const fds = new Int32Array(2);
  expect(native.sys(NR.pipe2, fds, O_CLOEXEC)).toBe(0);
  return [fds[0] ?? -1, fds[1] ?? -1];
}

/** Everything a socket fd delivers until EOF (the fd is owned by the returned stream). */
function readAll(fd: number): Promise<Buffer> {
  const s = new Socket({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("end", () => resolve(Buffer.concat(chunks)));
    s.on("error", reject);
  });
}

/** Runs `cat file` with its stdout on fd and closes our copy of fd. */
function catInto(file: string, fd: number): Promise<number | null> {
  const child = spawn("cat", [file], { stdio: ["ignore", fd, "inherit"] });
  native.sys(NR.close, fd);
  return new Promise((resolve) => child.once("exit", resolve));
}

describe("vminitd_sys addon", () => {
  it("returns -errno instead of -1", () => {
    expect(native.sys(NR.close, 1_000_000)).toBe(-EBADF);
  });

  it("passes the first byte of a view, honouring its offset", () => {
    const [a, b] = socketPair();
    const backing = Buffer.from("..hello..");
    expect(native.sys(NR.write, a, backing.subarray(2), 5)).toBe(5);
    const into = new Uint8Array(new ArrayBuffer(32), 8, 16);
    expect(native.sys(NR.read, b, into, into.byteLength)).toBe(5);
    expect(Buffer.from(into.subarray(0, 5)).toString()).toBe("hello");
    native.sys(NR.close, a);
    native.sys(NR.close, b);
  });

  it("refuses arguments it cannot turn into a machine word", () => {
    expect(() => native.sys(NR.close, 1.5)).toThrow(/integer, a bigint, null or a byte view/);
    expect(() => native.sys(NR.close, "3" as unknown as number)).toThrow(TypeError);
  });

  it("receiveFd tells an empty socket, bytes without a descriptor, and a closed peer apart", () => {
    const [a, b] = socketPair();
    expect(native.receiveFd(b)).toBe(-EAGAIN);
    native.sys(NR.write, a, Buffer.from("abc"), 3);
    expect(native.receiveFd(b)).toBe(-1003);
    native.sys(NR.close, a);
    expect(native.receiveFd(b)).toBe(-1000);
    native.sys(NR.close, b);
  });

  it("pump splices a pipe into a socket byte-exact and settles at EOF", async () => {
    const data = randomBytes(8 * 1024 * 1024 + 123);
    const file = join(dir, "pump-in.bin");
    writeFileSync(file, data);
    const [r, w] = pipe();
    const [a, b] = socketPair();
    const [cr, cw] = pipe();
    const received = readAll(b);
    const done = native.pump(r, a, cr);
    expect(await catInto(file, w)).toBe(0);
    const result = await done;
    expect(result).toEqual({
      bytes: data.length,
      readErrno: 0,
      writeErrno: 0,
      cancelled: false,
      spliced: true,
    });
    for (const fd of [r, a, cr, cw]) native.sys(NR.close, fd); // closing a is the reader's EOF
    expect((await received).equals(data)).toBe(true);
  });

  it("pump copies with read/write what splice refuses (no pipe on either side)", async () => {
    const [inA, inB] = socketPair();
    const [a, b] = socketPair();
    const [cr, cw] = pipe();
    const received = readAll(b);
    const done = native.pump(inB, a, cr);
    const data = Buffer.from("x".repeat(100_000));
    const feeder = new Socket({ fd: inA, readable: false, writable: true });
    feeder.end(data);
    const result = await done;
    expect(result).toMatchObject({ bytes: data.length, readErrno: 0, writeErrno: 0, spliced: false });
    for (const fd of [inB, a, cr, cw]) native.sys(NR.close, fd);
    expect((await received).equals(data)).toBe(true);
  });

  it("pump drains to EOF after the socket's peer went away, reporting the write error", async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const file = join(dir, "pump-gone.bin");
    writeFileSync(file, data);
    const [r, w] = pipe();
    const [a, b] = socketPair();
    const [cr, cw] = pipe();
    native.sys(NR.close, b);
    const done = native.pump(r, a, cr);
    expect(await catInto(file, w)).toBe(0); // the writer was never left blocked on a full pipe
    const result = await done;
    expect(result).toMatchObject({ bytes: data.length, writeErrno: EPIPE, cancelled: false });
    for (const fd of [r, a, cr, cw]) native.sys(NR.close, fd);
  });

  it("pump ends when its cancel pipe's write end closes, even with a writer still holding the input", async () => {
    const [r, w] = pipe();
    const [a, b] = socketPair();
    const [cr, cw] = pipe();
    const done = native.pump(r, a, cr);
    await new Promise((resolve) => setTimeout(resolve, 50));
    native.sys(NR.close, cw);
    expect(await done).toMatchObject({ bytes: 0, cancelled: true });
    for (const fd of [r, w, a, b, cr]) native.sys(NR.close, fd);
  });

  it("pump ends on cancel while the socket is full (a host that stopped reading)", async () => {
    const file = join(dir, "pump-stuck.bin");
    writeFileSync(file, randomBytes(16 * 1024 * 1024));
    const [r, w] = pipe();
    const [a, b] = socketPair(); // nobody reads b
    const [cr, cw] = pipe();
    const done = native.pump(r, a, cr);
    const writer = catInto(file, w);
    await new Promise((resolve) => setTimeout(resolve, 300));
    native.sys(NR.close, cw);
    const result = await done;
    expect(result).toMatchObject({ cancelled: true, writeErrno: 0 });
    expect(result.bytes).toBeLessThan(16 * 1024 * 1024);
    for (const fd of [r, a, b, cr]) native.sys(NR.close, fd); // cat then dies of EPIPE
    await writer;
  });

  it("pump refuses arguments that are not descriptors", () => {
    expect(() => native.pump(0, -1, 0)).toThrow(/each must be a descriptor/);
    expect(() => (native.pump as (...a: unknown[]) => unknown)(0, 1)).toThrow(TypeError);
  });
});
