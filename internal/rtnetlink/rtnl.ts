import { AF_UNSPEC, RT_TABLE_MAIN, TC_H_INGRESS } from "./constants.ts";
import {
  type Address,
  addressRequests,
  type Link,
  linkRequests,
  parseAddress,
  parseLink,
  parseRoute,
  type Route,
  type RouteSpec,
  routeRequests,
} from "./route.ts";
import type { NetlinkSockets } from "./socket.ts";
import { NetlinkError, type NetlinkTransport, RtNetlinkSocket } from "./socket.ts";
import { parseTcObject, type TcObject, tcRequests } from "./tc.ts";

/**
 * The rtnetlink operations the network layer needs, on one namespace. Like `ip` and `tc`, but
 * in-process: no fork/exec on the shim's path, and errors carry the kernel's errno and text.
 */
export class Rtnl {
  private constructor(private readonly sock: RtNetlinkSocket) {}

  static open(native: NetlinkSockets, netnsPath = ""): Rtnl {
    return new Rtnl(RtNetlinkSocket.open(native, netnsPath));
  }

  /** Over another transport (the guest's Bun FFI socket). */
  static over(transport: NetlinkTransport): Rtnl {
    return new Rtnl(new RtNetlinkSocket(transport));
  }

  /** Opens, runs fn, closes. */
  static with<T>(native: NetlinkSockets, netnsPath: string, fn: (r: Rtnl) => T): T {
    const r = Rtnl.open(native, netnsPath);
    try {
      return fn(r);
    } finally {
      r.close();
    }
  }

  get netns(): string {
    return this.sock.netns;
  }

  close(): void {
    this.sock.close();
  }

  private where(what: string): string {
    return `${what}${this.sock.netns ? ` in ${this.sock.netns}` : ""}`;
  }

  links(): Link[] {
    return this.sock.dump(linkRequests.dump(), this.where("list links")).map(parseLink);
  }

  /** The link with that name, or undefined. */
  link(name: string): Link | undefined {
    try {
      return parseLink(this.sock.get(linkRequests.getByName(name), this.where(`get link ${name}`)));
    } catch (err) {
      if (err instanceof NetlinkError && err.code === "ENODEV") return undefined;
      throw err;
    }
  }

  setUp(link: Link, up = true): void {
    this.sock.request(
      linkRequests.setUp(link.index, up),
      this.where(`set ${link.name} ${up ? "up" : "down"}`),
    );
  }

  setMtu(link: Link, mtu: number): void {
    this.sock.request(linkRequests.setMtu(link.index, mtu), this.where(`set ${link.name} mtu ${mtu}`));
  }

  setName(link: Link, name: string): void {
    this.sock.request(linkRequests.setName(link.index, name), this.where(`rename ${link.name} to ${name}`));
  }

  setMac(link: Link, mac: string): void {
    this.sock.request(linkRequests.setMac(link.index, mac), this.where(`set ${link.name} address ${mac}`));
  }

  deleteLink(link: Link): void {
    this.sock.request(linkRequests.delete(link.index), this.where(`delete link ${link.name}`));
  }

  addresses(): Address[] {
    return this.sock
      .dump(addressRequests.dump(AF_UNSPEC), this.where("list addresses"))
      .map(parseAddress)
      .filter((a): a is Address => a !== undefined);
  }

  addAddress(link: Link, cidr: string, opts: { noDad?: boolean } = {}): void {
    this.sock.request(
      addressRequests.add(link.index, cidr, opts),
      this.where(`add address ${cidr} to ${link.name}`),
    );
  }

  /** Routes of the main table (both families). */
  routes(): Route[] {
    return this.sock
      .dump(routeRequests.dump(AF_UNSPEC), this.where("list routes"))
      .map(parseRoute)
      .filter((r): r is Route => r !== undefined && r.table === RT_TABLE_MAIN);
  }

  addRoute(spec: RouteSpec): void {
    this.sock.request(
      routeRequests.add(spec),
      this.where(`add route ${spec.dst}${spec.gateway ? ` via ${spec.gateway}` : ""}`),
    );
  }

  qdiscs(): TcObject[] {
    return this.sock.dump(tcRequests.dumpQdiscs(), this.where("list qdiscs")).map(parseTcObject);
  }

  hasIngressQdisc(link: Link): boolean {
    return this.qdiscs().some(
      (q) => q.index === link.index && q.parent === TC_H_INGRESS && q.kind === "ingress",
    );
  }

  addIngressQdisc(link: Link): void {
    this.sock.request(
      tcRequests.addIngressQdisc(link.index),
      this.where(`add ingress qdisc to ${link.name}`),
    );
  }

  deleteIngressQdisc(link: Link): void {
    this.sock.request(
      tcRequests.deleteIngressQdisc(link.index),
      this.where(`delete ingress qdisc of ${link.name}`),
    );
  }

  addRedirect(from: Link, to: Link, prio = 1): void {
    this.sock.request(
      tcRequests.addRedirect(from.index, to.index, prio),
      this.where(`redirect ${from.name} ingress to ${to.name}`),
    );
  }

  ingressFilters(link: Link): TcObject[] {
    return this.sock
      .dump(tcRequests.dumpIngressFilters(link.index), this.where(`list ingress filters of ${link.name}`))
      .map(parseTcObject);
  }
}
