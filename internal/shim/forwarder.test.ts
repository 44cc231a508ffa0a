import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Events } from "../../api/gen/containerd/services/events/ttrpc/v1/events_pb.ts";
import type { Envelope } from "../../api/gen/containerd/types/event_pb.ts";
import { createLogger } from "../log/logger.ts";
import { Code } from "../ttrpc/codes.ts";
import { TtrpcError } from "../ttrpc/errors.ts";
import { Server } from "../ttrpc/server.ts";
import { listenUnix } from "../ttrpc/unix-listener.ts";
import { buildEnvelope, EventPublisher } from "./events.ts";
import { TtrpcEventForwarder } from "./forwarder.ts";

const log = createLogger({ fd: null });

/** A stand-in for containerd's TTRPC events endpoint, over a real socket. */
async function fakeContainerd(path: string, seen: Envelope[]): Promise<Server> {
  const server = new Server();
  server.register(Events, {
    forward: (req) => {
      if (req.envelope) seen.push(req.envelope);
      return {};
    },
  });
  await listenUnix(server, path);
  return server;
}

describe("TtrpcEventForwarder", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("forwards envelopes to Events/Forward and reconnects after containerd restarts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "beetroot-fwd-"));
    dirs.push(dir);
    const path = join(dir, "containerd.sock.ttrpc");
    const seen: Envelope[] = [];
    let server = await fakeContainerd(path, seen);
    const fw = new TtrpcEventForwarder(`unix://${path}`);
    await fw.forward(buildEnvelope("ns", "/tasks/create", { containerId: "a", pid: 1 }));
    expect(seen.map((e) => [e.namespace, e.topic, e.event?.typeUrl])).toEqual([
      ["ns", "/tasks/create", "containerd.events.TaskCreate"],
    ]);

    await server.close({ graceful: false });
    await expect(
      fw.forward(buildEnvelope("ns", "/tasks/start", { containerId: "a" })),
    ).rejects.toBeInstanceOf(Error);

    // The publisher retries through the outage; the forwarder dials the new server.
    const publisher = new EventPublisher({
      forwarder: fw,
      namespace: "ns",
      log,
      initialBackoffMs: 20,
    });
    publisher.publish("/tasks/start", { containerId: "a", pid: 1 });
    setTimeout(() => {
      void fakeContainerd(path, seen).then((s) => {
        server = s;
      });
    }, 100);
    await publisher.flush();
    expect(seen.map((e) => e.topic)).toEqual(["/tasks/create", "/tasks/start"]);
    await publisher.close();
    await server.close({ graceful: false });
  });

  it("reports a missing TTRPC_ADDRESS as a permanent failure", async () => {
    const fw = new TtrpcEventForwarder("");
    const err = await fw
      .forward(buildEnvelope("ns", "/tasks/oom", { containerId: "a" }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TtrpcError);
    expect((err as TtrpcError).code).toBe(Code.FailedPrecondition);
  });
});
