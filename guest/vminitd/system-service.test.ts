import { Duplex, PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { System } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { Client, Code, Server, TtrpcError } from "../../internal/ttrpc/index.ts";
import { GuestNetworkService } from "./network-service.ts";
import type { ProgramRunner } from "./runner.ts";
import { SelfTests } from "./selftests.ts";
import { systemService } from "./system-service.ts";

/** Two PassThroughs cross-wired into a pair of duplex ends. */
function duplexPair() {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  const a = Duplex.from({ readable: bToA, writable: aToB });
  const b = Duplex.from({ readable: aToB, writable: bToA });
  return [a, b] as const;
}

describe("System service over TTRPC", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
  });

  function serve(runner: ProgramRunner) {
    const shutdowns: [string, number][] = [];
    const server = new Server().register(
      System,
      systemService({
        info: async () => ({ vminitdVersion: "0.1.0", bunVersion: "1.4.5", cpus: 2, memoryBytes: 5n }),
        health: () => ({ ok: true, detail: "fine" }),
        beginShutdown: (reason, grace) => shutdowns.push([reason, grace]),
        selfTests: new SelfTests(runner),
        network: new GuestNetworkService(() => {
          throw new Error("this test has no network");
        }),
      }),
    );
    const [a, b] = duplexPair();
    server.serveConnection(a);
    const client = new Client(b);
    close = async () => {
      await client.close();
      await server.close({ graceful: false });
    };
    return { system: client.service(System), shutdowns };
  }

  it("answers Info, Health and SelfTest", async () => {
    const { system } = serve(async () => ({
      exitCode: 0,
      signal: null,
      output: "binder-roundtrip: OK\n",
      truncated: false,
      timedOut: false,
      durationMs: 250,
    }));
    expect((await system.info({})).memoryBytes).toBe(5n);
    expect(await system.health({})).toMatchObject({ ok: true, detail: "fine" });
    expect(await system.selfTest({ name: "binder" })).toMatchObject({
      ok: true,
      exitCode: 0,
      output: "binder-roundtrip: OK\n",
      durationSeconds: 0.25,
    });
  });

  it("answers NotFound for an unknown self-test", async () => {
    const { system } = serve(async () => {
      throw new Error("must not run");
    });
    const err = await system.selfTest({ name: "warp-drive" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TtrpcError);
    expect((err as TtrpcError).code).toBe(Code.NotFound);
    expect((err as TtrpcError).message).toMatch(/no self-test named "warp-drive"/);
  });

  it("replies to Shutdown before starting it, with the default grace for 0", async () => {
    const { system, shutdowns } = serve(async () => {
      throw new Error("unused");
    });
    await system.shutdown({ graceSeconds: 0 });
    await new Promise((r) => setImmediate(r));
    expect(shutdowns).toEqual([["System.Shutdown from the host", 10]]);
    const err = await system.shutdown({ graceSeconds: 301 }).catch((e: unknown) => e);
    expect((err as TtrpcError).code).toBe(Code.InvalidArgument);
  });
});
