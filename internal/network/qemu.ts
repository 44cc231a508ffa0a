import type { VmNic } from "./network.ts";

/**
 * QEMU arguments for a VM NIC backed by the TAP descriptor beetroot opened in the pod
 * namespace. The launcher passes `nic.fd` to the child (e.g. in spawn's stdio array) and names
 * the number it has there. vhost stays off: these hosts have no /dev/vhost-net, and QEMU opens
 * nothing itself.
 */
export function qemuNicArgs(nic: VmNic, fdInChild: number, device = "virtio-net-device"): string[] {
  if (!Number.isInteger(fdInChild) || fdInChild < 3)
    throw new RangeError(`TAP fd in the child must be ≥ 3, got ${fdInChild}`);
  return [
    "-netdev",
    `tap,id=${nic.id},fd=${fdInChild},vhost=off`,
    "-device",
    `${device},netdev=${nic.id},mac=${nic.mac},host_mtu=${nic.mtu}`,
  ];
}
