import { NetworkError } from "../rtnetlink/errors.ts";
import type { ReleaseContext, Releaser, Releasers } from "../state/releasers.ts";
import type { CniResource, NetnsResource, Resource, TapResource } from "../state/resources.ts";
import { parseConfText } from "./cni/config.ts";
import { CniRuntime } from "./cni/invoke.ts";
import { loadNativeNet } from "./native/addon.ts";
import { isManagedNetnsPath, removeNetns } from "./netns.ts";
import { withNetnsIfExists } from "./network.ts";

/**
 * How `delete` and `beetroot gc` release the network resources a dead owner left: the same
 * undo steps as a live teardown, from the ledger entry alone. Each is idempotent (gone = done)
 * and refuses entries that do not look like something beetroot made.
 */

/** Unpins a namespace beetroot created under /run/netns/beetroot-*; never anything else. */
export const releaseNetns: Releaser<"netns"> = async (r: NetnsResource, ctx: ReleaseContext) => {
  if (!isManagedNetnsPath(r.path))
    throw new NetworkError(
      "InvalidArgument",
      `refusing to remove network namespace ${r.path}: not one beetroot names`,
    );
  removeNetns(await loadNativeNet(), r.path);
  ctx.log.debug("released netns", { path: r.path });
};

/** Deletes the TAP (only a tun/tap device of that name) and the ingress qdiscs redirecting to it. */
export const releaseTap: Releaser<"tap"> = async (r: TapResource, ctx: ReleaseContext) => {
  const native = await loadNativeNet();
  withNetnsIfExists(native, r.netns, (rtnl) => {
    const tap = rtnl.link(r.name);
    if (!tap) return;
    if (tap.kind !== "tun")
      throw new NetworkError(
        "InvalidArgument",
        `refusing to delete ${r.name} in ${r.netns}: it is a ${tap.kind ?? "physical"} link, not a TAP`,
      );
    for (const link of rtnl.links()) {
      if (link.index === tap.index || !rtnl.hasIngressQdisc(link)) continue;
      if (rtnl.ingressFilters(link).some((f) => f.redirectTo === tap.index)) rtnl.deleteIngressQdisc(link);
    }
    rtnl.deleteLink(tap);
  });
  ctx.log.debug("released tap", { name: r.name, netns: r.netns });
};

/**
 * CNI DEL with the recorded configuration, which releases the IPAM lease and the plugins'
 * iptables rules even when the namespace is already gone (plugins must tolerate that).
 */
export const releaseCni: Releaser<"cni"> = async (r: CniResource, ctx: ReleaseContext) => {
  const list = parseConfText(r.configJson, `ledger entry for ${r.containerId}`, false);
  await new CniRuntime().del(list, { containerId: r.containerId, ifname: r.ifname, netns: r.netns });
  ctx.log.debug("released cni attachment", { containerId: r.containerId, network: list.name });
};

export function networkReleasers(): Releasers {
  return { netns: releaseNetns, tap: releaseTap, cni: releaseCni };
}

/** Releases one network resource of the ledger (netns, tap or cni); other kinds are refused. */
export async function releaseNetworkResources(resource: Resource, ctx: ReleaseContext): Promise<void> {
  switch (resource.kind) {
    case "netns":
      return releaseNetns(resource, ctx);
    case "tap":
      return releaseTap(resource, ctx);
    case "cni":
      return releaseCni(resource, ctx);
    default:
      throw new NetworkError("InvalidArgument", `${resource.kind} is not a network resource`);
  }
}
