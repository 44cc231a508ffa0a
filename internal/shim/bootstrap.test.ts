import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  BootstrapParamsSchema,
  BootstrapResultSchema,
} from "../../api/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.ts";
import {
  encodeBootstrapReply,
  legacyReplyVersion,
  parseContainerdMajor,
  sniffBootstrapInput,
} from "./bootstrap.ts";

const cli = { id: "c1", namespace: "default" };

describe("sniffBootstrapInput", () => {
  it("treats empty stdin as legacy", () => {
    expect(sniffBootstrapInput(new Uint8Array(), cli)).toEqual({ format: "legacy" });
  });

  it("recognises protobuf BootstrapParams whose identity matches the command line", () => {
    const params = create(BootstrapParamsSchema, {
      instanceId: "c1",
      namespace: "default",
      containerdVersion: "2.3.0",
      containerdTtrpcAddress: "/run/containerd/containerd.sock.ttrpc",
    });
    const bytes = toBinary(BootstrapParamsSchema, params);
    // socket_dir (field 9) is newer than our proto copy: it must still be read.
    const w = new BinaryWriter();
    w.raw(bytes);
    w.tag(9, WireType.LengthDelimited).string("/run/alt/s");
    const got = sniffBootstrapInput(w.finish(), cli);
    expect(got.format).toBe("proto");
    expect(got.params?.containerdVersion).toBe("2.3.0");
    expect(got.socketDir).toBe("/run/alt/s");
  });

  it("keeps legacy runtime options that happen to decode as BootstrapParams", () => {
    const any = create(AnySchema, {
      typeUrl: "runtimeoptions.v1.Options",
      value: new Uint8Array([10, 1, 47]),
    });
    const got = sniffBootstrapInput(toBinary(AnySchema, any), cli);
    expect(got.format).toBe("legacy");
    expect(got.runtimeOptions?.typeUrl).toBe("runtimeoptions.v1.Options");
  });

  it("a mismatched identity is not the modern protocol", () => {
    const params = create(BootstrapParamsSchema, { instanceId: "other", namespace: "default" });
    expect(sniffBootstrapInput(toBinary(BootstrapParamsSchema, params), cli).format).toBe("legacy");
  });

  it("recognises protojson params", () => {
    const got = sniffBootstrapInput(
      Buffer.from(JSON.stringify({ instanceId: "c1", namespace: "default", socketDir: "/s", extra: 1 })),
      cli,
    );
    expect(got.format).toBe("json");
    expect(got.socketDir).toBe("/s");
  });
});

describe("encodeBootstrapReply", () => {
  const reply = { version: 3, address: "unix:///run/containerd/s/abc", protocol: "ttrpc" } as const;

  it("answers legacy callers with containerd's JSON", () => {
    expect(Buffer.from(encodeBootstrapReply("legacy", reply)).toString()).toBe(
      '{"version":3,"address":"unix:///run/containerd/s/abc","protocol":"ttrpc"}',
    );
  });

  it("answers modern callers with a protobuf BootstrapResult", () => {
    const out = fromBinary(BootstrapResultSchema, encodeBootstrapReply("proto", reply));
    expect(out).toMatchObject(reply);
  });

  it("answers protojson with protojson", () => {
    expect(JSON.parse(Buffer.from(encodeBootstrapReply("json", reply)).toString())).toEqual(reply);
  });
});

describe("version negotiation", () => {
  it("parses containerd --version output", () => {
    expect(parseContainerdMajor("containerd github.com/containerd/containerd/v2 2.1.9~ds1 \n")).toBe(2);
    expect(parseContainerdMajor("containerd github.com/containerd/containerd v1.7.24 61f9fd88\n")).toBe(1);
    expect(parseContainerdMajor("garbage")).toBeUndefined();
  });
  it("announces v3 only to containerd 2+", () => {
    expect(legacyReplyVersion(2)).toBe(3);
    expect(legacyReplyVersion(1)).toBe(2);
    expect(legacyReplyVersion(undefined)).toBe(2);
  });
});
