import { create, toBinary } from "@bufbuild/protobuf";
import { RuntimeInfoSchema } from "../../api/gen/containerd/types/introspection_pb.ts";
import pkg from "../../package.json" with { type: "json" };
import { SHIM_BINARY_NAME } from "./flags.ts";

export const RUNTIME_NAME = "io.containerd.beetroot.v1";
export const SHIM_VERSION: string = pkg.version;

/**
 * containerd ≥ 2.2 reads this annotation from `-info` and then hands mounts of these types to the
 * shim unmounted (instead of mounting them on the host first): the erofs snapshotter's layer
 * images, and the `mkdir/` and `format/` templates that assemble them, are resolved in the guest.
 */
export const ALLOW_MOUNTS_ANNOTATION = "containerd.io/runtime-allow-mounts";
export const ALLOWED_MOUNTS = "mkdir/*,format/*,erofs";

/** `-info`: a protobuf containerd.types.RuntimeInfo on stdout. */
export function runtimeInfoBytes(): Uint8Array {
  return toBinary(
    RuntimeInfoSchema,
    create(RuntimeInfoSchema, {
      name: RUNTIME_NAME,
      version: { version: SHIM_VERSION, revision: "" },
      annotations: { [ALLOW_MOUNTS_ANNOTATION]: ALLOWED_MOUNTS },
    }),
  );
}

/** `-v`: the same shape Go shims print. */
export function versionText(argv0: string): string {
  const name = argv0.split("/").pop() || SHIM_BINARY_NAME;
  return `${name}:\n  Version:  ${SHIM_VERSION}\n  Revision: \n  Node version: ${process.version}\n\n`;
}
