import type { System } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import type { Task } from "../../api/gen/beetroot/guest/v1/task_pb.ts";
import type { TypedClient } from "../ttrpc/types.ts";

/**
 * What the shim needs from vminitd: the guest Task service (crun in the VM) and the System service
 * (health, shutdown), exactly as a TTRPC client over the VM's vsock connection exposes them. This is
 * the seam unit tests replace; everything on the host side of it is real in tests.
 */
export interface GuestClient {
  readonly task: TypedClient<typeof Task>;
  readonly system: TypedClient<typeof System>;
}

/** Deadlines for guest calls: generous under TCG, where a busy 2-core host slows the guest 10×. */
export const GUEST_CALL_TIMEOUT_MS = 60_000;
