import { NetworkError } from "../../rtnetlink/errors.ts";
import { familyOf, parsePrefix } from "../../rtnetlink/ip.ts";

/**
 * A CNI result (spec 0.3.0 … 1.1.0 share this shape). Plugins are external programs: their
 * output is checked field by field before anything relies on it.
 */
export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  readonly sandbox?: string;
  readonly mtu?: number;
}

export interface CniIp {
  /** CIDR: "10.123.0.5/16". */
  readonly address: string;
  readonly gateway?: string;
  /** Index into interfaces. */
  readonly interface?: number;
}

export interface CniRoute {
  readonly dst: string;
  readonly gw?: string;
}

export interface CniDns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces: readonly CniInterface[];
  readonly ips: readonly CniIp[];
  readonly routes: readonly CniRoute[];
  readonly dns: CniDns;
  /** The raw JSON, passed on as prevResult to the next plugin unchanged. */
  readonly raw: Record<string, unknown>;
}

function bad(plugin: string, why: string): NetworkError {
  return new NetworkError("Internal", `CNI plugin ${plugin} returned a malformed result: ${why}`);
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function strings(v: unknown, plugin: string, where: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string"))
    throw bad(plugin, `${where} is not a list of strings`);
  return v as string[];
}

function cidr(v: unknown, plugin: string, where: string): string {
  if (typeof v !== "string") throw bad(plugin, `${where} is not a string`);
  try {
    parsePrefix(v);
  } catch (err) {
    throw bad(plugin, `${where}: ${(err as Error).message}`);
  }
  return v;
}

function ip(v: unknown, plugin: string, where: string): string {
  if (typeof v !== "string") throw bad(plugin, `${where} is not a string`);
  try {
    familyOf(v);
  } catch (err) {
    throw bad(plugin, `${where}: ${(err as Error).message}`);
  }
  return v;
}

export function parseCniResult(value: unknown, plugin: string): CniResult {
  if (!isObj(value)) throw bad(plugin, "not a JSON object");
  const cniVersion = value.cniVersion;
  if (typeof cniVersion !== "string") throw bad(plugin, "no cniVersion");
  if (/^0\.[12]\./.test(cniVersion))
    throw new NetworkError(
      "InvalidArgument",
      `CNI plugin ${plugin} answered in cniVersion ${cniVersion}, which beetroot does not read: configure cniVersion 0.3.0 or newer`,
    );
  const interfaces: CniInterface[] = [];
  const rawIfs = value.interfaces ?? [];
  if (!Array.isArray(rawIfs)) throw bad(plugin, "interfaces is not a list");
  rawIfs.forEach((i, n) => {
    if (!isObj(i) || typeof i.name !== "string") throw bad(plugin, `interfaces[${n}] has no name`);
    if (i.mac !== undefined && typeof i.mac !== "string")
      throw bad(plugin, `interfaces[${n}].mac is not a string`);
    if (i.sandbox !== undefined && typeof i.sandbox !== "string")
      throw bad(plugin, `interfaces[${n}].sandbox is not a string`);
    interfaces.push({
      name: i.name,
      ...(typeof i.mac === "string" && { mac: i.mac }),
      ...(typeof i.sandbox === "string" && { sandbox: i.sandbox }),
      ...(typeof i.mtu === "number" && { mtu: i.mtu }),
    });
  });
  const ips: CniIp[] = [];
  const rawIps = value.ips ?? [];
  if (!Array.isArray(rawIps)) throw bad(plugin, "ips is not a list");
  rawIps.forEach((a, n) => {
    if (!isObj(a)) throw bad(plugin, `ips[${n}] is not an object`);
    const address = cidr(a.address, plugin, `ips[${n}].address`);
    const gateway = a.gateway === undefined ? undefined : ip(a.gateway, plugin, `ips[${n}].gateway`);
    let iface: number | undefined;
    if (a.interface !== undefined && a.interface !== null) {
      if (
        typeof a.interface !== "number" ||
        !Number.isInteger(a.interface) ||
        a.interface < 0 ||
        a.interface >= interfaces.length
      )
        throw bad(plugin, `ips[${n}].interface ${JSON.stringify(a.interface)} names no interface`);
      iface = a.interface;
    }
    ips.push({
      address,
      ...(gateway !== undefined && { gateway }),
      ...(iface !== undefined && { interface: iface }),
    });
  });
  const routes: CniRoute[] = [];
  const rawRoutes = value.routes ?? [];
  if (!Array.isArray(rawRoutes)) throw bad(plugin, "routes is not a list");
  rawRoutes.forEach((r, n) => {
    if (!isObj(r)) throw bad(plugin, `routes[${n}] is not an object`);
    const dst = cidr(r.dst, plugin, `routes[${n}].dst`);
    const gw = r.gw === undefined ? undefined : ip(r.gw, plugin, `routes[${n}].gw`);
    routes.push({ dst, ...(gw !== undefined && { gw }) });
  });
  const d = value.dns ?? {};
  if (!isObj(d)) throw bad(plugin, "dns is not an object");
  const nameservers = strings(d.nameservers, plugin, "dns.nameservers");
  for (const [n, s] of (nameservers ?? []).entries()) ip(s, plugin, `dns.nameservers[${n}]`);
  const search = strings(d.search, plugin, "dns.search");
  const options = strings(d.options, plugin, "dns.options");
  if (d.domain !== undefined && typeof d.domain !== "string") throw bad(plugin, "dns.domain is not a string");
  const dns: CniDns = {
    ...(nameservers && { nameservers }),
    ...(typeof d.domain === "string" && d.domain !== "" && { domain: d.domain }),
    ...(search && { search }),
    ...(options && { options }),
  };
  return { cniVersion, interfaces, ips, routes, dns, raw: value };
}

/** A CNI error result: `{code, msg, details}` on stdout with a non-zero exit. */
export interface CniErrorResult {
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

export function parseCniError(stdout: string): CniErrorResult | undefined {
  try {
    const v: unknown = JSON.parse(stdout);
    if (isObj(v) && typeof v.code === "number" && typeof v.msg === "string")
      return {
        code: v.code,
        msg: v.msg,
        ...(typeof v.details === "string" && v.details !== "" && { details: v.details }),
      };
  } catch {
    // Not JSON: the caller reports the raw output.
  }
  return undefined;
}
