import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { OptionsSchema } from "../../api/gen/containerd/runtimeoptions/v1/api_pb.ts";

/**
 * The runtime options containerd hands a non-runc shim at `start`: `runtimeoptions.v1.Options`,
 * filled from a CRI runtime handler's `options` table (`ConfigPath = "…"`) or from
 * `ctr run --runtime-config-path`. As with Kata, ConfigPath names the runtime's own config file,
 * so one host can offer several RuntimeClasses (say a large-VM class for redroid) from one shim
 * binary. ConfigBody (inline config) is refused rather than ignored.
 */
export const RUNTIME_OPTIONS_TYPE = "runtimeoptions.v1.Options";

export class RuntimeOptionsError extends Error {
  override name = "RuntimeOptionsError";
}

/** The beetroot config file the options name, or undefined when they name none. */
export function configPathFromOptions(options: Any | undefined): string | undefined {
  if (options === undefined || options.value.length === 0) return undefined;
  const type = options.typeUrl.slice(options.typeUrl.lastIndexOf("/") + 1);
  if (type !== RUNTIME_OPTIONS_TYPE) return undefined; // e.g. runc options from a misconfigured handler
  const o = fromBinary(OptionsSchema, options.value);
  if (o.configBody !== "") {
    throw new RuntimeOptionsError(
      "runtime options carry ConfigBody; beetroot reads its configuration from a file: set ConfigPath instead",
    );
  }
  if (o.configPath === "") return undefined;
  if (!isAbsolute(o.configPath))
    throw new RuntimeOptionsError(`runtime option ConfigPath must be absolute, got "${o.configPath}"`);
  if (!existsSync(o.configPath))
    throw new RuntimeOptionsError(`runtime option ConfigPath names ${o.configPath}, which does not exist`);
  return o.configPath;
}
