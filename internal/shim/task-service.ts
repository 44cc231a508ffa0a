import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { AnySchema, type EmptySchema, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type {
  CheckpointTaskRequest,
  CloseIORequest,
  ConnectRequest,
  ConnectResponseSchema,
  CreateTaskRequest,
  CreateTaskResponseSchema,
  DeleteRequest,
  DeleteResponseSchema,
  ExecProcessRequest,
  KillRequest,
  PauseRequest,
  PidsRequest,
  PidsResponseSchema,
  ResizePtyRequest,
  ResumeRequest,
  ShutdownRequest,
  StartRequest,
  StartResponseSchema,
  StateRequest,
  StateResponseSchema,
  StatsRequest,
  StatsResponseSchema,
  UpdateTaskRequest,
  WaitRequest,
  WaitResponseSchema,
} from "../../api/gen/containerd/task/v2/shim_pb.ts";
import { Status } from "../../api/gen/containerd/types/task_pb.ts";
import type { Logger } from "../log/logger.ts";
import { Code } from "../ttrpc/codes.ts";
import { TtrpcError } from "../ttrpc/errors.ts";
import { CleanupStack } from "./cleanup.ts";
import {
  alreadyExists,
  errorMessage,
  failedPrecondition,
  invalidArgument,
  notFound,
  unimplemented,
  wrapError,
} from "./errors.ts";
import type { EventInit, Topic } from "./events.ts";
import { GUEST_CALL_TIMEOUT_MS, type GuestClient } from "./guest-client.ts";
import { type OciSpec, readBundleSpec } from "./oci.ts";
import type { ContainerSandbox, PodManager } from "./pod.ts";
import { type ExitInfo, ProcessRecord, type ProcessStatus } from "./process.ts";
import type { StdioAttachment, StdioRequest } from "./stdio.ts";

type Empty = MessageInitShape<typeof EmptySchema>;

export interface Publisher {
  publish<T extends Topic>(topic: T, event: EventInit<T>): void;
}

export interface TaskServiceDeps {
  readonly pods: PodManager;
  readonly publisher: Publisher;
  readonly attachStdio: (req: StdioRequest) => Promise<StdioAttachment>;
  readonly namespace: string;
  readonly log: Logger;
  readonly shimPid: number;
  readonly version: string;
  /** Called once Shutdown found nothing left to serve; the server closes and the process exits. */
  readonly onShutdown: () => void;
  /** How long an exited process' output may stay silent (no EOF, no data) before the exit is reported. */
  readonly drainTimeoutMs?: number;
}

/** The type containerd's cgroups package registers for v2 metrics; `ctr task metrics` unpacks it. */
export const CGROUPS_V2_METRICS_TYPE = "io.containerd.cgroups.v2.Metrics";

/** How long an exited process' output may stay silent without EOF before its exit is reported anyway. */
export const DEFAULT_DRAIN_IDLE_MS = 2_000;

/** How long an init's exit waits for its running execs' exits to go out first. */
const EXEC_EXITS_FIRST_MS = 10_000;

/** Exit status reported for processes that died with their VM (as if SIGKILLed). */
export const VM_LOST_EXIT_STATUS = 137;

const STATUS_ENUM: Readonly<Record<ProcessStatus, Status>> = {
  created: Status.CREATED,
  running: Status.RUNNING,
  paused: Status.PAUSED,
  stopped: Status.STOPPED,
  deleted: Status.STOPPED,
};

interface ContainerRecord {
  readonly id: string;
  readonly bundle: string;
  readonly spec: OciSpec;
  readonly sandbox: ContainerSandbox;
  readonly init: ProcessRecord;
  readonly execs: Map<string, ProcessRecord>;
  /** Per-process io, keyed like execs ("" = init). */
  readonly io: Map<string, StdioAttachment>;
  /** The VM died under the container: nothing in the guest to talk to any more. */
  vmLost: boolean;
  /** Guest calls made for it that have not answered yet (Wait excepted): Delete lets them finish. */
  readonly calls: Set<Promise<unknown>>;
}

/**
 * containerd's Task API (served as containerd.task.v2.Task and containerd.task.v3.Task), forwarding
 * to vminitd. The host keeps the authoritative lifecycle state so that every RPC is checked against
 * an explicit state machine and events leave in lifecycle order whatever the guest's timing.
 */
export class TaskService {
  private readonly containers = new Map<string, ContainerRecord>();
  /** Creates in flight, so a second Create of the same id fails fast with AlreadyExists. */
  private readonly creating = new Set<string>();
  private shuttingDown = false;

  constructor(private readonly deps: TaskServiceDeps) {
    deps.pods.onVmExit((podId, members) => this.onVmLost(podId, members));
    deps.pods.onOom((id) => {
      if (!this.containers.has(id)) return;
      this.deps.log.warn("container OOM-killed in the guest", { id });
      this.deps.publisher.publish("/tasks/oom", { containerId: id });
    });
  }

  get containerCount(): number {
    return this.containers.size + this.creating.size;
  }

  // ---- lookups -------------------------------------------------------------------------------

  private container(id: string): ContainerRecord {
    if (id === "") throw invalidArgument("container id is empty");
    const c = this.containers.get(id);
    if (!c) throw notFound(`container ${id}: not found`);
    return c;
  }

  private process(id: string, execId: string): { c: ContainerRecord; p: ProcessRecord } {
    const c = this.container(id);
    if (execId === "") return { c, p: c.init };
    const p = c.execs.get(execId);
    if (!p) throw notFound(`exec ${execId} in container ${id}: not found`);
    return { c, p };
  }

  private guestOpts() {
    return { timeoutMs: GUEST_CALL_TIMEOUT_MS };
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  async create(req: CreateTaskRequest): Promise<MessageInitShape<typeof CreateTaskResponseSchema>> {
    if (req.id === "") throw invalidArgument("container id is empty");
    if (this.shuttingDown) throw failedPrecondition("shim is shutting down");
    if (this.containers.has(req.id) || this.creating.has(req.id)) {
      throw alreadyExists(`container ${req.id}: already exists`);
    }
    if (req.checkpoint !== "" || req.parentCheckpoint !== "") {
      throw unimplemented("restoring from a checkpoint is not supported by the beetroot runtime");
    }
    const log = this.deps.log.with({ id: req.id });
    this.creating.add(req.id);
    const cleanup = new CleanupStack();
    try {
      const { spec, raw } = readBundleSpec(req.bundle);
      const sandbox = await this.deps.pods.prepare({
        id: req.id,
        namespace: this.deps.namespace,
        spec,
        mounts: req.rootfs,
        log,
      });
      cleanup.push("release sandbox", () => sandbox.release());

      const stdio = { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr };
      const io = await this.deps.attachStdio({
        containerId: req.id,
        execId: "",
        namespace: this.deps.namespace,
        terminal: req.terminal,
        paths: stdio,
        listenVsock: () => sandbox.listenVsock(),
        log,
      });
      cleanup.push("close stdio", () => io.close());

      let pid: number;
      try {
        ({ pid } = await sandbox.guest.task.create(
          { id: req.id, specJson: sandbox.guestSpec(raw), rootfs: [...sandbox.rootfs], stdio: io.guest },
          this.guestOpts(),
        ));
      } catch (err) {
        throw wrapError(err, `creating container ${req.id} in the VM`);
      }
      cleanup.push("delete in guest", async () => {
        await sandbox.guest.task.delete({ id: req.id }, this.guestOpts());
      });

      const init = new ProcessRecord(req.id, "", req.terminal, stdio);
      init.pid = pid;
      const record: ContainerRecord = {
        id: req.id,
        bundle: req.bundle,
        spec,
        sandbox,
        init,
        execs: new Map(),
        io: new Map([["", io]]),
        vmLost: false,
        calls: new Set(),
      };
      cleanup.release();
      this.containers.set(req.id, record);
      this.deps.publisher.publish("/tasks/create", {
        containerId: req.id,
        bundle: req.bundle,
        rootfs: req.rootfs,
        io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
        checkpoint: req.checkpoint,
        pid,
      });
      // A created init can exit without Start (killed before start): watch it from now on.
      this.watchExit(record, init);
      log.info("container created", { pid, pod: sandbox.podId });
      return { pid };
    } catch (err) {
      await cleanup.unwind(log);
      log.warn("create failed", { error: errorMessage(err) });
      throw err;
    } finally {
      this.creating.delete(req.id);
    }
  }

  async start(req: StartRequest): Promise<MessageInitShape<typeof StartResponseSchema>> {
    const { c, p } = this.process(req.id, req.execId);
    p.require("running", "start");
    if (p.starting) throw failedPrecondition(`cannot start ${p.label}: a start is already in progress`);
    const call = this.guestCall(c, (task) =>
      task.start({ id: req.id, execId: req.execId }, this.guestOpts()),
    );
    p.starting = call;
    try {
      const { pid } = await call;
      p.pid = pid;
      // An exit may have been recorded while the start was in flight (a very short process): the
      // start still happened, so TaskStart goes out first and the held exit follows.
      if (p.status === "created") p.transition("running", "start");
      if (p.isInit) this.deps.publisher.publish("/tasks/start", { containerId: req.id, pid });
      else
        this.deps.publisher.publish("/tasks/exec-started", { containerId: req.id, execId: req.execId, pid });
      if (!p.isInit) this.watchExit(c, p);
      return { pid };
    } catch (err) {
      throw wrapError(err, `starting ${p.label}`);
    } finally {
      p.starting = undefined;
    }
  }

  async delete(req: DeleteRequest): Promise<MessageInitShape<typeof DeleteResponseSchema>> {
    const { c, p } = this.process(req.id, req.execId);
    if (p.status !== "stopped" && p.status !== "created") {
      throw failedPrecondition(`cannot delete ${p.label}: it is ${p.status}`);
    }
    if (p.isInit) {
      const live = [...c.execs.values()].filter((e) => e.status === "running" || e.status === "paused");
      if (live.length > 0 && p.status !== "created") {
        throw failedPrecondition(
          `cannot delete container ${req.id}: exec(s) ${live.map((e) => e.execId).join(", ")} still running`,
        );
      }
    }
    // A never-started process has no exit of its own: the guest's forced delete reports one.
    let guestExit: ExitInfo | undefined;
    // An exited init that is its pod's last member: the VM powers off next and takes the container
    // with it, so deleting it in the guest first (a `crun delete` under emulation) is wasted time.
    const vmEndsWithIt = p.isInit && p.exit !== undefined && c.sandbox.endsPod();
    if (!c.vmLost && !vmEndsWithIt) {
      try {
        const res = await c.sandbox.guest.task.delete({ id: req.id, execId: req.execId }, this.guestOpts());
        guestExit = { status: res.exitStatus, at: res.exitedAt ? timestampDate(res.exitedAt) : new Date() };
      } catch (err) {
        // Already gone in the guest is what we wanted; anything else is a real failure.
        if (!isGone(err)) throw wrapError(err, `deleting ${p.label} in the VM`);
      }
    }
    p.transition("deleted", "delete");
    const exit = p.exit ?? guestExit ?? { status: VM_LOST_EXIT_STATUS, at: new Date() };
    // A Kill or ResizePty racing the exit may still be waiting for the guest: the VM must not power
    // off under it (its caller would see the connection drop instead of an answer).
    if (p.isInit) await Promise.allSettled([...c.calls]);
    const io = c.io.get(req.execId);
    // The guest closed its ends on delete: let what is still in flight reach containerd first.
    if (io && !c.vmLost) await this.drain(io, p);
    await io?.close();
    c.io.delete(req.execId);
    if (p.isInit) {
      for (const io of c.io.values()) await io.close();
      this.containers.delete(req.id);
      await c.sandbox.release();
      this.deps.publisher.publish("/tasks/delete", {
        containerId: req.id,
        pid: p.pid,
        exitStatus: exit.status,
        exitedAt: timestampFromDate(exit.at),
      });
      this.deps.log.info("container deleted", { id: req.id, exit_status: exit.status });
    } else {
      c.execs.delete(req.execId);
    }
    return { pid: p.pid, exitStatus: exit.status, exitedAt: timestampFromDate(exit.at) };
  }

  async exec(req: ExecProcessRequest): Promise<Empty> {
    const c = this.container(req.id);
    if (req.execId === "") throw invalidArgument("exec id is empty");
    if (c.execs.has(req.execId))
      throw alreadyExists(`exec ${req.execId} in container ${req.id}: already exists`);
    if (c.init.status !== "running" && c.init.status !== "paused") {
      throw failedPrecondition(`cannot exec in container ${req.id}: it is ${c.init.status}`);
    }
    const processJson = req.spec?.value;
    if (!processJson || processJson.length === 0)
      throw invalidArgument(`exec ${req.execId}: no process spec`);
    try {
      const parsed: unknown = JSON.parse(Buffer.from(processJson).toString());
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
        throw new Error("not an object");
    } catch (err) {
      throw invalidArgument(`exec ${req.execId}: process spec is not a JSON object: ${errorMessage(err)}`);
    }
    const stdio = { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr };
    const p = new ProcessRecord(req.id, req.execId, req.terminal, stdio);
    // Reserve the id before the first await so a concurrent Exec of the same id gets AlreadyExists.
    c.execs.set(req.execId, p);
    const log = this.deps.log.with({ id: req.id, exec: req.execId });
    const cleanup = new CleanupStack();
    cleanup.push("forget exec", () => {
      c.execs.delete(req.execId);
    });
    try {
      const io = await this.deps.attachStdio({
        containerId: req.id,
        execId: req.execId,
        namespace: this.deps.namespace,
        terminal: req.terminal,
        paths: stdio,
        listenVsock: () => c.sandbox.listenVsock(),
        log,
      });
      cleanup.push("close stdio", () => io.close());
      try {
        await this.guestCall(c, (task) =>
          task.exec({ id: req.id, execId: req.execId, processJson, stdio: io.guest }, this.guestOpts()),
        );
      } catch (err) {
        throw wrapError(err, `exec ${req.execId} in container ${req.id}`);
      }
      c.io.set(req.execId, io);
      cleanup.release();
      this.deps.publisher.publish("/tasks/exec-added", { containerId: req.id, execId: req.execId });
      return {};
    } catch (err) {
      await cleanup.unwind(log);
      throw err;
    }
  }

  async kill(req: KillRequest): Promise<Empty> {
    const { c, p } = this.process(req.id, req.execId);
    if (p.status === "stopped" || p.status === "deleted")
      throw notFound(`${p.label}: process already finished`);
    try {
      await this.guestCall(c, (task) =>
        task.kill({ id: req.id, execId: req.execId, signal: req.signal, all: req.all }, this.guestOpts()),
      );
    } catch (err) {
      throw wrapError(err, `signalling ${p.label}`);
    }
    return {};
  }

  async wait(req: WaitRequest): Promise<MessageInitShape<typeof WaitResponseSchema>> {
    const { p } = this.process(req.id, req.execId);
    const exit = await p.exited;
    return { exitStatus: exit.status, exitedAt: timestampFromDate(exit.at) };
  }

  async state(req: StateRequest): Promise<MessageInitShape<typeof StateResponseSchema>> {
    const { c, p } = this.process(req.id, req.execId);
    return {
      id: req.id,
      execId: req.execId,
      bundle: c.bundle,
      pid: p.pid,
      status: STATUS_ENUM[p.status],
      stdin: p.stdio.stdin,
      stdout: p.stdio.stdout,
      stderr: p.stdio.stderr,
      terminal: p.terminal,
      exitStatus: p.exit?.status ?? 0,
      ...(p.exit ? { exitedAt: timestampFromDate(p.exit.at) } : {}),
    };
  }

  async pids(req: PidsRequest): Promise<MessageInitShape<typeof PidsResponseSchema>> {
    const c = this.container(req.id);
    try {
      const res = await this.guestCall(c, (task) => task.pids({ id: req.id }, this.guestOpts()));
      return { processes: res.processes.map((e) => ({ pid: e.pid })) };
    } catch (err) {
      throw wrapError(err, `listing processes of container ${req.id}`);
    }
  }

  async pause(req: PauseRequest): Promise<Empty> {
    const c = this.container(req.id);
    c.init.require("paused", "pause");
    try {
      await this.guestCall(c, (task) => task.pause({ id: req.id }, this.guestOpts()));
    } catch (err) {
      throw wrapError(err, `pausing container ${req.id}`);
    }
    if (c.init.can("paused")) c.init.transition("paused", "pause");
    this.deps.publisher.publish("/tasks/paused", { containerId: req.id });
    return {};
  }

  async resume(req: ResumeRequest): Promise<Empty> {
    const c = this.container(req.id);
    if (c.init.status !== "paused")
      throw failedPrecondition(`cannot resume container ${req.id}: it is ${c.init.status}`);
    try {
      await this.guestCall(c, (task) => task.resume({ id: req.id }, this.guestOpts()));
    } catch (err) {
      throw wrapError(err, `resuming container ${req.id}`);
    }
    if (c.init.status === "paused") c.init.transition("running", "resume");
    this.deps.publisher.publish("/tasks/resumed", { containerId: req.id });
    return {};
  }

  async checkpoint(req: CheckpointTaskRequest): Promise<Empty> {
    this.container(req.id);
    throw unimplemented(
      "checkpoint is not supported by the beetroot runtime: the container's state lives inside its micro-VM",
    );
  }

  async resizePty(req: ResizePtyRequest): Promise<Empty> {
    const { c, p } = this.process(req.id, req.execId);
    if (!p.terminal) throw failedPrecondition(`${p.label} has no terminal to resize`);
    if (p.status === "stopped" || p.status === "deleted")
      throw notFound(`${p.label}: process already finished`);
    try {
      await this.guestCall(c, (task) =>
        task.resizePty(
          { id: req.id, execId: req.execId, width: req.width, height: req.height },
          this.guestOpts(),
        ),
      );
    } catch (err) {
      throw wrapError(err, `resizing the terminal of ${p.label}`);
    }
    return {};
  }

  async closeIO(req: CloseIORequest): Promise<Empty> {
    const { c, p } = this.process(req.id, req.execId);
    // Only stdin can be closed; containerd always sets the flag. EOF travels behind the data already
    // written to the FIFO, so the guest never cuts stdin short.
    if (req.stdin) c.io.get(p.execId)?.closeStdin();
    return {};
  }

  async update(req: UpdateTaskRequest): Promise<Empty> {
    const c = this.container(req.id);
    const resourcesJson = req.resources?.value ?? new Uint8Array();
    if (resourcesJson.length > 0) {
      try {
        JSON.parse(Buffer.from(resourcesJson).toString());
      } catch (err) {
        throw invalidArgument(`update of ${req.id}: resources are not JSON: ${errorMessage(err)}`);
      }
    }
    try {
      await this.guestCall(c, (task) =>
        task.update({ id: req.id, resourcesJson, annotations: req.annotations }, this.guestOpts()),
      );
    } catch (err) {
      throw wrapError(err, `updating container ${req.id}`);
    }
    return {};
  }

  async stats(req: StatsRequest): Promise<MessageInitShape<typeof StatsResponseSchema>> {
    const c = this.container(req.id);
    try {
      const res = await this.guestCall(c, (task) => task.stats({ id: req.id }, this.guestOpts()));
      return { stats: create(AnySchema, { typeUrl: CGROUPS_V2_METRICS_TYPE, value: res.cgroup2Metrics }) };
    } catch (err) {
      throw wrapError(err, `reading metrics of container ${req.id}`);
    }
  }

  async connect(req: ConnectRequest): Promise<MessageInitShape<typeof ConnectResponseSchema>> {
    const c = this.containers.get(req.id);
    return { shimPid: this.deps.shimPid, taskPid: c?.init.pid ?? 0, version: this.deps.version };
  }

  async shutdown(req: ShutdownRequest): Promise<Empty> {
    // containerd calls Shutdown after every Delete; the shim only goes once nothing is left.
    if (this.containerCount > 0 && !req.now) return {};
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      this.deps.log.info("shutdown requested", { now: req.now });
      // After the reply has been written: the caller must see success, not a dropped connection.
      setImmediate(() => this.deps.onShutdown());
    }
    return {};
  }

  /** Makes a guest call for `c` that its Delete waits for. */
  private guestCall<T>(c: ContainerRecord, call: (task: GuestClient["task"]) => Promise<T>): Promise<T> {
    const pending = call(c.sandbox.guest.task);
    c.calls.add(pending);
    const settle = () => c.calls.delete(pending);
    pending.then(settle, settle);
    return pending;
  }

  // ---- exits ---------------------------------------------------------------------------------

  /** Follows one process until it exits, then reports the exit once its output has drained. */
  private watchExit(c: ContainerRecord, p: ProcessRecord): void {
    void (async () => {
      let exit: ExitInfo;
      try {
        const res = await c.sandbox.guest.task.wait({ id: c.id, execId: p.execId });
        exit = { status: res.exitStatus, at: res.exitedAt ? timestampDate(res.exitedAt) : new Date() };
      } catch (err) {
        if (p.exit) return; // already reported (VM loss)
        this.deps.log.warn("waiting for a process failed: reporting it as killed", {
          id: c.id,
          exec: p.execId,
          error: errorMessage(err),
        });
        exit = { status: VM_LOST_EXIT_STATUS, at: new Date() };
      }
      await this.reportExit(c, p, exit);
    })();
  }

  private async reportExit(c: ContainerRecord, p: ProcessRecord, exit: ExitInfo): Promise<void> {
    if (p.status === "deleted") return;
    if (p.starting) await p.starting.catch(() => {});
    const io = c.io.get(p.execId);
    if (io) await this.drain(io, p);
    if (p.isInit) {
      // Exec exits first: containerd and CRI assume an exec never outlives its container's exit event.
      const execs = [...c.execs.values()].filter((e) => e.status === "running" || e.status === "paused");
      await Promise.race([
        Promise.all(execs.map((e) => e.exited)),
        new Promise((r) => setTimeout(r, EXEC_EXITS_FIRST_MS).unref()),
      ]);
    }
    // Re-read: the process may have been deleted (VM stop after Delete) while we waited.
    if ((p.status as ProcessStatus) === "deleted" || !p.markExited(exit)) return;
    this.deps.publisher.publish("/tasks/exit", {
      containerId: c.id,
      id: p.isInit ? c.id : p.execId,
      pid: p.pid,
      exitStatus: exit.status,
      exitedAt: timestampFromDate(exit.at),
    });
    p.notifyExited();
    this.deps.log.info("process exited", { id: c.id, exec: p.execId, status: exit.status });
  }

  /**
   * Waits for the process' output to reach EOF. The bound is on inactivity, not on total time: output
   * still flowing after the exit (a big write under a slow TCG guest) keeps the wait going, a stream
   * that stays silent for `drainTimeoutMs` does not hold the exit back any longer.
   */
  private async drain(io: StdioAttachment, p: ProcessRecord): Promise<boolean> {
    const idleLimit = this.deps.drainTimeoutMs ?? DEFAULT_DRAIN_IDLE_MS;
    let done = false;
    void io.drained.then(() => {
      done = true;
    });
    let seen = io.bytesReceived();
    let idleSince = Date.now();
    while (!done) {
      await Promise.race([io.drained, new Promise((r) => setTimeout(r, Math.min(100, idleLimit)).unref())]);
      if (done) break;
      const now = io.bytesReceived();
      if (now !== seen) {
        seen = now;
        idleSince = Date.now();
      } else if (Date.now() - idleSince >= idleLimit) {
        this.deps.log.warn("output streams still open after the exit and silent; reporting the exit", {
          process: p.label,
          idle_ms: idleLimit,
        });
        return false;
      }
    }
    return true;
  }

  private onVmLost(podId: string, members: readonly string[]): void {
    const at = new Date();
    for (const id of members) {
      const c = this.containers.get(id);
      if (!c) continue;
      c.vmLost = true;
      this.deps.log.error("VM lost: reporting its processes as killed", { id, pod: podId });
      for (const p of [...c.execs.values(), c.init]) {
        if (p.exit || p.status === "deleted") continue;
        void this.reportExit(c, p, { status: VM_LOST_EXIT_STATUS, at });
      }
    }
  }

  // ---- v3 only -------------------------------------------------------------------------------

  /** containerd.task.v3.Task/Events: only used when a shim advertises event streaming; we publish instead. */
  events(): never {
    throw unimplemented("event streaming is not offered: beetroot publishes events to containerd");
  }
}

function isGone(err: unknown): boolean {
  return err instanceof TtrpcError && (err.code === Code.NotFound || err.code === Code.Unavailable);
}
