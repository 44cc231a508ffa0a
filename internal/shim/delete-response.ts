import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/**
 * containerd.task.v2.DeleteResponse as `delete` prints it, written with the wire writer alone
 * (api/proto/containerd/task/v2/shim.proto: pid = 1, exit_status = 2, exited_at = 3, a
 * google.protobuf.Timestamp of seconds = 1, nanos = 2). containerd waits for `delete` on every
 * `ctr run --rm`, and the full protobuf runtime with the task API's descriptors and the well-known
 * types would be most of what that process loads. Proto3 rules: zero scalars are not written.
 * delete-response.test.ts checks the bytes against toBinary of the generated schema.
 */
export function encodeDeleteResponse(r: { pid: number; exitStatus: number; exitedAt: Date }): Uint8Array {
  const ms = r.exitedAt.getTime();
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  const w = new BinaryWriter();
  if (r.pid !== 0) w.tag(1, WireType.Varint).uint32(r.pid);
  if (r.exitStatus !== 0) w.tag(2, WireType.Varint).uint32(r.exitStatus);
  w.tag(3, WireType.LengthDelimited).fork();
  if (seconds !== 0) w.tag(1, WireType.Varint).int64(seconds);
  if (nanos !== 0) w.tag(2, WireType.Varint).int32(nanos);
  w.join();
  return w.finish();
}
