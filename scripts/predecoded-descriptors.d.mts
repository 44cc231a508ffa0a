// Types of predecoded-descriptors.mjs (plain JavaScript: scripts/build.mjs runs on Node without a TS loader).
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { Plugin } from "esbuild";

/** One `fileDesc(...)` call of a generated module: its base64 and the imports list as written. */
export interface EmbeddedFile {
  readonly base64: string;
  readonly imports: string | undefined;
}

export function embeddedFiles(source: string): EmbeddedFile[];
export function decodeEmbeddedFile(base64: string): FileDescriptorProto;
export function messageSource(
  root: object,
  prefix?: string,
): { readonly declarations: string[]; readonly expression: string };
export function predecodeModule(source: string, path?: string): string | undefined;
export const predecodedDescriptorsPlugin: Plugin;
