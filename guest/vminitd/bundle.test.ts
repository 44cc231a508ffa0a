import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { predecodedDescriptorsPlugin } from "../../scripts/predecoded-descriptors.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

// What vminitd pays at boot depends on how esbuild lays the bundle out (docs/boot-time.md, fifth
// round): with a dynamic import() anywhere, esbuild wraps the modules it reaches in lazy `__esm`
// initialisers, and @bufbuild/protobuf's indexes then run every module they list, booting
// descriptor.proto although nothing uses it. These are scripts/build.mjs's options for vminitd.
describe("the vminitd bundle", () => {
  it("has no lazily initialised modules and no descriptor.proto", async () => {
    const result = await build({
      entryPoints: [join(root, "guest/vminitd/main.ts")],
      bundle: true,
      write: false,
      platform: "node",
      format: "esm",
      target: "esnext",
      external: ["bun:ffi"],
      logLevel: "silent",
      plugins: [predecodedDescriptorsPlugin],
    });
    const text = result.outputFiles[0]!.text;
    expect(text.includes("__esm("), "a dynamic import() made esbuild wrap modules").toBe(false);
    expect(text.includes("google/protobuf/descriptor.proto")).toBe(false);
    expect(/\bfileDesc\(/.test(text)).toBe(false);
  });
});
