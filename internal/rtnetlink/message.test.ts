import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as C from "./constants.ts";
import {
  attr,
  encodeMessage,
  NetlinkParseError,
  parseAttrs,
  parseErrorMessage,
  parseMessages,
} from "./message.ts";
import {
  addressRequests,
  linkRequests,
  parseAddress,
  parseLink,
  parseRoute,
  routeRequests,
} from "./route.ts";
import { parseTcObject, tcRequests } from "./tc.ts";

/** Requests iproute2 sent on this machine (see the file's header), by name. */
function golden(): Map<string, Buffer> {
  const text = readFileSync(join(import.meta.dirname, "testdata/iproute2-requests.txt"), "utf8");
  const out = new Map<string, Buffer>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const [name, hex] = line.split(" ");
    if (name && hex) out.set(name, Buffer.from(hex, "hex"));
  }
  return out;
}

const g = golden();
const seqOf = (b: Buffer) => b.readUInt32LE(8);
function gold(name: string): Buffer {
  const b = g.get(name);
  if (!b) throw new Error(`no golden request ${name}`);
  return b;
}
type Req = Parameters<typeof encodeMessage>[0];
const encodeLike = (req: Omit<Req, "seq">, name: string) => encodeMessage({ ...req, seq: seqOf(gold(name)) });

describe("netlink requests are byte-identical to iproute2's", () => {
  const cases: [string, Omit<Req, "seq">][] = [
    ["qdisc-add-ingress", tcRequests.addIngressQdisc(3)],
    ["qdisc-del-ingress", tcRequests.deleteIngressQdisc(3)],
    ["filter-add-u32-mirred", tcRequests.addRedirect(3, 4, 1)],
    ["link-set-up", linkRequests.setUp(3, true)],
    ["link-set-mtu", linkRequests.setMtu(3, 1400)],
    ["link-set-name", linkRequests.setName(3, "eth0")],
    ["link-set-address", linkRequests.setMac(3, "02:00:00:aa:bb:cc")],
    ["link-del", linkRequests.delete(4)],
    ["link-get-by-name", linkRequests.getByName("v0")],
    ["addr-add-v4", addressRequests.add(3, "10.0.0.2/24")],
    ["addr-add-v6-nodad", addressRequests.add(3, "fd00:1::2/64", { noDad: true })],
    ["route-add-default-v4", routeRequests.add({ dst: "0.0.0.0/0", gateway: "10.0.0.1", outIndex: 3 })],
    ["route-add-v6", routeRequests.add({ dst: "fd00:2::/64", gateway: "fd00:1::1", outIndex: 3 })],
  ];
  for (const [name, req] of cases) {
    it(name, () => {
      // ACK is added by the socket for change requests; iproute2 sets it on those too.
      const wantsAck = (gold(name).readUInt16LE(6) & C.NLM_F_ACK) !== 0;
      const flags = req.flags | (wantsAck ? C.NLM_F_ACK : 0);
      expect(encodeLike({ ...req, flags }, name).toString("hex")).toBe(gold(name).toString("hex"));
    });
  }
});

describe("parsing what the requests describe", () => {
  it("reads an ingress qdisc and a mirred filter back", () => {
    const q = parseTcObject(parseMessages(gold("qdisc-add-ingress"))[0]!);
    expect(q).toMatchObject({
      index: 3,
      kind: "ingress",
      parent: C.TC_H_INGRESS,
      handle: C.TC_H_INGRESS_HANDLE,
    });
    const f = parseTcObject(parseMessages(gold("filter-add-u32-mirred"))[0]!);
    expect(f).toMatchObject({ index: 3, kind: "u32", redirectTo: 4, parent: C.TC_H_INGRESS_HANDLE });
  });

  it("reads addresses and routes", () => {
    const a = parseAddress({ ...parseMessages(gold("addr-add-v6-nodad"))[0]!, type: C.RTM_NEWADDR });
    expect(a).toMatchObject({ index: 3, family: 6, prefix: { address: "fd00:1::2", prefixLength: 64 } });
    const r = parseRoute(parseMessages(gold("route-add-default-v4"))[0]!);
    expect(r).toMatchObject({
      family: 4,
      dst: { address: "0.0.0.0", prefixLength: 0 },
      gateway: "10.0.0.1",
      outIndex: 3,
    });
    const r6 = parseRoute(parseMessages(gold("route-add-v6"))[0]!);
    expect(r6).toMatchObject({ dst: { address: "fd00:2::", prefixLength: 64 }, gateway: "fd00:1::1" });
  });

  it("reads a link", () => {
    const hdr = Buffer.alloc(16);
    hdr.writeUInt16LE(C.ARPHRD_ETHER, 2);
    hdr.writeInt32LE(7, 4);
    hdr.writeUInt32LE(C.IFF_UP, 8);
    const m = encodeMessage({
      type: C.RTM_NEWLINK,
      flags: 0,
      seq: 1,
      header: hdr,
      attrs: [
        attr.str(C.IFLA_IFNAME, "eth0"),
        attr.u32(C.IFLA_MTU, 1450),
        attr.bytes(C.IFLA_ADDRESS, Buffer.from("020000aabbcc", "hex")),
        attr.nested(C.IFLA_LINKINFO, [attr.str(C.IFLA_INFO_KIND, "veth")]),
        attr.u32(C.IFLA_LINK, 12),
      ],
    });
    expect(parseLink(parseMessages(m)[0]!)).toEqual({
      index: 7,
      name: "eth0",
      hwType: C.ARPHRD_ETHER,
      flags: C.IFF_UP,
      mtu: 1450,
      mac: "02:00:00:aa:bb:cc",
      kind: "veth",
      parentIndex: 12,
    });
  });

  it("reads an error with the kernel's extended-ack text", () => {
    const request = gold("qdisc-add-ingress");
    const body = Buffer.alloc(4);
    body.writeInt32LE(-17);
    const tlv = encodeMessage({
      type: 0,
      flags: 0,
      seq: 0,
      header: Buffer.alloc(0),
      attrs: [attr.str(C.NLMSGERR_ATTR_MSG, "Exclusivity flag on, cannot modify")],
    }).subarray(16);
    const payload = Buffer.concat([body, request.subarray(0, 16), tlv]);
    const msg = Buffer.alloc(16 + payload.length);
    msg.writeUInt32LE(msg.length, 0);
    msg.writeUInt16LE(C.NLMSG_ERROR, 4);
    msg.writeUInt16LE(C.NLM_F_CAPPED | C.NLM_F_ACK_TLVS, 6);
    payload.copy(msg, 16);
    const e = parseErrorMessage(parseMessages(msg)[0]!);
    expect(e).toEqual({
      errno: 17,
      requestType: C.RTM_NEWQDISC,
      requestSeq: seqOf(request),
      message: "Exclusivity flag on, cannot modify",
    });
  });
});

describe("malformed input is rejected with a NetlinkParseError", () => {
  it("names the broken length", () => {
    const m = Buffer.from(gold("link-set-up"));
    m.writeUInt32LE(200, 0);
    expect(() => parseMessages(m)).toThrow(/runs past the datagram/);
    m.writeUInt32LE(8, 0);
    expect(() => parseMessages(m)).toThrow(/shorter than its header/);
    const a = Buffer.from("0800010041", "hex");
    expect(() => parseAttrs(a)).toThrow(NetlinkParseError);
  });
});

/** A small deterministic PRNG, so a failing case can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("parser property: any byte string either parses or throws NetlinkParseError", () => {
  const parsers = [(b: Buffer) => parseMessages(b).map(parseLinkLoose), (b: Buffer) => parseAttrs(b)];
  function parseLinkLoose(m: ReturnType<typeof parseMessages>[number]) {
    // Run every payload parser over every message, whatever its type says.
    const as = (type: number) => ({ ...m, type });
    const r: unknown[] = [];
    for (const f of [
      () => parseLink(as(C.RTM_NEWLINK)),
      () => parseAddress(as(C.RTM_NEWADDR)),
      () => parseRoute(as(C.RTM_NEWROUTE)),
      () => parseTcObject(m),
      () => parseErrorMessage(as(C.NLMSG_ERROR)),
    ]) {
      try {
        r.push(f());
      } catch (err) {
        // Anything else (a RangeError from an unchecked Buffer read, a TypeError) is a bug.
        if (!(err instanceof NetlinkParseError)) throw err;
      }
    }
    return r;
  }

  it("survives 20000 mutations of real messages and random bytes", () => {
    const seeds = [...g.values()];
    const rand = rng(0xbee7);
    for (let i = 0; i < 20000; i++) {
      const base = seeds[i % seeds.length]!;
      let b: Buffer;
      const mode = i % 4;
      if (mode === 0) {
        b = Buffer.from(Array.from({ length: Math.floor(rand() * 96) }, () => Math.floor(rand() * 256)));
      } else {
        b = Buffer.from(base);
        const flips = 1 + Math.floor(rand() * 4);
        for (let k = 0; k < flips; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        if (mode === 2) b = b.subarray(0, Math.floor(rand() * b.length));
        if (mode === 3) b = Buffer.concat([b, b.subarray(0, Math.floor(rand() * b.length))]);
      }
      for (const p of parsers) {
        try {
          p(b);
        } catch (err) {
          if (!(err instanceof NetlinkParseError)) {
            throw new Error(`case ${i} (${b.toString("hex")}): ${(err as Error).stack}`);
          }
        }
      }
    }
  });
});
