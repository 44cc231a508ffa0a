/**
 * The lifecycle of one VM. Every change goes through `to()`, which refuses transitions the
 * table does not allow: a stop racing a crash, or a second launch, is a bug to surface, not a
 * state to paper over.
 *
 *   new ──► starting ──► running ──► stopping ──► stopped
 *              │            │           │
 *              └────────────┴───────────┴──────► failed
 */
export type VmState = "new" | "starting" | "running" | "stopping" | "stopped" | "failed";

const allowed: Readonly<Record<VmState, readonly VmState[]>> = {
  new: ["starting", "failed"],
  starting: ["running", "stopping", "failed"],
  running: ["stopping", "failed"],
  stopping: ["stopped", "failed"],
  stopped: [],
  failed: [],
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: VmState,
    readonly to: VmState,
  ) {
    super(`illegal VM state transition ${from} → ${to}`);
    this.name = "IllegalTransitionError";
  }
}

export function isTerminal(state: VmState): boolean {
  return state === "stopped" || state === "failed";
}

export class VmStateMachine {
  private current: VmState = "new";
  private readonly listeners: Array<(to: VmState, from: VmState) => void> = [];

  get state(): VmState {
    return this.current;
  }

  can(to: VmState): boolean {
    return allowed[this.current].includes(to);
  }

  to(next: VmState): void {
    const from = this.current;
    if (!allowed[from].includes(next)) throw new IllegalTransitionError(from, next);
    this.current = next;
    for (const l of this.listeners) l(next, from);
  }

  onChange(listener: (to: VmState, from: VmState) => void): void {
    this.listeners.push(listener);
  }
}
