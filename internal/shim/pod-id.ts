import { createHash } from "node:crypto";

/**
 * The VM id of a pod: stable from containerd's address + namespace + pod id (like the shim socket),
 * so `delete` finds the VM's ledger (`vm-<id>`) after a crash and two containerds on one host never
 * collide; short and plain because it also is the guest's hostname. Its own module: `delete` needs
 * it without the pod manager.
 */
export function podVmId(containerdAddress: string, namespace: string, podId: string): string {
  const key = JSON.stringify([containerdAddress, namespace, podId]);
  return `pod-${createHash("sha256").update(key).digest("hex").slice(0, 24)}`;
}

/** The ledger owner the VM launcher records a VM's host resources under. */
export const vmLedgerOwner = (vmId: string): string => `vm-${vmId}`;
