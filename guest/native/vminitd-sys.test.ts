import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildVminitdSysForHost } from "./host-build.ts";

// The addon is plain Node-API, so Node loads it too: built here with the image's flags.
const dir = mkdtempSync(join(tmpdir(), "vminitd-sys-"));
let native: typeof import("./vminitd-sys.ts");

const NR = { read: 0, write: 1, close: 3, socketpair: 53, fcntl: 72 };
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const EBADF = 9;
const EAGAIN = 11;

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
});
