import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, describe, expect, it } from "vitest";
import { OptionsSchema } from "../../api/gen/containerd/runtimeoptions/v1/api_pb.ts";
import { configPathFromOptions } from "./runtime-options.ts";

const dir = mkdtempSync(join(tmpdir(), "beetroot-rtopts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function any(fields: { configPath?: string; configBody?: string }, typeUrl = "runtimeoptions.v1.Options") {
  return {
    $typeName: "google.protobuf.Any" as const,
    typeUrl,
    value: toBinary(OptionsSchema, create(OptionsSchema, fields)),
  };
}

describe("runtime options", () => {
  it("names the config file a RuntimeClass handler (or ctr --runtime-config-path) gave", () => {
    const cfg = join(dir, "big.toml");
    writeFileSync(cfg, "[vm]\nmemory_mib = 2048\n");
    expect(configPathFromOptions(any({ configPath: cfg }))).toBe(cfg);
    expect(
      configPathFromOptions(any({ configPath: cfg }, "types.containerd.io/runtimeoptions.v1.Options")),
    ).toBe(cfg);
  });

  it("has nothing to say without options, with empty options, or with another runtime's options", () => {
    expect(configPathFromOptions(undefined)).toBeUndefined();
    expect(configPathFromOptions(any({}))).toBeUndefined();
    expect(configPathFromOptions(any({ configPath: "/x" }, "containerd.runc.v1.Options"))).toBeUndefined();
  });

  it("refuses what it cannot honour, precisely", () => {
    expect(() => configPathFromOptions(any({ configPath: "rel.toml" }))).toThrow(/must be absolute/);
    expect(() => configPathFromOptions(any({ configPath: join(dir, "nope.toml") }))).toThrow(
      /does not exist/,
    );
    expect(() => configPathFromOptions(any({ configBody: "[vm]" }))).toThrow(/set ConfigPath instead/);
  });
});
