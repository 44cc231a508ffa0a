/**
 * Interop with containerd's Go ttrpc (Debian's golang-github-containerd-ttrpc-dev >= 1.2, built
 * offline): our client against the Go server and the Go client against our server, for every call
 * kind, errors with details, metadata, deadlines, cancellation and payloads near the 4 MiB limit.
 * TS<->TS runs the same scenarios as the reference.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareGoPeer } from "../../internal/ttrpc/bench/go-peer.ts";
import { Code } from "../../internal/ttrpc/codes.ts";
import { patternBytes } from "../../internal/ttrpc/testdata/interop-service.ts";
import { setupMissing, skipReason } from "../fixtures/skip.ts";
import { type Driver, goDriver, type PeerServer, startGoServer, startTsServer, tsDriver } from "./peers.ts";

const prep = await prepareGoPeer((line) => process.stderr.write(`gopeer: ${line}\n`));
skipReason(
  import.meta.url,
  setupMissing(prep.ok ? undefined : `missing ${prep.missing} (npx beetroot setup)`),
);
const binary = prep.ok ? prep.binary : "";

const MiB = 1024 * 1024;
const combos = [
  { client: "ts", server: "go" },
  { client: "go", server: "ts" },
  { client: "ts", server: "ts" },
  { client: "go", server: "go" },
] as const;

describe.skipIf(!prep.ok)(
  `ttrpc interop (containerd/ttrpc ${prep.ok ? prep.ttrpcVersion : "missing"})`,
  () => {
    for (const combo of combos) {
      describe(`${combo.client} client -> ${combo.server} server`, () => {
        let server: PeerServer;
        let driver: Driver;
        beforeAll(async () => {
          server = combo.server === "ts" ? await startTsServer() : await startGoServer(binary);
          driver = combo.client === "ts" ? await tsDriver(server.path) : await goDriver(binary, server.path);
        });
        afterAll(async () => {
          await driver?.close();
          await server?.close();
        });

        it("unary: echo, repeated metadata, deadline seen by the server", async () => {
          const out = await driver.run({
            kind: "unary",
            calls: [
              { payload: new TextEncoder().encode("hello"), metadataKey: "containerd-namespace-ttrpc" },
            ],
            metadata: { "containerd-namespace-ttrpc": ["k8s.io", "default"] },
            timeoutMs: 5000,
          });
          expect(out.code).toBe(Code.OK);
          expect(new TextDecoder().decode(out.replies[0]?.payload)).toBe("hello");
          expect(out.replies[0]?.metadataValues).toEqual(["k8s.io", "default"]);
          const left = Number(out.replies[0]?.deadlineRemainingMs);
          expect(left).toBeGreaterThan(3000);
          expect(left).toBeLessThanOrEqual(5000);
        });

        it("unary without deadline: the server sees none", async () => {
          const out = await driver.run({ kind: "unary", calls: [{}] });
          expect(out.code).toBe(Code.OK);
          expect(out.replies[0]?.deadlineRemainingMs).toBe(-1n);
        });

        it("unary status error keeps code, message and Any details", async () => {
          const out = await driver.run({
            kind: "unary",
            calls: [
              {
                failCode: Code.FailedPrecondition,
                failMessage: "task is not running",
                detailTypeUrl: "type.googleapis.com/beetroot.Test",
                detailValue: new Uint8Array([8, 1]),
              },
            ],
          });
          expect(out.code).toBe(Code.FailedPrecondition);
          expect(out.message).toBe("task is not running");
          expect(out.details).toHaveLength(1);
          expect(out.details[0]?.typeUrl).toBe("type.googleapis.com/beetroot.Test");
          expect([...(out.details[0]?.value ?? [])]).toEqual([8, 1]);
        });

        it("unary plain exception: Internal from ours, Unknown from Go's (its convertCode)", async () => {
          const out = await driver.run({ kind: "unary", calls: [{ throwMessage: "kaboom" }] });
          expect(out.code).toBe(combo.server === "ts" ? Code.Internal : Code.Unknown);
          expect(out.message).toBe("kaboom");
        });

        it("unary deadline: DeadlineExceeded promptly", async () => {
          const out = await driver.run({ kind: "unary", calls: [{ sleepMs: 3000 }], timeoutMs: 150 });
          expect(out.code).toBe(Code.DeadlineExceeded);
          expect(out.elapsedMs).toBeLessThan(1500);
        });

        it("unary cancellation: Cancelled promptly, connection still usable", async () => {
          const out = await driver.run({ kind: "unary", calls: [{ sleepMs: 3000 }], cancelAfterMs: 50 });
          expect(out.code).toBe(Code.Cancelled);
          expect(out.elapsedMs).toBeLessThan(1500);
          expect((await driver.run({ kind: "unary", calls: [{}] })).code).toBe(Code.OK);
        });

        it("unary payloads near 4 MiB both ways", async () => {
          const big = patternBytes(4 * MiB - 256);
          const out = await driver.run({ kind: "unary", calls: [{ payload: big }] });
          expect(out.code).toBe(Code.OK);
          expect(Buffer.compare(Buffer.from(out.replies[0]!.payload), Buffer.from(big))).toBe(0);
          const reply = await driver.run({ kind: "unary", calls: [{ replyBytes: 4 * MiB - 256 }] });
          expect(reply.code).toBe(Code.OK);
          expect(reply.replies[0]?.payload.byteLength).toBe(4 * MiB - 256);
        });

        it("oversized request: ResourceExhausted for that call only", async () => {
          const out = await driver.run({ kind: "unary", calls: [{ payload: new Uint8Array(4 * MiB + 16) }] });
          expect(out.code).toBe(Code.ResourceExhausted);
          expect((await driver.run({ kind: "unary", calls: [{ payload: new Uint8Array([1]) }] })).code).toBe(
            Code.OK,
          );
        });

        it("oversized reply: ResourceExhausted for that call only", async () => {
          const out = await driver.run({ kind: "unary", calls: [{ replyBytes: 4 * MiB + 16 }] });
          expect(out.code).toBe(Code.ResourceExhausted);
          expect((await driver.run({ kind: "unary", calls: [{ payload: new Uint8Array([1]) }] })).code).toBe(
            Code.OK,
          );
        });

        it("concurrent unary calls are multiplexed", async () => {
          const outs = await Promise.all(
            Array.from({ length: 40 }, (_, i) =>
              driver.run({ kind: "unary", calls: [{ payload: new Uint8Array([i]), sleepMs: (i * 7) % 30 }] }),
            ),
          );
          expect(outs.map((o) => o.replies[0]?.payload[0])).toEqual(outs.map((_, i) => i));
        });

        it("server streaming: every reply in order, then the close", async () => {
          const out = await driver.run({ kind: "server_stream", calls: [{ repeat: 20, replyBytes: 1000 }] });
          expect(out.code).toBe(Code.OK);
          expect(out.replies.map((r) => r.index)).toEqual(Array.from({ length: 20 }, (_, i) => i));
          expect(out.replies.every((r) => r.payload.byteLength === 1000)).toBe(true);
        });

        it("server streaming: zero replies", async () => {
          const out = await driver.run({ kind: "server_stream", calls: [{ repeat: 0 }] });
          expect(out.code).toBe(Code.OK);
          expect(out.replies).toHaveLength(0);
        });

        it("server streaming: error after some replies", async () => {
          const out = await driver.run({
            kind: "server_stream",
            calls: [{ repeat: 3, failCode: Code.NotFound, failMessage: "gone" }],
          });
          expect(out.replies).toHaveLength(3);
          expect(out.code).toBe(Code.NotFound);
          expect(out.message).toBe("gone");
        });

        it("client streaming: the server counts what was sent", async () => {
          const calls = Array.from({ length: 50 }, () => ({ payload: patternBytes(10_000) }));
          const out = await driver.run({ kind: "client_stream", calls });
          expect(out.code).toBe(Code.OK);
          expect(out.replies[0]?.receivedCount).toBe(50);
          expect(out.replies[0]?.receivedBytes).toBe(500_000n);
        });

        it("client streaming: no messages at all", async () => {
          const out = await driver.run({ kind: "client_stream", calls: [] });
          expect(out.code).toBe(Code.OK);
          expect(out.replies[0]?.receivedCount).toBe(0);
        });

        it("client streaming: error status ends the call", async () => {
          const out = await driver.run({
            kind: "client_stream",
            calls: [{}, {}, { failCode: Code.AlreadyExists, failMessage: "dup" }],
          });
          expect(out.code).toBe(Code.AlreadyExists);
          expect(out.message).toBe("dup");
        });

        it("bidi: replies per request, in order", async () => {
          const out = await driver.run({
            kind: "bidi",
            calls: [{ repeat: 2 }, { payload: new Uint8Array([42]) }, { repeat: 3, replyBytes: 65536 }],
          });
          expect(out.code).toBe(Code.OK);
          expect(out.replies.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
          expect(out.replies[2]?.payload[0]).toBe(42);
          expect(out.replies[5]?.payload.byteLength).toBe(65536);
        });

        it("bidi: volume with 64 KiB messages", async () => {
          const calls = Array.from({ length: 64 }, () => ({ payload: patternBytes(65536) }));
          const out = await driver.run({ kind: "bidi", calls });
          expect(out.code).toBe(Code.OK);
          expect(out.replies).toHaveLength(64);
          expect(out.replies.every((r) => r.payload.byteLength === 65536)).toBe(true);
        });

        it("bidi: error mid-stream", async () => {
          const out = await driver.run({
            kind: "bidi",
            calls: [{}, { failCode: Code.PermissionDenied, failMessage: "no" }],
          });
          expect(out.replies).toHaveLength(1);
          expect(out.code).toBe(Code.PermissionDenied);
        });
      });
    }
  },
);
