import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Logger, silentLogger } from "../log/logger.ts";
import { errorText, NetworkError } from "../rtnetlink/errors.ts";
import { familyOf } from "../rtnetlink/ip.ts";
import {
  type GuestDns,
  type GuestNetworkConfig,
  orderRoutes,
  parseGuestNetworkConfig,
} from "../rtnetlink/netconfig.ts";
import type { Link } from "../rtnetlink/route.ts";
import { Rtnl } from "../rtnetlink/rtnl.ts";
import { NetlinkError } from "../rtnetlink/socket.ts";
import type { Ledger } from "../state/ledger.ts";
import { CleanupStack } from "./cleanup-stack.ts";
import { EMBEDDED_SOURCE, type LoadedConfList, loadConfList } from "./cni/config.ts";
import { CniRuntime, type CniRuntimeConf, validateRuntimeConf } from "./cni/invoke.ts";
import type { CniResult } from "./cni/result.ts";
import { discoverPodNetwork, type PodInterface } from "./discover.ts";
import { embeddedMasquerade, ensureMasquerade } from "./masquerade.ts";
import { loadNativeNet, type NativeNet } from "./native/addon.ts";
import { createNetns, managedNetnsPath, removeNetns } from "./netns.ts";
import { openTap, tapName } from "./tap.ts";

/**
 * The pod network of one VM. Two modes, chosen by the OCI spec's network namespace:
 *
 * - managed (a `network` namespace entry without a path, as `ctr run` sends): beetroot creates
 *   the namespace, runs the CNI chain in it, and removes both on teardown;
 * - attach (the entry names a path: CRI already ran CNI there): beetroot reads what is there.
 *
 * Either way each Ethernet interface of the namespace gets a TAP next to it and a pair of tc
 * redirects (interface ingress → TAP egress, TAP ingress → interface egress), so the VM's NIC,
 * carrying the interface's MAC and MTU, is on the wire exactly where the interface was. Every
 * resource is written to the ledger before it is created and forgotten after it is released.
 */
export type NetnsRequest = { readonly kind: "managed" } | { readonly kind: "attach"; readonly path: string };

export interface VmNic {
  /** QEMU netdev id. */
  readonly id: string;
  /** The TAP's name inside the pod namespace. */
  readonly tap: string;
  /** This process' descriptor of the TAP: hand it to QEMU (see qemu.ts). */
  readonly fd: number;
  readonly vnetHdr: boolean;
  readonly mac: string;
  readonly mtu: number;
  /** The pod interface it is spliced onto ("eth0"). */
  readonly podInterface: string;
}

export interface NetworkAttachment {
  readonly mode: NetnsRequest["kind"];
  readonly netns: string;
  readonly nics: readonly VmNic[];
  readonly guestConfig: GuestNetworkConfig;
  /** Managed mode: the CNI chain's result. */
  readonly cniResult?: CniResult;
}

export interface Network {
  setup(containerId: string, netns: NetnsRequest): Promise<NetworkAttachment>;
  /** Closes this process' TAP descriptors once QEMU holds its own copies (the TAPs live on with QEMU). */
  closeTapFds(): void;
  /** Releases everything setup made, newest first. Stop the VM before calling it. Idempotent. */
  teardown(): Promise<void>;
}

export interface NetworkOptions {
  readonly ledger: Ledger;
  readonly log?: Logger;
  readonly native?: NativeNet;
  readonly cni?: CniRuntime;
  /** Defaults to loadConfList() (the conf dir's first file, else the embedded default). */
  readonly confList?: LoadedConfList;
  /** Interface name CNI creates in managed mode. */
  readonly ifname?: string;
  /** CNI_ARGS and capability args for managed mode. */
  readonly cniArgs?: Pick<CniRuntimeConf, "args" | "capabilityArgs">;
  /** Where managed mode takes DNS from when the CNI result has none. */
  readonly hostResolvConf?: string;
}

/** Reads the spec's network namespace entry. No entry means host networking, which a VM cannot do. */
export function netnsRequestFromSpec(spec: unknown): NetnsRequest {
  const namespaces = (spec as { linux?: { namespaces?: unknown } } | null)?.linux?.namespaces;
  const list = Array.isArray(namespaces) ? (namespaces as { type?: unknown; path?: unknown }[]) : [];
  const net = list.find((n) => n?.type === "network");
  if (!net)
    throw new NetworkError(
      "InvalidArgument",
      "the container asks for the host's network (its spec has no network namespace): beetroot runs it in a VM with its own kernel, which cannot share the host's network stack; run it without host networking (or with a runc-based runtime)",
    );
  if (net.path === undefined || net.path === "") return { kind: "managed" };
  if (typeof net.path !== "string" || !net.path.startsWith("/"))
    throw new NetworkError(
      "InvalidArgument",
      `network namespace path ${JSON.stringify(net.path)} is not an absolute path`,
    );
  return { kind: "attach", path: net.path };
}

/** DNS for managed mode without CNI-provided DNS: the host's resolver minus loopback ones (unreachable from a VM). */
export function hostDns(resolvConf = "/etc/resolv.conf"): GuestDns {
  let text = "";
  try {
    text = readFileSync(resolvConf, "utf8");
  } catch {
    return { nameservers: [], search: [], options: [] };
  }
  const nameservers: string[] = [];
  let search: string[] = [];
  let options: string[] = [];
  for (const raw of text.split("\n")) {
    const [key, ...rest] = raw
      .replace(/[#;].*/, "")
      .trim()
      .split(/\s+/);
    if (key === "nameserver" && rest[0]) {
      const ns = rest[0];
      try {
        familyOf(ns);
      } catch {
        continue;
      }
      if (/^127\./.test(ns) || ns === "::1") continue;
      nameservers.push(ns);
    } else if (key === "search" || key === "domain") search = rest;
    else if (key === "options") options = rest;
  }
  return { nameservers: nameservers.slice(0, 3), search, options };
}

function cniDns(result: CniResult): GuestDns | undefined {
  const d = result.dns;
  if (!d.nameservers || d.nameservers.length === 0) return undefined;
  const search = d.search ?? (d.domain ? [d.domain] : []);
  return { nameservers: [...d.nameservers], search: [...search], options: [...(d.options ?? [])] };
}

export function managedNetnsName(owner: string, containerId: string): string {
  return createHash("sha256").update(`${owner}\0${containerId}`).digest("hex").slice(0, 16);
}

class PodNetworkImpl implements Network {
  private readonly cleanup = new CleanupStack();
  private readonly log: Logger;
  private readonly openFds = new Set<number>();
  private state: "new" | "setting-up" | "ready" | "torn-down" = "new";
  private native: NativeNet | undefined;

  constructor(private readonly opts: NetworkOptions) {
    this.log = opts.log ?? silentLogger;
  }

  async setup(containerId: string, request: NetnsRequest): Promise<NetworkAttachment> {
    if (this.state !== "new")
      throw new NetworkError("FailedPrecondition", `network setup called in state ${this.state}`);
    this.state = "setting-up";
    try {
      const attachment = await this.doSetup(containerId, request);
      this.state = "ready";
      return attachment;
    } catch (err) {
      const failures = await this.cleanup.unwind(this.log);
      this.state = "torn-down";
      if (failures.length === 0) throw err;
      const left = failures.map((f) => `${f.step}: ${f.error.message}`).join("; ");
      const e = err instanceof NetworkError ? err : new NetworkError("Internal", errorText(err));
      throw new NetworkError(e.code, `${e.message} (and undoing the setup failed, gc will retry: ${left})`, {
        cause: err,
      });
    }
  }

  /**
   * Ledger first, then the resource; the undo step (also run when creation failed half-way,
   * with `undefined`) releases it and then forgets the entry.
   */
  private async record<T>(
    label: string,
    resource: Parameters<Ledger["record"]>[0],
    create: () => Promise<T> | T,
    undo: (v: T | undefined) => Promise<void> | void,
  ): Promise<T> {
    const id = await this.opts.ledger.record(resource, label);
    let value: T;
    try {
      value = await create();
    } catch (err) {
      // Creation failed: whatever it managed to leave is undone by the same step, then forgotten.
      // Except when the resource already existed: it is someone else's, and must be left alone.
      const foreign = err instanceof NetworkError && err.code === "AlreadyExists";
      this.cleanup.push(`${label} (failed create)`, async () => {
        if (!foreign) await undo(undefined);
        await this.opts.ledger.release(id);
      });
      throw err;
    }
    this.cleanup.push(label, async () => {
      await undo(value);
      await this.opts.ledger.release(id);
    });
    return value;
  }

  private async doSetup(containerId: string, request: NetnsRequest): Promise<NetworkAttachment> {
    const native = this.opts.native ?? (await loadNativeNet());
    this.native = native;
    let netns: string;
    let cniResult: CniResult | undefined;
    let dns: GuestDns = { nameservers: [], search: [], options: [] };

    if (request.kind === "managed") {
      const conf = this.opts.confList ?? loadConfList();
      const cni = this.opts.cni ?? new CniRuntime();
      const rt: CniRuntimeConf = {
        containerId,
        netns: "",
        ifname: this.opts.ifname ?? "eth0",
        ...this.opts.cniArgs,
      };
      // Everything that can be checked without touching the host is checked first.
      cni.checkPlugins(conf.list);
      netns = managedNetnsPath(managedNetnsName(this.opts.ledger.owner, containerId));
      const full = { ...rt, netns };
      validateRuntimeConf(full);
      const nsPath = netns;
      await this.record(
        "netns",
        { kind: "netns", path: nsPath },
        () => createNetns(native, nsPath),
        () => removeNetns(native, nsPath),
      );
      this.log.info("created network namespace", { netns, network: conf.list.name, config: conf.source });
      // The embedded network's outbound NAT is one rule for its subnet, made beside the ADD.
      const nat =
        conf.source === EMBEDDED_SOURCE ? ensureMasquerade(embeddedMasquerade(conf.list)) : undefined;
      nat?.catch(() => {}); // awaited below, after the ADD
      let added: CniResult | undefined;
      await this.record(
        "cni",
        { kind: "cni", containerId, ifname: full.ifname, netns, configJson: JSON.stringify(conf.list) },
        async () => {
          added = await cni.add(conf.list, full);
          return added;
        },
        // After a failed ADD too: the spec asks runtimes to DEL whatever a partial ADD left.
        () => cni.del(conf.list, full, added),
      );
      await nat;
      cniResult = added;
      if (cniResult) dns = cniDns(cniResult) ?? hostDns(this.opts.hostResolvConf);
      this.log.info("CNI ADD done", { netns, ips: cniResult?.ips.map((i) => i.address).join(",") });
    } else {
      netns = request.path;
    }

    let rtnl: Rtnl;
    try {
      rtnl = Rtnl.open(native, netns);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new NetworkError("NotFound", `network namespace ${netns} does not exist`);
      if (code === "EINVAL") throw new NetworkError("InvalidArgument", `${netns} is not a network namespace`);
      throw new NetworkError("Internal", `entering network namespace ${netns}: ${errorText(err)}`);
    }
    try {
      const pod = discoverPodNetwork(rtnl);
      if (pod.interfaces.length === 0)
        throw new NetworkError(
          request.kind === "managed" ? "Internal" : "FailedPrecondition",
          `network namespace ${netns} has no Ethernet interface to give the VM (${request.kind === "managed" ? "the CNI chain created none" : "was CNI run for this pod?"})`,
        );
      const nics: VmNic[] = [];
      for (const [i, iface] of pod.interfaces.entries())
        nics.push(await this.splice(native, rtnl, netns, iface, i));
      const guestConfig = parseGuestNetworkConfig({
        version: 1,
        interfaces: pod.interfaces.map((p) => p.guest),
        routes: orderRoutes(pod.routes),
        dns,
      });
      return { mode: request.kind, netns, nics, guestConfig, ...(cniResult && { cniResult }) };
    } finally {
      rtnl.close();
    }
  }

  /** TAP next to the pod interface, same MTU, and tc redirects both ways. */
  private async splice(
    native: NativeNet,
    rtnl: Rtnl,
    netns: string,
    iface: PodInterface,
    i: number,
  ): Promise<VmNic> {
    const pod = iface.link;
    if (rtnl.hasIngressQdisc(pod))
      throw new NetworkError(
        "FailedPrecondition",
        `${pod.name} in ${netns} already has an ingress qdisc: something else shapes or redirects its traffic`,
      );
    const name = tapName(i);
    const tap = await this.record(
      "tap",
      { kind: "tap", name, netns },
      () => {
        const t = openTap(native, netns, name);
        this.openFds.add(t.fd);
        return t;
      },
      (t) => {
        if (t && this.openFds.delete(t.fd)) native.close(t.fd);
        // QEMU may still hold it (or the open half-failed): delete by name, checking it is a TAP.
        withNetnsIfExists(native, netns, (r) => {
          const l = r.link(name);
          if (l && l.kind === "tun") r.deleteLink(l);
        });
      },
    );
    const tapLink = rtnl.link(tap.name);
    if (!tapLink)
      throw new NetworkError("Internal", `TAP ${tap.name} vanished from ${netns} right after creation`);
    rtnl.setMtu(tapLink, pod.mtu);
    rtnl.setUp(tapLink);
    if ((pod.flags & 1) === 0) rtnl.setUp(pod);

    rtnl.addIngressQdisc(pod);
    // The pod interface outlives us in attach mode: its qdisc (and the filter under it) must go.
    this.cleanup.push(`ingress qdisc of ${pod.name}`, () =>
      withNetnsIfExists(native, netns, (r) => {
        const l = r.link(pod.name);
        if (l && r.hasIngressQdisc(l)) deleteQdisc(r, l);
      }),
    );
    rtnl.addRedirect(pod, tapLink);
    rtnl.addIngressQdisc(tapLink);
    rtnl.addRedirect(tapLink, pod);
    this.log.info("spliced VM NIC onto pod interface", {
      netns,
      interface: pod.name,
      tap: tap.name,
      mac: pod.mac,
      mtu: pod.mtu,
    });
    return {
      id: `net${i}`,
      tap: tap.name,
      fd: tap.fd,
      vnetHdr: tap.vnetHdr,
      mac: iface.guest.mac,
      mtu: pod.mtu,
      podInterface: pod.name,
    };
  }

  closeTapFds(): void {
    for (const fd of this.openFds) this.native?.close(fd);
    this.openFds.clear();
  }

  async teardown(): Promise<void> {
    if (this.state === "torn-down" || this.state === "new") {
      this.state = "torn-down";
      return;
    }
    this.state = "torn-down";
    const failures = await this.cleanup.unwind(this.log);
    if (failures.length > 0)
      throw new NetworkError(
        "Internal",
        `network teardown left resources (gc will retry): ${failures.map((f) => `${f.step}: ${f.error.message}`).join("; ")}`,
      );
  }
}

/** Runs fn on the namespace unless it is gone (then whatever lived in it is gone too). */
export function withNetnsIfExists(native: NativeNet, netns: string, fn: (r: Rtnl) => void): void {
  let r: Rtnl;
  try {
    r = Rtnl.open(native, netns);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EINVAL") return;
    throw err;
  }
  try {
    fn(r);
  } finally {
    r.close();
  }
}

function deleteQdisc(r: Rtnl, l: Link): void {
  try {
    r.deleteIngressQdisc(l);
  } catch (err) {
    if (
      !(
        err instanceof NetlinkError &&
        (err.code === "ENOENT" || err.code === "EINVAL" || err.code === "ENODEV")
      )
    )
      throw err;
  }
}

export function createNetwork(opts: NetworkOptions): Network {
  return new PodNetworkImpl(opts);
}
