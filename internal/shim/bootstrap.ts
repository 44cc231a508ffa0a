import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { Any } from "@bufbuild/protobuf/wkt";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import {
  type BootstrapParams,
  BootstrapParamsSchema,
  BootstrapResultSchema,
} from "../../api/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.ts";

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

const SOCKET_DIR_FIELD = 9;

function unknownString(msg: BootstrapParams, no: number): string | undefined {
  for (const f of msg.$unknown ?? []) {
    if (f.no === no && f.wireType === WireType.LengthDelimited) return new BinaryReader(f.data).string();
  }
  return undefined;
}

function matchesCli(params: BootstrapParams, id: string, namespace: string): boolean {
  // Legacy runtime options (an Any: type_url=1, value=2) decode "successfully" as BootstrapParams
  // (instance_id=1, namespace=2); only the identity cross-check tells them apart — containerd's own
  // shims do the same.
  return params.instanceId === id && params.namespace === namespace;
}

/** Tells containerd ≥ 2.3's bootstrap params from the legacy runtime-options payload. */
export function sniffBootstrapInput(
  input: Uint8Array,
  cli: { id: string; namespace: string },
): BootstrapInput {
  if (input.length === 0) return { format: "legacy" };

  const text = input[0] === 0x7b /* { */ ? Buffer.from(input).toString("utf8") : undefined;
  if (text !== undefined) {
    try {
      const params = fromJsonString(BootstrapParamsSchema, text, { ignoreUnknownFields: true });
      if (matchesCli(params, cli.id, cli.namespace)) {
        const raw = JSON.parse(text) as Record<string, unknown>;
        const dir = raw.socketDir ?? raw.socket_dir;
        return {
          format: "json",
          params,
          ...(typeof dir === "string" && dir !== "" ? { socketDir: dir } : {}),
        };
      }
    } catch {
      // Not protojson: fall through to the binary readings.
    }
  }

  try {
    const params = fromBinary(BootstrapParamsSchema, input);
    if (matchesCli(params, cli.id, cli.namespace)) {
      const dir = unknownString(params, SOCKET_DIR_FIELD);
      return { format: "proto", params, ...(dir ? { socketDir: dir } : {}) };
    }
  } catch {
    // Not BootstrapParams: legacy options below.
  }

  try {
    return { format: "legacy", runtimeOptions: fromBinary(AnySchema, input) };
  } catch {
    return { format: "legacy" };
  }
}

export interface BootstrapReply {
  /** Task API version containerd should use: 2 → containerd.task.v2.Task, 3 → containerd.task.v3.Task. */
  readonly version: number;
  readonly address: string;
  readonly protocol: "ttrpc";
}

export function encodeBootstrapReply(format: BootstrapFormat, reply: BootstrapReply): Uint8Array {
  switch (format) {
    case "legacy":
      // containerd's client.BootstrapParams JSON tags.
      return Buffer.from(
        JSON.stringify({ version: reply.version, address: reply.address, protocol: reply.protocol }),
      );
    case "proto":
      return toBinary(BootstrapResultSchema, create(BootstrapResultSchema, reply));
    case "json":
      return Buffer.from(toJsonString(BootstrapResultSchema, create(BootstrapResultSchema, reply)));
  }
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

/** Extracts a string the bootstrap payload carried, for logs. */
export function describeBootstrap(input: BootstrapInput): string {
  if (input.format === "legacy") {
    return input.runtimeOptions ? `legacy (options ${input.runtimeOptions.typeUrl})` : "legacy";
  }
  return `${input.format} (containerd ${input.params?.containerdVersion ?? "?"})`;
}
