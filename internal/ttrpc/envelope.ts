/**
 * Hand-written codecs for the TTRPC envelope messages (ttrpc/request.proto, google/rpc/status.proto).
 * They sit on every call's path, so they avoid the reflective codec; envelope.test.ts cross-checks
 * them byte-for-byte against the generated schemas in api/gen.
 *
 *   Request  { string service = 1; string method = 2; bytes payload = 3; int64 timeout_nano = 4;
 *              repeated KeyValue metadata = 5; }
 *   KeyValue { string key = 1; string value = 2; }
 *   Response { google.rpc.Status status = 1; bytes payload = 2; }
 *   Status   { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
 *   Any      { string type_url = 1; bytes value = 2; }
 */
import { create } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";

export interface RequestEnvelope {
  service: string;
  method: string;
  payload: Uint8Array;
  /** Whether field 3 was on the wire: a client-streaming call's first message may ride in it. */
  hasPayload: boolean;
  /** 0 = no deadline. */
  timeoutNano: bigint;
  metadata: Array<[key: string, value: string]>;
}

export interface StatusEnvelope {
  code: number;
  message: string;
  details: Any[];
}

export interface ResponseEnvelope {
  /** Absent on the wire means OK (containerd/ttrpc's client treats a nil status as success). */
  status: StatusEnvelope | undefined;
  payload: Uint8Array;
}

export function encodeRequest(req: Omit<RequestEnvelope, "hasPayload">): Uint8Array {
  const w = new BinaryWriter();
  if (req.service !== "") w.tag(1, WireType.LengthDelimited).string(req.service);
  if (req.method !== "") w.tag(2, WireType.LengthDelimited).string(req.method);
  if (req.payload.byteLength > 0) w.tag(3, WireType.LengthDelimited).bytes(req.payload);
  if (req.timeoutNano !== 0n) w.tag(4, WireType.Varint).int64(req.timeoutNano);
  for (const [key, value] of req.metadata) {
    w.tag(5, WireType.LengthDelimited).fork();
    if (key !== "") w.tag(1, WireType.LengthDelimited).string(key);
    if (value !== "") w.tag(2, WireType.LengthDelimited).string(value);
    w.join();
  }
  return w.finish();
}

export function encodeResponse(res: ResponseEnvelope): Uint8Array {
  const w = new BinaryWriter();
  if (res.status !== undefined) {
    w.tag(1, WireType.LengthDelimited).fork();
    writeStatus(w, res.status);
    w.join();
  }
  if (res.payload.byteLength > 0) w.tag(2, WireType.LengthDelimited).bytes(res.payload);
  return w.finish();
}

function writeStatus(w: BinaryWriter, s: StatusEnvelope): void {
  if (s.code !== 0) w.tag(1, WireType.Varint).int32(s.code);
  if (s.message !== "") w.tag(2, WireType.LengthDelimited).string(s.message);
  for (const d of s.details) {
    w.tag(3, WireType.LengthDelimited).fork();
    if (d.typeUrl !== "") w.tag(1, WireType.LengthDelimited).string(d.typeUrl);
    if (d.value.byteLength > 0) w.tag(2, WireType.LengthDelimited).bytes(d.value);
    w.join();
  }
}

/**
 * Decoders throw on malformed input (truncation, bad varints, invalid UTF-8 in strings). Fields
 * with an unexpected wire type are skipped like unknown fields, as Go's protobuf runtime does.
 */
export function decodeRequest(bytes: Uint8Array): RequestEnvelope {
  const r = new BinaryReader(bytes);
  const out: RequestEnvelope = {
    service: "",
    method: "",
    payload: new Uint8Array(0),
    hasPayload: false,
    timeoutNano: 0n,
    metadata: [],
  };
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === WireType.LengthDelimited) out.service = r.string(true);
    else if (field === 2 && wt === WireType.LengthDelimited) out.method = r.string(true);
    else if (field === 3 && wt === WireType.LengthDelimited) {
      out.payload = r.bytes();
      out.hasPayload = true;
    } else if (field === 4 && wt === WireType.Varint) out.timeoutNano = BigInt(r.int64());
    else if (field === 5 && wt === WireType.LengthDelimited) out.metadata.push(decodeKeyValue(r.bytes()));
    else r.skip(wt, field);
  }
  return out;
}

function decodeKeyValue(bytes: Uint8Array): [string, string] {
  const r = new BinaryReader(bytes);
  let key = "";
  let value = "";
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === WireType.LengthDelimited) key = r.string(true);
    else if (field === 2 && wt === WireType.LengthDelimited) value = r.string(true);
    else r.skip(wt, field);
  }
  return [key, value];
}

export function decodeResponse(bytes: Uint8Array): ResponseEnvelope {
  const r = new BinaryReader(bytes);
  const out: ResponseEnvelope = { status: undefined, payload: new Uint8Array(0) };
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === WireType.LengthDelimited) out.status = decodeStatus(r.bytes());
    else if (field === 2 && wt === WireType.LengthDelimited) out.payload = r.bytes();
    else r.skip(wt, field);
  }
  return out;
}

export function decodeStatus(bytes: Uint8Array): StatusEnvelope {
  const r = new BinaryReader(bytes);
  const out: StatusEnvelope = { code: 0, message: "", details: [] };
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === WireType.Varint) out.code = r.int32();
    else if (field === 2 && wt === WireType.LengthDelimited) out.message = r.string(true);
    else if (field === 3 && wt === WireType.LengthDelimited) out.details.push(decodeAny(r.bytes()));
    else r.skip(wt, field);
  }
  return out;
}

function decodeAny(bytes: Uint8Array): Any {
  const r = new BinaryReader(bytes);
  let typeUrl = "";
  let value = new Uint8Array(0);
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (field === 1 && wt === WireType.LengthDelimited) typeUrl = r.string(true);
    else if (field === 2 && wt === WireType.LengthDelimited) value = r.bytes().slice();
    else r.skip(wt, field);
  }
  return create(AnySchema, { typeUrl, value });
}
