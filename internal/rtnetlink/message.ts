import {
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from "./constants.ts";

/**
 * Netlink framing: the 16-byte message header, type-length-value attributes, and the kernel's
 * error/ack message. Encoding is for requests we build; parsing is for bytes the kernel sends,
 * so every length is checked against the buffer before it is trusted.
 */

export class NetlinkParseError extends Error {
  constructor(message: string) {
    super(`malformed netlink data: ${message}`);
    this.name = "NetlinkParseError";
  }
}

export const align4 = (n: number): number => (n + 3) & ~3;

// ---------- encoding ----------

export interface NlAttr {
  readonly type: number;
  /** Bytes, or child attributes for a nested attribute. */
  readonly value: Uint8Array | readonly NlAttr[];
  /** Set NLA_F_NESTED on a nested attribute (newer kernel families check it; tc does not). */
  readonly nestedFlag?: boolean;
}

function u32le(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

export const attr = {
  bytes: (type: number, value: Uint8Array): NlAttr => ({ type, value }),
  u8: (type: number, v: number): NlAttr => ({ type, value: Uint8Array.of(v & 0xff) }),
  u16: (type: number, v: number): NlAttr => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v & 0xffff);
    return { type, value: b };
  },
  u32: (type: number, v: number): NlAttr => ({ type, value: u32le(v) }),
  /** A NUL-terminated string, as IFLA_IFNAME and TCA_KIND are. */
  str: (type: number, s: string): NlAttr => ({ type, value: Buffer.from(`${s}\0`, "utf8") }),
  nested: (type: number, children: readonly NlAttr[], nestedFlag = false): NlAttr => ({
    type,
    value: children,
    nestedFlag,
  }),
};

function attrSize(a: NlAttr): number {
  const inner = a.value instanceof Uint8Array ? a.value.length : attrsSize(a.value);
  return NLA_HDRLEN + inner;
}

function attrsSize(attrs: readonly NlAttr[]): number {
  return attrs.reduce((n, a) => n + align4(attrSize(a)), 0);
}

function writeAttrs(buf: Buffer, offset: number, attrs: readonly NlAttr[]): number {
  let off = offset;
  for (const a of attrs) {
    const len = attrSize(a);
    if (len > 0xffff) throw new RangeError(`netlink attribute ${a.type} is ${len} bytes, more than 65535`);
    buf.writeUInt16LE(len, off);
    buf.writeUInt16LE(a.type | (a.nestedFlag ? NLA_F_NESTED : 0), off + 2);
    if (a.value instanceof Uint8Array) buf.set(a.value, off + NLA_HDRLEN);
    else writeAttrs(buf, off + NLA_HDRLEN, a.value);
    off += align4(len);
  }
  return off;
}

export function encodeAttrs(attrs: readonly NlAttr[]): Buffer {
  const buf = Buffer.alloc(attrsSize(attrs));
  writeAttrs(buf, 0, attrs);
  return buf;
}

export interface OutgoingMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid?: number;
  /** The family header (ifinfomsg, rtmsg, tcmsg, ...), a multiple of 4 bytes. */
  readonly header: Uint8Array;
  readonly attrs?: readonly NlAttr[];
}

export function encodeMessage(m: OutgoingMessage): Buffer {
  const attrs = m.attrs ?? [];
  const headerLen = align4(m.header.length);
  const len = NLMSG_HDRLEN + headerLen + attrsSize(attrs);
  const buf = Buffer.alloc(len);
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(m.type, 4);
  buf.writeUInt16LE(m.flags, 6);
  buf.writeUInt32LE(m.seq >>> 0, 8);
  buf.writeUInt32LE((m.pid ?? 0) >>> 0, 12);
  buf.set(m.header, NLMSG_HDRLEN);
  writeAttrs(buf, NLMSG_HDRLEN + headerLen, attrs);
  return buf;
}

// ---------- parsing ----------

export interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  /** Everything after the 16-byte header. */
  readonly payload: Buffer;
}

/** Splits one datagram into its messages. */
export function parseMessages(data: Uint8Array): NlMessage[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: NlMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN)
      throw new NetlinkParseError(`${buf.length - off} trailing bytes, shorter than a message header`);
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN) throw new NetlinkParseError(`message length ${len} is shorter than its header`);
    if (len > buf.length - off)
      throw new NetlinkParseError(
        `message length ${len} runs past the datagram (${buf.length - off} bytes left)`,
      );
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

export interface RawAttr {
  /** The type without the NESTED/NET_BYTEORDER flag bits. */
  readonly type: number;
  readonly nested: boolean;
  readonly value: Buffer;
}

/** Parses the attributes filling `buf` from `offset` (typically right after a family header). */
export function parseAttrs(buf: Buffer, offset = 0): RawAttr[] {
  if (offset > buf.length)
    throw new NetlinkParseError(`attributes start at ${offset}, past ${buf.length} bytes`);
  const out: RawAttr[] = [];
  let off = offset;
  while (off < buf.length) {
    if (buf.length - off < NLA_HDRLEN) {
      // The kernel pads messages to 4 bytes, so a short tail can only be padding.
      if (buf.subarray(off).every((b) => b === 0)) break;
      throw new NetlinkParseError(`${buf.length - off} trailing bytes, shorter than an attribute header`);
    }
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN)
      throw new NetlinkParseError(`attribute ${rawType & NLA_TYPE_MASK} has length ${len}`);
    if (len > buf.length - off)
      throw new NetlinkParseError(
        `attribute ${rawType & NLA_TYPE_MASK} length ${len} runs past its container (${buf.length - off} bytes left)`,
      );
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      value: buf.subarray(off + NLA_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** The first attribute of a type (the kernel sends each at most once in the messages we read). */
export function findAttr(attrs: readonly RawAttr[], type: number): Buffer | undefined {
  return attrs.find((a) => a.type === type)?.value;
}

export function attrU32(attrs: readonly RawAttr[], type: number): number | undefined {
  const v = findAttr(attrs, type);
  if (v === undefined) return undefined;
  if (v.length < 4) throw new NetlinkParseError(`attribute ${type} should hold a u32, has ${v.length} bytes`);
  return v.readUInt32LE(0);
}

export function attrString(attrs: readonly RawAttr[], type: number): string | undefined {
  const v = findAttr(attrs, type);
  if (v === undefined) return undefined;
  const nul = v.indexOf(0);
  return v.subarray(0, nul < 0 ? v.length : nul).toString("utf8");
}

export interface NlErrorMessage {
  /** 0 for an ACK, else a positive errno. */
  readonly errno: number;
  /** Type and seq of the request this answers. */
  readonly requestType: number;
  readonly requestSeq: number;
  /** The kernel's extended-ack text, when it gave one. */
  readonly message?: string;
  readonly badAttrOffset?: number;
}

/** Parses an NLMSG_ERROR (an error, or with errno 0 an ACK). */
export function parseErrorMessage(m: NlMessage): NlErrorMessage {
  if (m.type !== NLMSG_ERROR) throw new NetlinkParseError(`message type ${m.type} is not NLMSG_ERROR`);
  const p = m.payload;
  if (p.length < 4 + NLMSG_HDRLEN)
    throw new NetlinkParseError(`NLMSG_ERROR payload of ${p.length} bytes, needs ${4 + NLMSG_HDRLEN}`);
  const err = p.readInt32LE(0);
  if (err > 0) throw new NetlinkParseError(`NLMSG_ERROR carries a positive error ${err}`);
  const requestLen = p.readUInt32LE(4);
  const base = {
    errno: -err,
    requestType: p.readUInt16LE(8),
    requestSeq: p.readUInt32LE(12),
  };
  if ((m.flags & NLM_F_ACK_TLVS) === 0) return base;
  // The original request follows whole unless the kernel capped it to its header.
  const echoed = (m.flags & NLM_F_CAPPED) !== 0 ? NLMSG_HDRLEN : requestLen;
  if (echoed < NLMSG_HDRLEN || 4 + echoed > p.length)
    throw new NetlinkParseError(
      `NLMSG_ERROR echoes a request of ${requestLen} bytes in a ${p.length}-byte payload`,
    );
  const tlvs = parseAttrs(p, 4 + align4(echoed));
  const msg = attrString(tlvs, NLMSGERR_ATTR_MSG);
  const offs = attrU32(tlvs, NLMSGERR_ATTR_OFFS);
  return {
    ...base,
    ...(msg !== undefined && msg !== "" && { message: msg }),
    ...(offs !== undefined && { badAttrOffset: offs }),
  };
}
