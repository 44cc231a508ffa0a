import * as C from "./constants.ts";
import { bytesToIp, bytesToMac, type Family, ipToBytes, macToBytes, type Prefix, parsePrefix } from "./ip.ts";
import {
  attr,
  attrString,
  attrU32,
  findAttr,
  NetlinkParseError,
  type NlAttr,
  type NlMessage,
  type OutgoingMessage,
  parseAttrs,
} from "./message.ts";

/**
 * rtnetlink requests and replies for links, addresses and routes: pure functions from typed
 * values to messages and back. The socket (socket.ts) adds sequence numbers and talks to the kernel.
 */

const familyCode = (f: Family): number => (f === 4 ? C.AF_INET : C.AF_INET6);

function ifinfomsg(o: { index?: number; flags?: number; change?: number; family?: number }): Buffer {
  const b = Buffer.alloc(C.IFINFOMSG_LEN);
  b.writeUInt8(o.family ?? C.AF_UNSPEC, 0);
  b.writeInt32LE(o.index ?? 0, 4);
  b.writeUInt32LE((o.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((o.change ?? 0) >>> 0, 12);
  return b;
}

type Request = Omit<OutgoingMessage, "seq">;

// ---------- links ----------

export interface Link {
  readonly index: number;
  readonly name: string;
  /** ARPHRD_* (1 = Ethernet, 772 = loopback). */
  readonly hwType: number;
  readonly flags: number;
  readonly mtu: number;
  /** "aa:bb:..", absent for links without a hardware address. */
  readonly mac?: string;
  /** IFLA_LINKINFO kind: "veth", "tun", "bridge", ... (absent for physical/loopback). */
  readonly kind?: string;
  /** Index of the peer/parent link (veth peer), which may live in another namespace. */
  readonly parentIndex?: number;
  readonly masterIndex?: number;
}

export const linkRequests = {
  dump: (): Request => ({
    type: C.RTM_GETLINK,
    flags: C.NLM_F_REQUEST | C.NLM_F_DUMP,
    header: ifinfomsg({}),
    attrs: [attr.u32(C.IFLA_EXT_MASK, C.RTEXT_FILTER_VF | C.RTEXT_FILTER_SKIP_STATS)],
  }),
  getByName: (name: string): Request => ({
    type: C.RTM_GETLINK,
    flags: C.NLM_F_REQUEST,
    header: ifinfomsg({}),
    attrs: [
      attr.u32(C.IFLA_EXT_MASK, C.RTEXT_FILTER_VF | C.RTEXT_FILTER_SKIP_STATS),
      attr.str(C.IFLA_IFNAME, name),
    ],
  }),
  setUp: (index: number, up: boolean): Request => ({
    type: C.RTM_NEWLINK,
    flags: C.NLM_F_REQUEST | C.NLM_F_ACK,
    header: ifinfomsg({ index, flags: up ? C.IFF_UP : 0, change: C.IFF_UP }),
  }),
  setMtu: (index: number, mtu: number): Request => ({
    type: C.RTM_NEWLINK,
    flags: C.NLM_F_REQUEST | C.NLM_F_ACK,
    header: ifinfomsg({ index }),
    attrs: [attr.u32(C.IFLA_MTU, mtu)],
  }),
  /** The link must be down. */
  setName: (index: number, name: string): Request => ({
    type: C.RTM_NEWLINK,
    flags: C.NLM_F_REQUEST | C.NLM_F_ACK,
    header: ifinfomsg({ index }),
    attrs: [attr.str(C.IFLA_IFNAME, name)],
  }),
  setMac: (index: number, mac: string): Request => ({
    type: C.RTM_NEWLINK,
    flags: C.NLM_F_REQUEST | C.NLM_F_ACK,
    header: ifinfomsg({ index }),
    attrs: [attr.bytes(C.IFLA_ADDRESS, macToBytes(mac))],
  }),
  delete: (index: number): Request => ({
    type: C.RTM_DELLINK,
    flags: C.NLM_F_REQUEST | C.NLM_F_ACK,
    header: ifinfomsg({ index }),
  }),
};

export function parseLink(m: NlMessage): Link {
  if (m.type !== C.RTM_NEWLINK) throw new NetlinkParseError(`expected RTM_NEWLINK, got type ${m.type}`);
  const p = m.payload;
  if (p.length < C.IFINFOMSG_LEN) throw new NetlinkParseError(`ifinfomsg needs 16 bytes, has ${p.length}`);
  const attrs = parseAttrs(p, C.IFINFOMSG_LEN);
  const name = attrString(attrs, C.IFLA_IFNAME);
  if (name === undefined) throw new NetlinkParseError("link without IFLA_IFNAME");
  const mtu = attrU32(attrs, C.IFLA_MTU) ?? 0;
  const hw = findAttr(attrs, C.IFLA_ADDRESS);
  const info = findAttr(attrs, C.IFLA_LINKINFO);
  const kind = info ? attrString(parseAttrs(info), C.IFLA_INFO_KIND) : undefined;
  const parentIndex = attrU32(attrs, C.IFLA_LINK);
  const masterIndex = attrU32(attrs, C.IFLA_MASTER);
  return {
    index: p.readInt32LE(4),
    name,
    hwType: p.readUInt16LE(2),
    flags: p.readUInt32LE(8),
    mtu,
    ...(hw !== undefined && hw.length === 6 && { mac: bytesToMac(hw) }),
    ...(kind !== undefined && { kind }),
    ...(parentIndex !== undefined && { parentIndex }),
    ...(masterIndex !== undefined && { masterIndex }),
  };
}

// ---------- addresses ----------

export interface Address {
  readonly index: number;
  readonly family: Family;
  /** The local address with its prefix length: "10.1.0.5/16". */
  readonly prefix: Prefix;
  readonly scope: number;
  readonly flags: number;
}

function ifaddrmsg(
  family: number,
  prefixLength: number,
  flags: number,
  scope: number,
  index: number,
): Buffer {
  const b = Buffer.alloc(C.IFADDRMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLength, 1);
  b.writeUInt8(flags, 2);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

export const addressRequests = {
  dump: (family: number = C.AF_UNSPEC): Request => ({
    type: C.RTM_GETADDR,
    flags: C.NLM_F_REQUEST | C.NLM_F_DUMP,
    header: ifaddrmsg(family, 0, 0, 0, 0),
  }),
  /** Like `ip addr add`: IFA_LOCAL then IFA_ADDRESS, both the address itself. */
  add: (index: number, cidr: string, opts: { noDad?: boolean } = {}): Request => {
    const p = parsePrefix(cidr);
    const bytes = ipToBytes(p.address);
    return {
      type: C.RTM_NEWADDR,
      flags: C.NLM_F_REQUEST | C.NLM_F_ACK | C.NLM_F_EXCL | C.NLM_F_CREATE,
      header: ifaddrmsg(familyCode(p.family), p.prefixLength, opts.noDad ? C.IFA_F_NODAD : 0, 0, index),
      attrs: [attr.bytes(C.IFA_LOCAL, bytes), attr.bytes(C.IFA_ADDRESS, bytes)],
    };
  },
};

export function parseAddress(m: NlMessage): Address | undefined {
  if (m.type !== C.RTM_NEWADDR) throw new NetlinkParseError(`expected RTM_NEWADDR, got type ${m.type}`);
  const p = m.payload;
  if (p.length < C.IFADDRMSG_LEN) throw new NetlinkParseError(`ifaddrmsg needs 8 bytes, has ${p.length}`);
  const fam = p.readUInt8(0);
  if (fam !== C.AF_INET && fam !== C.AF_INET6) return undefined;
  const family: Family = fam === C.AF_INET ? 4 : 6;
  const prefixLength = p.readUInt8(1);
  if (prefixLength > (family === 4 ? 32 : 128))
    throw new NetlinkParseError(`IPv${family} address with prefix length ${prefixLength}`);
  const attrs = parseAttrs(p, C.IFADDRMSG_LEN);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
  const raw = findAttr(attrs, C.IFA_LOCAL) ?? findAttr(attrs, C.IFA_ADDRESS);
  if (raw === undefined) throw new NetlinkParseError("address message without IFA_LOCAL/IFA_ADDRESS");
  if (raw.length !== (family === 4 ? 4 : 16))
    throw new NetlinkParseError(`IPv${family} address attribute of ${raw.length} bytes`);
  return {
    index: p.readUInt32LE(4),
    family,
    prefix: { family, address: bytesToIp(raw), prefixLength },
    scope: p.readUInt8(3),
    flags: attrU32(attrs, C.IFA_FLAGS) ?? p.readUInt8(2),
  };
}

// ---------- routes ----------

export interface Route {
  readonly family: Family;
  /** Destination prefix; prefixLength 0 is the default route. */
  readonly dst: Prefix;
  readonly gateway?: string;
  readonly outIndex?: number;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: number;
  readonly priority?: number;
  readonly prefsrc?: string;
  readonly mtu?: number;
  /** Multipath routes are reported but not taken apart. */
  readonly multipath: boolean;
}

function rtmsg(o: {
  family: number;
  dstLen: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
}): Buffer {
  const b = Buffer.alloc(C.RTMSG_LEN);
  b.writeUInt8(o.family, 0);
  b.writeUInt8(o.dstLen, 1);
  b.writeUInt8(o.table < 256 ? o.table : 252 /* RT_TABLE_COMPAT: RTA_TABLE carries the id */, 4);
  b.writeUInt8(o.protocol, 5);
  b.writeUInt8(o.scope, 6);
  b.writeUInt8(o.type, 7);
  return b;
}

export interface RouteSpec {
  /** "0.0.0.0/0", "10.2.0.0/16", "fd00::/64". */
  readonly dst: string;
  readonly gateway?: string;
  readonly outIndex: number;
  readonly scope?: "universe" | "link";
  readonly priority?: number;
  readonly protocol?: number;
}

export const routeRequests = {
  dump: (family: number = C.AF_UNSPEC): Request => ({
    type: C.RTM_GETROUTE,
    flags: C.NLM_F_REQUEST | C.NLM_F_DUMP,
    header: rtmsg({ family, dstLen: 0, table: 0, protocol: 0, scope: 0, type: 0 }),
  }),
  /** Like `ip route add DST [via GW] dev IF`: attributes in iproute2's order. */
  add: (r: RouteSpec): Request => {
    const dst = parsePrefix(r.dst);
    if (r.gateway !== undefined && parsePrefix(`${r.gateway}/0`).family !== dst.family)
      throw new NetlinkParseError(`route ${r.dst} via ${r.gateway} mixes address families`);
    const attrs: NlAttr[] = [];
    if (dst.prefixLength > 0) attrs.push(attr.bytes(C.RTA_DST, ipToBytes(dst.address)));
    if (r.gateway !== undefined) attrs.push(attr.bytes(C.RTA_GATEWAY, ipToBytes(r.gateway)));
    if (r.priority !== undefined) attrs.push(attr.u32(C.RTA_PRIORITY, r.priority));
    attrs.push(attr.u32(C.RTA_OIF, r.outIndex));
    const scope =
      r.scope === "link" || (r.scope === undefined && r.gateway === undefined && dst.prefixLength > 0)
        ? C.RT_SCOPE_LINK
        : C.RT_SCOPE_UNIVERSE;
    return {
      type: C.RTM_NEWROUTE,
      flags: C.NLM_F_REQUEST | C.NLM_F_ACK | C.NLM_F_EXCL | C.NLM_F_CREATE,
      header: rtmsg({
        family: familyCode(dst.family),
        dstLen: dst.prefixLength,
        table: C.RT_TABLE_MAIN,
        protocol: r.protocol ?? C.RTPROT_BOOT,
        scope,
        type: C.RTN_UNICAST,
      }),
      attrs,
    };
  },
};

export function parseRoute(m: NlMessage): Route | undefined {
  if (m.type !== C.RTM_NEWROUTE) throw new NetlinkParseError(`expected RTM_NEWROUTE, got type ${m.type}`);
  const p = m.payload;
  if (p.length < C.RTMSG_LEN) throw new NetlinkParseError(`rtmsg needs 12 bytes, has ${p.length}`);
  const fam = p.readUInt8(0);
  if (fam !== C.AF_INET && fam !== C.AF_INET6) return undefined;
  const family: Family = fam === C.AF_INET ? 4 : 6;
  const size = family === 4 ? 4 : 16;
  const dstLen = p.readUInt8(1);
  if (dstLen > size * 8) throw new NetlinkParseError(`IPv${family} route with prefix length ${dstLen}`);
  const attrs = parseAttrs(p, C.RTMSG_LEN);
  const ipAttr = (type: number, what: string): string | undefined => {
    const v = findAttr(attrs, type);
    if (v === undefined) return undefined;
    if (v.length !== size) throw new NetlinkParseError(`IPv${family} route ${what} of ${v.length} bytes`);
    return bytesToIp(v);
  };
  const dst = ipAttr(C.RTA_DST, "destination") ?? (family === 4 ? "0.0.0.0" : "::");
  const gateway = ipAttr(C.RTA_GATEWAY, "gateway");
  const prefsrc = ipAttr(C.RTA_PREFSRC, "preferred source");
  const metrics = findAttr(attrs, C.RTA_METRICS);
  const mtu = metrics ? attrU32(parseAttrs(metrics), C.RTAX_MTU) : undefined;
  const outIndex = attrU32(attrs, C.RTA_OIF);
  const priority = attrU32(attrs, C.RTA_PRIORITY);
  return {
    family,
    dst: { family, address: dst, prefixLength: dstLen },
    ...(gateway !== undefined && { gateway }),
    ...(outIndex !== undefined && { outIndex }),
    table: attrU32(attrs, C.RTA_TABLE) ?? p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
    ...(priority !== undefined && { priority }),
    ...(prefsrc !== undefined && { prefsrc }),
    ...(mtu !== undefined && { mtu }),
    multipath: findAttr(attrs, C.RTA_MULTIPATH) !== undefined,
  };
}
