import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import {
  type BootstrapParams,
  BootstrapParamsSchema,
  BootstrapResultSchema,
} from "../../api/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.ts";
import {
  type BootstrapFormat,
  type BootstrapInput,
  type BootstrapReply,
  legacyReply,
} from "./bootstrap-legacy.ts";

export {
  type BootstrapFormat,
  type BootstrapInput,
  type BootstrapReply,
  legacyReply,
  legacyReplyVersion,
  parseContainerdMajor,
} from "./bootstrap-legacy.ts";

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

export function encodeBootstrapReply(format: BootstrapFormat, reply: BootstrapReply): Uint8Array {
  switch (format) {
    case "legacy":
      return legacyReply(reply);
    case "proto":
      return toBinary(BootstrapResultSchema, create(BootstrapResultSchema, reply));
    case "json":
      return Buffer.from(toJsonString(BootstrapResultSchema, create(BootstrapResultSchema, reply)));
  }
}

/** Extracts a string the bootstrap payload carried, for logs. */
export function describeBootstrap(input: BootstrapInput): string {
  if (input.format === "legacy") {
    return input.runtimeOptions ? `legacy (options ${input.runtimeOptions.typeUrl})` : "legacy";
  }
  return `${input.format} (containerd ${input.params?.containerdVersion ?? "?"})`;
}
