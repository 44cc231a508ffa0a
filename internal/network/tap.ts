import { NetworkError } from "../rtnetlink/errors.ts";
import { IFF_VNET_HDR, type NativeNet } from "./native/addon.ts";

/**
 * TAP devices for the VM's NICs. The TAP is created inside the pod namespace by opening
 * /dev/net/tun from a thread that entered it, and its file descriptor is what QEMU gets
 * (`-netdev tap,fd=N`): QEMU itself stays in the host namespace and needs no privileges or
 * /dev/net/tun access. The TAP is not persistent: it disappears when the last descriptor closes,
 * so a crashed shim + QEMU cannot leave one behind.
 */
export interface OpenTap {
  readonly name: string;
  readonly fd: number;
  readonly netns: string;
  /** IFF_VNET_HDR: QEMU probes it and then passes checksum/segmentation offloads through. */
  readonly vnetHdr: boolean;
}

export function tapName(index: number): string {
  return `beetap${index}`;
}

export function openTap(
  native: NativeNet,
  netns: string,
  name: string,
  opts: { vnetHdr?: boolean } = {},
): OpenTap {
  const vnetHdr = opts.vnetHdr ?? true;
  try {
    const t = native.tapOpen(netns, name, vnetHdr ? IFF_VNET_HDR : 0);
    return { name: t.name, fd: t.fd, netns, vnetHdr };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EBUSY" || code === "EEXIST")
      throw new NetworkError("AlreadyExists", `TAP ${name} already exists in ${netns}`, { cause: err });
    if (code === "ENOENT" && /tun/.test((err as Error).message))
      throw new NetworkError(
        "FailedPrecondition",
        "/dev/net/tun is missing: the host kernel needs CONFIG_TUN",
        { cause: err },
      );
    throw new NetworkError("Internal", `creating TAP ${name} in ${netns}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
