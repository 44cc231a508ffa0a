import type { Any } from "@bufbuild/protobuf/wkt";
import type { BootstrapParams } from "../../api/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.ts";

/*
 * What `start` needs to answer containerd ≤ 2.2 when it sent nothing on stdin (no runtime
 * options): no protobuf. The protobuf readings and replies are in bootstrap.ts, which loads the
 * protobuf runtime with all its well-known types (11.7 ms in a `node --cpu-prof` of `-v`, which
 * loads them too) and which start imports only when stdin has something to read.
 */

/**
 * How containerd talked to us at `start`, which decides how we answer:
 * - `legacy`: containerd ≤ 2.2 (and 1.x). stdin holds the runtime options as a protobuf Any (or
 *   nothing); stdout must carry JSON `{"version":N,"address":…,"protocol":"ttrpc"}`.
 * - `proto`: containerd ≥ 2.3 wrote a protobuf BootstrapParams; it reads a protobuf BootstrapResult.
 * - `json`: the same messages in protojson (the bootstrap.proto comments describe JSON; accept it
 *   and answer in kind).
 */
export type BootstrapFormat = "legacy" | "proto" | "json";

export interface BootstrapInput {
  readonly format: BootstrapFormat;
  /** The decoded params (modern formats only). */
  readonly params?: BootstrapParams;
  /** `socket_dir` (field 9, newer than our proto copy): where to put the shim socket. */
  readonly socketDir?: string;
  /** Runtime options Any from legacy stdin (e.g. runtimeoptions.v1.Options from a RuntimeClass). */
  readonly runtimeOptions?: Any;
}

export interface BootstrapReply {
  /** Task API version containerd should use: 2 → containerd.task.v2.Task, 3 → containerd.task.v3.Task. */
  readonly version: number;
  readonly address: string;
  readonly protocol: "ttrpc";
}

/** The JSON reply of containerd's client.BootstrapParams (its JSON tags). */
export function legacyReply(reply: BootstrapReply): Uint8Array {
  return Buffer.from(
    JSON.stringify({ version: reply.version, address: reply.address, protocol: reply.protocol }),
  );
}

/**
 * The task API version to announce in a legacy (JSON) reply. containerd 1.x rejects anything above
 * 2 ("unsupported shim version"); containerd 2.0–2.2 accept 3 and then call containerd.task.v3.Task.
 * Both send MAX_SHIM_VERSION=2, so the containerd major version (from `<publish-binary> --version`)
 * decides; when it is unknown, 2 is the answer every containerd accepts.
 */
export function legacyReplyVersion(containerdMajor: number | undefined): number {
  return containerdMajor !== undefined && containerdMajor >= 2 ? 3 : 2;
}

/** `containerd github.com/containerd/containerd/v2 v2.1.9 …` or `… 1.7.24~ds1 …` → major. */
export function parseContainerdMajor(versionOutput: string): number | undefined {
  const m = /(?:^|\s)v?(\d+)\.(\d+)\.(\d+)/.exec(versionOutput);
  return m ? Number(m[1]) : undefined;
}
