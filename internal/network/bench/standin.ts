import { type ChildProcess, spawn } from "node:child_process";

/**
 * The VM stand-in: QEMU with no machine (-machine none) whose network hub joins the pod TAP
 * (handed over as a descriptor exactly like the real launcher does) to a second TAP that plays
 * the guest NIC. It exercises everything on the host side of a VM NIC (descriptor passing,
 * QEMU's tap backend, the tc redirects) without a guest kernel.
 */
export function startTapHub(qemu: string, podFd: number, guestFd: number): ChildProcess {
  return spawn(
    qemu,
    [
      ...["-machine", "none", "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "none"],
      ...["-netdev", "tap,id=pod,fd=3,vhost=off", "-netdev", "tap,id=vm,fd=4,vhost=off"],
      ...["-netdev", "hubport,id=h0,hubid=0,netdev=pod", "-netdev", "hubport,id=h1,hubid=0,netdev=vm"],
    ],
    { stdio: ["ignore", "ignore", "pipe", podFd, guestFd] },
  );
}
