import { fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TaskExitSchema } from "../../api/gen/containerd/events/task_pb.ts";
import type { Envelope } from "../../api/gen/containerd/types/event_pb.ts";
import { createLogger } from "../log/logger.ts";
import { Code } from "../ttrpc/codes.ts";
import { TtrpcError } from "../ttrpc/errors.ts";
import { buildEnvelope, type EventForwarder, EventPublisher } from "./events.ts";

const log = createLogger({ fd: null });

class RecordingForwarder implements EventForwarder {
  readonly seen: Envelope[] = [];
  failures: unknown[] = [];
  closed = false;
  async forward(e: Envelope): Promise<void> {
    const f = this.failures.shift();
    if (f !== undefined) throw f;
    this.seen.push(e);
  }
  close(): void {
    this.closed = true;
  }
}

describe("buildEnvelope", () => {
  it("packs the event as an Any with the bare type name", () => {
    const env = buildEnvelope("default", "/tasks/exit", {
      containerId: "c",
      id: "c",
      pid: 7,
      exitStatus: 3,
    });
    expect(env.namespace).toBe("default");
    expect(env.topic).toBe("/tasks/exit");
    expect(env.event?.typeUrl).toBe("containerd.events.TaskExit");
    const exit = fromBinary(TaskExitSchema, env.event!.value);
    expect(exit).toMatchObject({ containerId: "c", id: "c", pid: 7, exitStatus: 3 });
    expect(env.timestamp?.seconds).toBeGreaterThan(0n);
  });
});

describe("EventPublisher", () => {
  it("delivers in queue order and retries a transient failure at the head", async () => {
    const fw = new RecordingForwarder();
    fw.failures = [new TtrpcError(Code.Unavailable, "containerd restarting"), new Error("ECONNREFUSED")];
    const sleeps: number[] = [];
    const p = new EventPublisher({
      forwarder: fw,
      namespace: "ns",
      log,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    p.publish("/tasks/create", { containerId: "a", pid: 1 });
    p.publish("/tasks/start", { containerId: "a", pid: 1 });
    p.publish("/tasks/exit", { containerId: "a", id: "a", pid: 1 });
    p.publish("/tasks/delete", { containerId: "a", pid: 1 });
    await p.flush();
    expect(fw.seen.map((e) => e.topic)).toEqual([
      "/tasks/create",
      "/tasks/start",
      "/tasks/exit",
      "/tasks/delete",
    ]);
    expect(sleeps).toEqual([50, 100]);
    expect(p.stats).toEqual({ delivered: 4, dropped: 0, retries: 2 });
  });

  it("drops an event containerd rejects and keeps going", async () => {
    const fw = new RecordingForwarder();
    fw.failures = [new TtrpcError(Code.InvalidArgument, "bad envelope")];
    const p = new EventPublisher({ forwarder: fw, namespace: "ns", log });
    p.publish("/tasks/paused", { containerId: "a" });
    p.publish("/tasks/resumed", { containerId: "a" });
    await p.flush();
    expect(fw.seen.map((e) => e.topic)).toEqual(["/tasks/resumed"]);
    expect(p.stats.dropped).toBe(1);
  });

  it("gives up after maxAttempts with capped backoff", async () => {
    const fw = new RecordingForwarder();
    fw.failures = Array.from({ length: 5 }, () => new Error("down"));
    const sleeps: number[] = [];
    const p = new EventPublisher({
      forwarder: fw,
      namespace: "ns",
      log,
      maxAttempts: 4,
      maxBackoffMs: 120,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    p.publish("/tasks/oom", { containerId: "a" });
    await p.flush();
    expect(sleeps).toEqual([50, 100, 120]);
    expect(fw.seen).toEqual([]);
    expect(p.stats.dropped).toBe(1);
  });

  it("bounds the queue, dropping the oldest", async () => {
    const fw = new RecordingForwarder();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow: EventForwarder = {
      forward: async (e) => {
        await gate;
        await fw.forward(e);
      },
      close: () => {},
    };
    const p = new EventPublisher({ forwarder: slow, namespace: "ns", log, maxQueue: 2 });
    p.publish("/tasks/create", { containerId: "1" }); // in flight
    p.publish("/tasks/create", { containerId: "2" });
    p.publish("/tasks/create", { containerId: "3" });
    p.publish("/tasks/create", { containerId: "4" });
    release();
    await p.flush();
    expect(fw.seen.length).toBe(2);
    expect(p.stats.dropped).toBe(2);
  });

  it("close flushes then closes the forwarder, and refuses later events", async () => {
    const fw = new RecordingForwarder();
    const p = new EventPublisher({ forwarder: fw, namespace: "ns", log });
    p.publish("/tasks/create", { containerId: "a" });
    await p.close();
    p.publish("/tasks/start", { containerId: "a" });
    await p.flush();
    expect(fw.seen.map((e) => e.topic)).toEqual(["/tasks/create"]);
    expect(fw.closed).toBe(true);
  });
});
