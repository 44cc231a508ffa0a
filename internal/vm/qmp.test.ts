import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { setupMissing, skipReason } from "../../test/fixtures/skip.ts";
import { QmpClient, QmpClosedError, QmpError, QmpTimeoutError } from "./qmp.ts";

const dir = mkdtempSync(join(tmpdir(), "beetroot-qmp-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A QMP peer under the test's control: answers capabilities, then does what `behave` says. */
async function fakeQemu(path: string, behave: (line: string, s: Socket) => void) {
  const server = createServer((s) => {
    s.write('{"QMP": {"version": {}, "capabilities": []}}\r\n');
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as { execute: string; id: number };
        if (msg.execute === "qmp_capabilities") s.write(`{"return": {}, "id": ${msg.id}}\r\n`);
        else behave(line, s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return server;
}

describe("QMP client (fake peer)", () => {
  it("gets answers, errors and events, and times out on a silent QEMU", async () => {
    const path = join(dir, "fake.sock");
    const server = await fakeQemu(path, (line, s) => {
      const msg = JSON.parse(line) as { execute: string; id: number };
      if (msg.execute === "query-status") {
        s.write('{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n');
        s.write(`{"return": {"status": "internal-error", "running": false}, "id": ${msg.id}}\r\n`);
      } else if (msg.execute === "bogus") {
        s.write(
          `{"error": {"class": "CommandNotFound", "desc": "The command bogus has not been found"}, "id": ${msg.id}}\r\n`,
        );
      }
      // anything else: silence, like a QEMU whose main loop is stuck
    });
    const qmp = await QmpClient.connect(path, { timeoutMs: 2000 });
    const events: string[] = [];
    qmp.onEvent((e) => events.push(e.event));
    expect(await qmp.queryStatus()).toEqual({ running: false, status: "internal-error" });
    expect(events).toEqual(["STOP"]);
    await expect(qmp.execute("bogus")).rejects.toThrow(QmpError);
    await expect(qmp.execute("bogus")).rejects.toThrow(
      "QMP bogus: CommandNotFound: The command bogus has not been found",
    );
    await expect(qmp.execute("hang", undefined, 100)).rejects.toThrow(QmpTimeoutError);
    const pending = qmp.execute("hang", undefined, 5000);
    qmp.close();
    await expect(pending).rejects.toThrow(QmpClosedError);
    await qmp.closed;
    server.close();
  });

  it("gives up waiting for a socket that never appears", async () => {
    const started = Date.now();
    await expect(QmpClient.connect(join(dir, "never.sock"), { timeoutMs: 150 })).rejects.toThrow(
      /did not answer within 150 ms/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

const qemu = "/usr/bin/qemu-system-x86_64";
const noQemu = skipReason(
  import.meta.url,
  setupMissing(existsSync(qemu) ? undefined : `${qemu} missing (npx beetroot setup)`),
);
describe.skipIf(noQemu !== undefined)("QMP client (real QEMU)", () => {
  it("talks to a paused QEMU and notices it exit", async () => {
    const path = join(dir, "real.sock");
    const child = spawn(
      qemu,
      [
        "-M",
        "microvm",
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-S",
        "-qmp",
        `unix:${path},server=on,wait=off`,
      ],
      {
        stdio: "ignore",
      },
    );
    const qmp = await QmpClient.connect(path, { timeoutMs: 10_000 });
    expect(await qmp.queryStatus()).toEqual({ running: false, status: "prelaunch" });
    await qmp.execute("quit");
    await qmp.closed;
    const code = await new Promise((r) => child.once("exit", (c) => r(c)));
    expect(code).toBe(0);
  });
});
