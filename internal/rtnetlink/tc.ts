import * as C from "./constants.ts";
import {
  attr,
  attrString,
  findAttr,
  NetlinkParseError,
  type NlMessage,
  type OutgoingMessage,
  parseAttrs,
} from "./message.ts";

/**
 * Traffic-control requests for the one thing beetroot does with tc: an ingress qdisc on a link
 * and a u32 "match everything" filter whose mirred action redirects every frame to the egress
 * of another link. Two of those (pod interface → TAP, TAP → pod interface) splice the VM's NIC
 * onto the interface CNI configured. u32, not matchall: matchall is a separate module that
 * hardened hosts may lack (measured here: "TC classifier not found"), u32 is everywhere.
 */

type Request = Omit<OutgoingMessage, "seq">;

function tcmsg(index: number, handle: number, parent: number, info: number): Buffer {
  const b = Buffer.alloc(C.TCMSG_LEN);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(handle >>> 0, 8);
  b.writeUInt32LE(parent >>> 0, 12);
  b.writeUInt32LE(info >>> 0, 16);
  return b;
}

/** TC_H_MAKE(prio << 16, htons(protocol)): the protocol half is in network byte order. */
function filterInfo(prio: number, protocol: number): number {
  const be = ((protocol & 0xff) << 8) | ((protocol >> 8) & 0xff);
  return ((prio & 0xffff) << 16) | be;
}

const ingressHeader = (index: number) => tcmsg(index, C.TC_H_INGRESS_HANDLE, C.TC_H_INGRESS, 0);

export const tcRequests = {
  addIngressQdisc: (index: number): Request => ({
    type: C.RTM_NEWQDISC,
    flags: C.NLM_F_REQUEST | C.NLM_F_ACK | C.NLM_F_EXCL | C.NLM_F_CREATE,
    header: ingressHeader(index),
    attrs: [attr.str(C.TCA_KIND, "ingress")],
  }),
  /** Deleting the ingress qdisc deletes every filter under it. */
  deleteIngressQdisc: (index: number): Request => ({
    type: C.RTM_DELQDISC,
    flags: C.NLM_F_REQUEST | C.NLM_F_ACK,
    header: ingressHeader(index),
    attrs: [attr.str(C.TCA_KIND, "ingress")],
  }),
  /**
   * `tc filter add dev <from> parent ffff: protocol all prio <prio> u32 match u32 0 0
   *  action mirred egress redirect dev <to>`.
   */
  addRedirect: (fromIndex: number, toIndex: number, prio = 1): Request => {
    // struct tc_mirred: tc_gen {index, capab, action, refcnt, bindcnt} + eaction + ifindex.
    const mirred = Buffer.alloc(28);
    mirred.writeInt32LE(C.TC_ACT_STOLEN, 8);
    mirred.writeInt32LE(C.TCA_EGRESS_REDIR, 20);
    mirred.writeUInt32LE(toIndex, 24);
    // struct tc_u32_sel (16 bytes) with one all-zero key (mask 0 matches every packet).
    const sel = Buffer.alloc(16 + 16);
    sel.writeUInt8(C.TC_U32_TERMINAL, 0);
    sel.writeUInt8(1, 2); // nkeys
    return {
      type: C.RTM_NEWTFILTER,
      flags: C.NLM_F_REQUEST | C.NLM_F_ACK | C.NLM_F_EXCL | C.NLM_F_CREATE,
      header: tcmsg(fromIndex, 0, C.TC_H_INGRESS_HANDLE, filterInfo(prio, C.ETH_P_ALL)),
      attrs: [
        attr.str(C.TCA_KIND, "u32"),
        attr.nested(C.TCA_OPTIONS, [
          attr.nested(C.TCA_U32_ACT, [
            attr.nested(1, [
              attr.str(C.TCA_ACT_KIND, "mirred"),
              attr.nested(C.TCA_ACT_OPTIONS, [attr.bytes(C.TCA_MIRRED_PARMS, mirred)], true),
            ]),
          ]),
          attr.bytes(C.TCA_U32_SEL, sel),
        ]),
      ],
    };
  },
  dumpQdiscs: (): Request => ({
    type: C.RTM_GETQDISC,
    flags: C.NLM_F_REQUEST | C.NLM_F_DUMP,
    header: tcmsg(0, 0, 0, 0),
  }),
  dumpIngressFilters: (index: number): Request => ({
    type: C.RTM_GETTFILTER,
    flags: C.NLM_F_REQUEST | C.NLM_F_DUMP,
    header: tcmsg(index, 0, C.TC_H_INGRESS_HANDLE, 0),
  }),
};

export interface TcObject {
  readonly index: number;
  readonly handle: number;
  readonly parent: number;
  readonly info: number;
  readonly kind: string;
  /** For u32 filters with a mirred action: the ifindex frames are redirected to. */
  readonly redirectTo?: number;
}

function mirredTarget(options: Buffer): number | undefined {
  const act = findAttr(parseAttrs(options), C.TCA_U32_ACT);
  if (act === undefined) return undefined;
  for (const slot of parseAttrs(act)) {
    const inner = parseAttrs(slot.value);
    if (attrString(inner, C.TCA_ACT_KIND) !== "mirred") continue;
    const opts = findAttr(inner, C.TCA_ACT_OPTIONS);
    const parms = opts && findAttr(parseAttrs(opts), C.TCA_MIRRED_PARMS);
    if (parms === undefined) continue;
    if (parms.length < 28) throw new NetlinkParseError(`tc_mirred of ${parms.length} bytes`);
    return parms.readUInt32LE(24);
  }
  return undefined;
}

/** A qdisc or filter from a dump. */
export function parseTcObject(m: NlMessage): TcObject {
  const p = m.payload;
  if (p.length < C.TCMSG_LEN) throw new NetlinkParseError(`tcmsg needs 20 bytes, has ${p.length}`);
  const attrs = parseAttrs(p, C.TCMSG_LEN);
  const kind = attrString(attrs, C.TCA_KIND) ?? "";
  const options = findAttr(attrs, C.TCA_OPTIONS);
  const redirectTo = kind === "u32" && options ? mirredTarget(options) : undefined;
  return {
    index: p.readInt32LE(4),
    handle: p.readUInt32LE(8),
    parent: p.readUInt32LE(12),
    info: p.readUInt32LE(16),
    kind,
    ...(redirectTo !== undefined && { redirectTo }),
  };
}
