/**
 * IP addresses as the kernel carries them (4 or 16 network-order bytes) and as people write
 * them. Parsing is strict: these strings come from CNI plugins and pod namespaces.
 */
export type Family = 4 | 6;

export interface Prefix {
  readonly family: Family;
  readonly address: string;
  readonly prefixLength: number;
}

export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AddressError";
  }
}

const IPV4_OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)";
const IPV4_TEXT = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const ZONE = /^[0-9a-zA-Z\-.:]+$/;

/** Dotted quad without leading zeros (as node:net's isIPv4, which vminitd must not load under Bun). */
export function isIPv4Text(text: string): boolean {
  return IPV4_TEXT.test(text);
}

/** RFC 4291 text form: hex groups, at most one "::", an optional dotted-quad tail and %zone. */
export function isIPv6Text(text: string): boolean {
  let body = text;
  const percent = body.indexOf("%");
  if (percent >= 0) {
    if (!ZONE.test(body.slice(percent + 1))) return false;
    body = body.slice(0, percent);
  }
  const halves = body.split("::");
  if (halves.length > 2) return false;
  let groups = 0;
  for (const [h, half] of halves.entries()) {
    if (half === "") continue;
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      const lastOfAll = h === halves.length - 1 && i === parts.length - 1;
      if (lastOfAll && part.includes(".")) {
        if (!isIPv4Text(part)) return false;
        groups += 2;
      } else if (HEX_GROUP.test(part)) {
        groups += 1;
      } else {
        return false;
      }
    }
  }
  return halves.length === 2 ? groups <= 7 : groups === 8;
}

export function familyOf(address: string): Family {
  if (isIPv4Text(address)) return 4;
  if (isIPv6Text(address)) return 6;
  throw new AddressError(`${JSON.stringify(address)} is not an IPv4 or IPv6 address`);
}

export function ipToBytes(address: string): Uint8Array {
  const family = familyOf(address);
  if (family === 4) return Uint8Array.from(address.split(".").map((p) => Number.parseInt(p, 10)));
  // Expand "::" and a trailing dotted quad into eight 16-bit groups.
  let text = address;
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = ipToBytes(tail);
    text = `${text.slice(0, lastColon + 1)}${(((v4[0] ?? 0) << 8) | (v4[1] ?? 0)).toString(16)}:${(((v4[2] ?? 0) << 8) | (v4[3] ?? 0)).toString(16)}`;
  }
  const [head = "", rest] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = rest === undefined || rest === "" ? [] : rest.split(":");
  const fill = rest === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(fill).fill("0"), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length !== 16) throw new AddressError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // RFC 5952: compress the longest run (≥2) of zero groups, the first one on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** "10.1.2.3/24" → {family 4, address "10.1.2.3", prefixLength 24}. */
export function parsePrefix(cidr: string): Prefix {
  const slash = cidr.indexOf("/");
  if (slash < 0) throw new AddressError(`${JSON.stringify(cidr)} lacks a /prefix-length`);
  const address = cidr.slice(0, slash);
  const lenText = cidr.slice(slash + 1);
  const family = familyOf(address);
  if (!/^\d{1,3}$/.test(lenText)) throw new AddressError(`${JSON.stringify(cidr)}: bad prefix length`);
  const prefixLength = Number.parseInt(lenText, 10);
  if (prefixLength > (family === 4 ? 32 : 128))
    throw new AddressError(
      `${JSON.stringify(cidr)}: prefix length ${prefixLength} is too long for IPv${family}`,
    );
  return { family, address: bytesToIp(ipToBytes(address)), prefixLength };
}

export function formatPrefix(p: Prefix): string {
  return `${p.address}/${p.prefixLength}`;
}

/** The network address of a prefix ("10.1.2.3/24" → "10.1.2.0/24"). */
export function networkOf(p: Prefix): Prefix {
  const bytes = ipToBytes(p.address);
  for (let bit = p.prefixLength; bit < bytes.length * 8; bit++) {
    const i = bit >> 3;
    bytes[i] = (bytes[i] ?? 0) & ~(0x80 >> (bit & 7));
  }
  return { family: p.family, address: bytesToIp(bytes), prefixLength: p.prefixLength };
}

export function isDefaultRoute(p: Prefix): boolean {
  return p.prefixLength === 0;
}

/** "02:00:0a:00:00:05" ⇄ bytes. */
export function macToBytes(mac: string): Uint8Array {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac))
    throw new AddressError(`${JSON.stringify(mac)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  return Uint8Array.from(mac.split(":").map((h) => Number.parseInt(h, 16)));
}

export function bytesToMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");
}
