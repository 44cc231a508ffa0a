import { failedPrecondition } from "./errors.ts";

/**
 * A process' lifecycle as containerd sees it. Transitions not listed are refused with
 * FailedPrecondition, which is what containerd expects for e.g. Start of a running process or
 * Delete of a running one.
 */
export type ProcessStatus = "created" | "running" | "paused" | "stopped" | "deleted";

const TRANSITIONS: Readonly<Record<ProcessStatus, readonly ProcessStatus[]>> = {
  created: ["running", "stopped", "deleted"],
  running: ["paused", "stopped"],
  paused: ["running", "stopped"],
  stopped: ["deleted"],
  deleted: [],
};

export interface ExitInfo {
  readonly status: number;
  readonly at: Date;
}

/** containerd's view of a process' stdio: FIFO paths or `file://` / `binary://` URIs. */
export interface StdioPaths {
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
}

export class ProcessRecord {
  private current: ProcessStatus = "created";
  pid = 0;
  private exitInfo: ExitInfo | undefined;
  private resolveExited!: (e: ExitInfo) => void;
  /** Settles when the process exited, its output drained and its TaskExit was queued. */
  readonly exited: Promise<ExitInfo>;
  /** The in-flight Start, which an exit report must not overtake (TaskStart before TaskExit). */
  starting: Promise<unknown> | undefined;

  constructor(
    readonly containerId: string,
    readonly execId: string,
    readonly terminal: boolean,
    readonly stdio: StdioPaths,
  ) {
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
  }

  get isInit(): boolean {
    return this.execId === "";
  }

  get label(): string {
    return this.isInit
      ? `container ${this.containerId}`
      : `exec ${this.execId} in container ${this.containerId}`;
  }

  get status(): ProcessStatus {
    return this.current;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  can(to: ProcessStatus): boolean {
    return TRANSITIONS[this.current].includes(to);
  }

  /** Throws FailedPrecondition naming the process and both states when `to` is not allowed. */
  require(to: ProcessStatus, action: string): void {
    if (!this.can(to)) throw failedPrecondition(`cannot ${action} ${this.label}: it is ${this.current}`);
  }

  transition(to: ProcessStatus, action: string = to): void {
    this.require(to, action);
    this.current = to;
  }

  /** Records the exit; returns false when it was already recorded (duplicate reports are harmless). */
  markExited(exit: ExitInfo): boolean {
    if (this.exitInfo !== undefined) return false;
    this.exitInfo = exit;
    if (this.current !== "stopped" && this.can("stopped")) this.current = "stopped";
    return true;
  }

  /** Wakes Wait callers; called after the TaskExit event was queued, so Wait never overtakes it. */
  notifyExited(): void {
    if (this.exitInfo) this.resolveExited(this.exitInfo);
  }
}
