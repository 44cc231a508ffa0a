import { create, type DescMessage, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { TaskExitSchema } from "./gen/containerd/events/task_pb.ts";
import { BootstrapResultSchema } from "./gen/containerd/runtime/bootstrap/v1/bootstrap_pb.ts";
import { ForwardRequestSchema } from "./gen/containerd/services/events/ttrpc/v1/events_pb.ts";
import {
  ConnectResponseSchema,
  CreateTaskRequestSchema,
  DeleteResponseSchema,
  KillRequestSchema,
} from "./gen/containerd/task/v2/shim_pb.ts";
import { EnvelopeSchema } from "./gen/containerd/types/event_pb.ts";
import { RuntimeInfoSchema } from "./gen/containerd/types/introspection_pb.ts";
import golden from "./golden/golden.json" with { type: "json" };

// The same instant the Go generator (api/golden/gen.go) uses.
const exitedAt = timestampFromDate(new Date(1700000000123));
exitedAt.nanos = 123456789;

function hex<D extends DescMessage>(schema: D, msg: MessageShape<D>): string {
  return Buffer.from(toBinary(schema, msg)).toString("hex");
}

const taskExit = create(TaskExitSchema, { containerId: "c1", id: "c1", pid: 4242, exitStatus: 3, exitedAt });
// containerd puts the bare full name in type_url (no type.googleapis.com/ prefix).
const envelope = create(EnvelopeSchema, {
  timestamp: exitedAt,
  namespace: "default",
  topic: "/tasks/exit",
  event: { typeUrl: "containerd.events.TaskExit", value: toBinary(TaskExitSchema, taskExit) },
});

describe("golden bytes produced by containerd's Go types", () => {
  it("DeleteResponse", () => {
    expect(
      hex(DeleteResponseSchema, create(DeleteResponseSchema, { pid: 4242, exitStatus: 137, exitedAt })),
    ).toBe(golden.DeleteResponse);
  });
  it("TaskExit", () => {
    expect(hex(TaskExitSchema, taskExit)).toBe(golden.TaskExit);
  });
  it("Envelope carrying a TaskExit", () => {
    expect(hex(EnvelopeSchema, envelope)).toBe(golden.Envelope);
  });
  it("Events/Forward request", () => {
    expect(hex(ForwardRequestSchema, create(ForwardRequestSchema, { envelope }))).toBe(golden.ForwardRequest);
  });
  it("CreateTaskRequest", () => {
    const msg = create(CreateTaskRequestSchema, {
      id: "c1",
      bundle: "/run/containerd/io.containerd.runtime.v2.task/default/c1",
      rootfs: [{ type: "overlay", source: "overlay", options: ["lowerdir=/a:/b", "upperdir=/u"] }],
      terminal: true,
      stdin: "/fifo/in",
      stdout: "/fifo/out",
    });
    expect(hex(CreateTaskRequestSchema, msg)).toBe(golden.CreateTaskRequest);
  });
  it("KillRequest and ConnectResponse", () => {
    expect(
      hex(KillRequestSchema, create(KillRequestSchema, { id: "c1", execId: "e1", signal: 9, all: true })),
    ).toBe(golden.KillRequest);
    expect(
      hex(
        ConnectResponseSchema,
        create(ConnectResponseSchema, { shimPid: 10, taskPid: 20, version: "v1.0.0" }),
      ),
    ).toBe(golden.ConnectResponse);
  });
});

// Debian packages containerd 1.6, which predates these two messages; the expected bytes are derived
// by hand from the protobuf encoding rules (tag = field << 3 | wire type).
describe("golden bytes derived from the protobuf spec", () => {
  it("BootstrapResult{version=3, address, protocol=ttrpc}", () => {
    const msg = create(BootstrapResultSchema, { version: 3, address: "unix:///s", protocol: "ttrpc" });
    // 08 03 | 12 09 "unix:///s" | 1a 05 "ttrpc"
    expect(hex(BootstrapResultSchema, msg)).toBe(
      `0803` +
        `1209${Buffer.from("unix:///s").toString("hex")}` +
        `1a05${Buffer.from("ttrpc").toString("hex")}`,
    );
  });
  it("RuntimeInfo with the allow-mounts annotation", () => {
    const msg = create(RuntimeInfoSchema, {
      name: "io.containerd.beetroot.v1",
      annotations: { "containerd.io/runtime-allow-mounts": "erofs" },
    });
    const name = Buffer.from("io.containerd.beetroot.v1");
    const key = Buffer.from("containerd.io/runtime-allow-mounts");
    const value = Buffer.from("erofs");
    // A map entry is a nested message {key=1, value=2} under field 5 (tag 0x2a).
    const entry = Buffer.concat([
      Buffer.from([0x0a, key.length]),
      key,
      Buffer.from([0x12, value.length]),
      value,
    ]);
    const expected = Buffer.concat([
      Buffer.from([0x0a, name.length]),
      name,
      Buffer.from([0x2a, entry.length]),
      entry,
    ]);
    expect(hex(RuntimeInfoSchema, msg)).toBe(expected.toString("hex"));
  });
});
