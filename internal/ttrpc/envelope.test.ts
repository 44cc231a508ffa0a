import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { StatusSchema } from "../../api/gen/google/rpc/status_pb.ts";
import { KeyValueSchema, RequestSchema, ResponseSchema } from "../../api/gen/ttrpc/request_pb.ts";
import { decodeRequest, decodeResponse, decodeStatus, encodeRequest, encodeResponse } from "./envelope.ts";
import { prng as rng } from "./testdata/prng.ts";

const alphabet = "abcXYZ.-_/ é✓𝄞";
function randomString(r: () => number, max: number): string {
  const n = Math.floor(r() * max);
  let s = "";
  for (let i = 0; i < n; i++) s += [...alphabet][Math.floor(r() * [...alphabet].length)];
  return s;
}
function randomBytes(r: () => number, max: number): Uint8Array {
  return Uint8Array.from({ length: Math.floor(r() * max) }, () => Math.floor(r() * 256));
}

describe("envelope codecs agree with the generated schemas byte for byte", () => {
  it("Request", () => {
    const r = rng(1);
    for (let i = 0; i < 500; i++) {
      const timeoutNano = r() < 0.5 ? 0n : BigInt(Math.floor(r() * 2 ** 52)) * (r() < 0.1 ? -1n : 1n);
      const metadata: Array<[string, string]> = Array.from({ length: Math.floor(r() * 4) }, () => [
        randomString(r, 8),
        randomString(r, 8),
      ]);
      const ours = {
        service: randomString(r, 30),
        method: randomString(r, 12),
        payload: randomBytes(r, 200),
        timeoutNano,
        metadata,
      };
      const generated = create(RequestSchema, {
        ...ours,
        metadata: metadata.map(([key, value]) => create(KeyValueSchema, { key, value })),
      });
      const bytes = encodeRequest(ours);
      expect(Buffer.from(bytes).equals(Buffer.from(toBinary(RequestSchema, generated)))).toBe(true);
      const back = decodeRequest(bytes);
      expect(back.service).toBe(ours.service);
      expect(back.method).toBe(ours.method);
      expect([...back.payload]).toEqual([...ours.payload]);
      expect(back.hasPayload).toBe(ours.payload.byteLength > 0);
      expect(back.timeoutNano).toBe(timeoutNano);
      expect(back.metadata).toEqual(metadata);
      const viaGenerated = fromBinary(RequestSchema, bytes);
      expect(viaGenerated.timeoutNano).toBe(timeoutNano);
    }
  });

  it("Response with Status and Any details", () => {
    const r = rng(2);
    for (let i = 0; i < 500; i++) {
      const withStatus = r() < 0.9;
      const details = Array.from({ length: Math.floor(r() * 3) }, () =>
        create(AnySchema, { typeUrl: randomString(r, 20), value: randomBytes(r, 20) }),
      );
      const status = withStatus
        ? {
            code: r() < 0.05 ? -1 - Math.floor(r() * 100) : Math.floor(r() * 17),
            message: randomString(r, 40),
            details,
          }
        : undefined;
      const payload = randomBytes(r, 300);
      const bytes = encodeResponse({ status, payload });
      const generated = create(ResponseSchema, {
        payload,
        ...(status ? { status: create(StatusSchema, status) } : {}),
      });
      expect(Buffer.from(bytes).equals(Buffer.from(toBinary(ResponseSchema, generated)))).toBe(true);
      const back = decodeResponse(bytes);
      expect([...back.payload]).toEqual([...payload]);
      if (status) {
        expect(back.status?.code).toBe(status.code);
        expect(back.status?.message).toBe(status.message);
        expect(back.status?.details.map((d) => [d.typeUrl, [...d.value]])).toEqual(
          details.map((d) => [d.typeUrl, [...d.value]]),
        );
      } else {
        expect(back.status).toBeUndefined();
      }
    }
  });

  it("decodes what the generated code encodes, including unknown fields", () => {
    const st = create(StatusSchema, { code: 5, message: "not found" });
    const bytes = toBinary(StatusSchema, st);
    const withUnknown = Buffer.concat([bytes, Buffer.from([0x78, 0x01])]); // field 15 varint 1
    expect(decodeStatus(withUnknown)).toEqual({ code: 5, message: "not found", details: [] });
  });
});

describe("envelope decoders reject malformed input", () => {
  it("throws on truncation, bad varints and invalid UTF-8", () => {
    const good = encodeRequest({
      service: "a.B",
      method: "C",
      payload: new Uint8Array([1]),
      timeoutNano: 0n,
      metadata: [],
    });
    expect(() => decodeRequest(good.subarray(0, good.length - 1))).toThrow();
    expect(() =>
      decodeRequest(new Uint8Array([0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
    ).toThrow();
    expect(() => decodeRequest(new Uint8Array([0x0a, 0x02, 0xc3, 0x28]))).toThrow();
    expect(() => decodeRequest(new Uint8Array([0x00]))).toThrow();
  });

  it("skips a known field sent with the wrong wire type, like Go's runtime", () => {
    // field 1 (service) as varint 7, then method "M"
    const req = decodeRequest(new Uint8Array([0x08, 0x07, 0x12, 0x01, 0x4d]));
    expect(req.service).toBe("");
    expect(req.method).toBe("M");
  });
});
