/**
 * beetroot.guest.v1.Task: containers in the guest, run by crun.
 *
 * A container lives in /run/beetroot/containers/<id>: its rootfs (assembled from the host's disks
 * and mount templates), config.json (the host's spec made true in the VM), crun's log, pid files.
 * Process lifecycle: created → running → stopped (→ deleted). Exits come from the guest's reaper
 * (crun's children are reparented to PID 1); a process counts as stopped once its output reached
 * the host (bounded), so Wait and the exit event never overtake the process's last bytes. When a
 * container's init exits, its remaining execs are killed.
 */
import {
  type Dirent,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ProcessStatus,
  type StateResponseSchema,
  type Task,
  TaskEventSchema,
} from "../../../api/gen/beetroot/guest/v1/task_pb.ts";
import type { ServiceImpl } from "../../../internal/ttrpc/index.ts";
import { errorMessage, type Logger } from "../log.ts";
import { GUEST_PATHS } from "../paths.ts";
import type { ProcessExit } from "../reaper.ts";
import type { ProgramRunner } from "../runner.ts";
import { flatKeyed } from "./cgroup-text.ts";
import { Crun, CrunError } from "./crun.ts";
import { alreadyExists, failedPrecondition, internal, invalidArgument, notFound } from "./errors.ts";
import type { EventHub } from "./events.ts";
import { type Dial, ProcessIo, type StdioPorts } from "./io.ts";
import { encodeMetrics, readMetrics } from "./metrics.ts";
import {
  mountRootfs,
  planRootfs,
  RootfsError,
  type RootfsMountInput,
  type RootfsOps,
  unmountAll,
} from "./rootfs.ts";
import { parseJsonObject, prepareProcess, prepareSpec, sysctlPath } from "./spec.ts";
import { usesVolumeShare, VOLUME_SHARE_TAG } from "./volumes.ts";

export const CONTAINERS_DIR = "/run/beetroot/containers";
const CGROUP_ROOT = "/sys/fs/cgroup";
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** How long a stopped process's output may keep flowing (children that inherited its stdout). */
const DRAIN_GRACE_MS = 2_000;
const CONSOLE_TIMEOUT_MS = 30_000;
const OOM_POLL_MS = 1_000;
const SIGKILL = 9;

export interface ConsoleSocketLike {
  readonly path: string;
  receive(timeoutMs: number, gaveUp: () => boolean): Promise<number>;
  close(): void;
}

export interface TaskPlatform {
  readonly runner: ProgramRunner;
  readonly rootfsOps: RootfsOps;
  readonly dial: Dial;
  waitFor(pid: number, sinceMs: number): Promise<ProcessExit>;
  /** kill(2); false when the process is gone. */
  kill(pid: number, signal: number): boolean;
  exists(path: string): boolean;
  /** Mounts the host's volume share if it is not yet (volumes.ts); throws why it cannot. */
  ensureVolumeShare(): void;
  /** Writes a /proc/sys file (a pod-wide `net.*` sysctl, spec.ts). */
  writeSysctl(path: string, value: string): void;
  listenConsole(path: string): ConsoleSocketLike;
  readonly log: Logger;
  readonly hub: EventHub;
}

type Status = "created" | "running" | "stopped";

interface ExitInfo {
  readonly status: number;
  readonly at: Date;
}

class ProcessRecord {
  status: Status = "created";
  pid = 0;
  exit: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;
  resolveExited!: (e: ExitInfo) => void;

  constructor(
    readonly execId: string,
    readonly io: ProcessIo,
    /** exec: the prepared OCI process file. */
    readonly processFile?: string,
  ) {
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
  }

  get label(): string {
    return this.execId === "" ? "init" : `exec ${this.execId}`;
  }
}

interface ContainerRecord {
  readonly id: string;
  readonly dir: string;
  readonly crun: Crun;
  readonly cgroupDir: string;
  readonly mounted: string[];
  readonly init: ProcessRecord;
  readonly execs: Map<string, ProcessRecord>;
  paused: boolean;
  deleted: boolean;
  oomKills: bigint;
  oomTimer?: ReturnType<typeof setInterval>;
}

function checkId(what: string, id: string): void {
  if (!ID_RE.test(id)) throw invalidArgument(`${what} ${JSON.stringify(id)} must match ${ID_RE}`);
}

function portsOf(
  stdio: { stdinPort: number; stdoutPort: number; stderrPort: number; terminal: boolean } | undefined,
): StdioPorts {
  return stdio ?? { stdinPort: 0, stdoutPort: 0, stderrPort: 0, terminal: false };
}

function readPid(file: string): number {
  const text = readFileSync(file, "utf8").trim();
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 1) throw internal(`pid file ${file} holds ${JSON.stringify(text)}`);
  return pid;
}

function crunFailure(err: unknown): Error {
  if (err instanceof CrunError) return internal(err.message);
  return err instanceof Error ? err : new Error(String(err));
}

export class TaskService {
  private readonly containers = new Map<string, ContainerRecord>();
  private readonly busy = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly p: TaskPlatform) {
    this.log = p.log.with({ svc: "task" });
    mkdirSync(CONTAINERS_DIR, { recursive: true });
  }

  private container(id: string): ContainerRecord {
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

  /** Runs crun create/exec, receiving the pty master meanwhile when the process has a terminal. */
  private async launch(
    io: ProcessIo,
    consolePath: string,
    run: (consoleSocket: string | undefined, onSpawn: () => void) => Promise<unknown>,
  ): Promise<void> {
    if (!io.terminal) {
      try {
        await run(undefined, () => io.afterSpawn());
      } finally {
        io.afterSpawn();
      }
      return;
    }
    const console = this.p.listenConsole(consolePath);
    try {
      let done = false;
      const crun = run(console.path, () => {}).finally(() => {
        done = true;
      });
      const master = console.receive(CONSOLE_TIMEOUT_MS, () => done);
      const [c, m] = await Promise.allSettled([crun, master]);
      if (c.status === "rejected") {
        if (m.status === "fulfilled") io.attachConsole(m.value); // so close() releases it
        throw c.reason;
      }
      if (m.status === "rejected") throw m.reason;
      io.attachConsole(m.value);
    } finally {
      console.close();
    }
  }

  /** Follows a started process to its exit: status, output drain, events, and the init's consequences. */
  private watchExit(c: ContainerRecord, p: ProcessRecord, sinceMs: number): void {
    void (async () => {
      const exit = await this.p.waitFor(p.pid, sinceMs);
      const drained = await Promise.race([
        p.io.drained.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), DRAIN_GRACE_MS)),
      ]);
      if (!drained) {
        this.log.warn("output still open after exit, closing it", { id: c.id, exec: p.execId, pid: p.pid });
        await p.io.close();
      }
      if (p.execId === "") this.checkOom(c);
      p.exit = { status: exit.exitCode, at: exit.exitedAt };
      p.status = "stopped";
      p.resolveExited(p.exit);
      this.log.info("process exited", { id: c.id, exec: p.execId, pid: p.pid, status: exit.exitCode });
      this.p.hub.publish(
        create(TaskEventSchema, {
          event: {
            case: "exit",
            value: {
              id: c.id,
              execId: p.execId,
              pid: p.pid,
              exitStatus: exit.exitCode,
              exitedAt: timestampFromDate(exit.exitedAt),
            },
          },
        }),
      );
      if (p.execId === "") {
        if (c.oomTimer) clearInterval(c.oomTimer);
        for (const e of c.execs.values()) if (e.status === "running") this.p.kill(e.pid, SIGKILL);
      }
    })().catch((err: unknown) =>
      this.log.error("exit handling failed", { id: c.id, error: errorMessage(err) }),
    );
  }

  private checkOom(c: ContainerRecord): void {
    let kills: bigint;
    try {
      kills = flatKeyed(readFileSync(join(c.cgroupDir, "memory.events"), "utf8")).get("oom_kill") ?? 0n;
    } catch {
      return; // cgroup gone or memory controller off
    }
    if (kills > c.oomKills) {
      c.oomKills = kills;
      this.log.warn("container OOM kill", { id: c.id, oom_kills: String(kills) });
      this.p.hub.publish(create(TaskEventSchema, { event: { case: "oom", value: { id: c.id } } }));
    }
  }

  private async removeContainer(c: ContainerRecord): Promise<void> {
    c.deleted = true;
    if (c.oomTimer) clearInterval(c.oomTimer);
    for (const e of c.execs.values()) await e.io.close();
    await c.init.io.close();
    const busy = unmountAll(c.mounted, this.p.rootfsOps);
    if (busy.length) this.log.warn("rootfs mounts left behind", { id: c.id, targets: busy.join(",") });
    else rmSync(c.dir, { recursive: true, force: true });
    this.containers.delete(c.id);
  }

  impl(): ServiceImpl<typeof Task> {
    return {
      create: async (req) => {
        checkId("container id", req.id);
        if (this.containers.has(req.id) || this.busy.has(req.id))
          throw alreadyExists(`container ${req.id}: already exists`);
        this.busy.add(req.id);
        const dir = join(CONTAINERS_DIR, req.id);
        const log = this.log.with({ id: req.id });
        const undo: (() => Promise<void> | void)[] = [];
        try {
          if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          undo.push(() => rmSync(dir, { recursive: true, force: true }));
          const ports = portsOf(req.stdio);
          let mounts: RootfsMountInput[] = req.rootfs.map((m) => ({ ...m, options: [...m.options] }));
          if (req.scratchBytes > 0n) {
            mounts = mounts.map((m) =>
              m.type === "tmpfs" && !m.options.some((o) => o.startsWith("size="))
                ? { ...m, options: [...m.options, `size=${req.scratchBytes}`] }
                : m,
            );
          }
          let plan: ReturnType<typeof planRootfs>;
          try {
            plan = planRootfs(mounts, dir);
          } catch (err) {
            if (err instanceof RootfsError) throw invalidArgument(err.message);
            throw err;
          }
          if (usesVolumeShare(req.specJson)) {
            try {
              this.p.ensureVolumeShare();
            } catch (err) {
              throw failedPrecondition(
                `the volume share (virtio-fs tag ${VOLUME_SHARE_TAG}) cannot be mounted: ${errorMessage(err)}`,
              );
            }
          }
          const prepared = prepareSpec(req.specJson, {
            id: req.id,
            rootfs: plan.rootfs,
            terminal: ports.terminal,
            exists: this.p.exists,
            ...(this.p.exists(GUEST_PATHS.podResolvConf) ? { podResolvConf: GUEST_PATHS.podResolvConf } : {}),
          });
          for (const note of prepared.notes) log.info("spec adjusted for the VM", { note });
          for (const [key, value] of Object.entries(prepared.vmSysctls)) {
            try {
              this.p.writeSysctl(sysctlPath(key), value);
            } catch (err) {
              throw failedPrecondition(
                `setting sysctl ${key}=${value} in the pod's network namespace: ${errorMessage(err)}`,
              );
            }
          }
          let mounted: string[];
          try {
            mounted = mountRootfs(plan, this.p.rootfsOps);
          } catch (err) {
            throw failedPrecondition(`assembling the rootfs of ${req.id}: ${errorMessage(err)}`);
          }
          undo.push(() => {
            unmountAll(mounted, this.p.rootfsOps);
          });
          writeFileSync(join(dir, "config.json"), JSON.stringify(prepared.spec));
          const io = await ProcessIo.open(ports, this.p.dial, log).catch((err: unknown) => {
            throw failedPrecondition(`dialling the host for stdio: ${errorMessage(err)}`);
          });
          undo.push(() => io.close());
          const crun = new Crun(this.p.runner, join(dir, "crun.log"));
          const pidFile = join(dir, "init.pid");
          const since = Date.now();
          await this.launch(io, join(dir, "console.sock"), (consoleSocket, onSpawn) =>
            crun.create(req.id, dir, pidFile, consoleSocket, { stdio: io.childStdio, onSpawn }),
          ).catch((err: unknown) => {
            throw crunFailure(err);
          });
          const init = new ProcessRecord("", io);
          init.pid = readPid(pidFile);
          const c: ContainerRecord = {
            id: req.id,
            dir,
            crun,
            cgroupDir: join(CGROUP_ROOT, prepared.cgroupsPath),
            mounted,
            init,
            execs: new Map(),
            paused: false,
            deleted: false,
            oomKills: 0n,
          };
          this.containers.set(req.id, c);
          // A created init can be killed before Start; its exit must be seen either way.
          this.watchExit(c, init, since);
          log.info("container created", { pid: init.pid });
          return { pid: init.pid };
        } catch (err) {
          for (const step of undo.reverse()) {
            try {
              await step();
            } catch (e) {
              log.warn("create cleanup step failed", { error: errorMessage(e) });
            }
          }
          throw err;
        } finally {
          this.busy.delete(req.id);
        }
      },

      start: async (req) => {
        const { c, p } = this.process(req.id, req.execId);
        if (p.status !== "created")
          throw failedPrecondition(`cannot start ${p.label} of ${c.id}: it is ${p.status}`);
        if (p.execId === "") {
          await c.crun.start(c.id).catch((err: unknown) => {
            throw crunFailure(err);
          });
          // A short-lived init (`true`) can exit, and its watcher mark it stopped, before crun start
          // returns: only a process still in "created" becomes running.
          if (p.status === "created") {
            p.status = "running";
            c.oomTimer = setInterval(() => this.checkOom(c), OOM_POLL_MS);
          }
          return { pid: p.pid };
        }
        if (c.init.status !== "running") throw failedPrecondition(`container ${c.id} is not running`);
        const pidFile = join(c.dir, `exec-${p.execId}.pid`);
        const since = Date.now();
        p.status = "running"; // claimed: a second Start is refused while this one runs
        try {
          await this.launch(p.io, join(c.dir, `exec-${p.execId}.sock`), (consoleSocket, onSpawn) =>
            c.crun.exec(c.id, p.processFile ?? "", pidFile, consoleSocket, {
              stdio: p.io.childStdio,
              onSpawn,
            }),
          );
          p.pid = readPid(pidFile);
        } catch (err) {
          p.status = "created";
          throw crunFailure(err);
        }
        this.watchExit(c, p, since);
        return { pid: p.pid };
      },

      exec: async (req) => {
        checkId("exec id", req.execId);
        const c = this.container(req.id);
        if (c.execs.has(req.execId))
          throw alreadyExists(`exec ${req.execId} in container ${req.id}: already exists`);
        if (c.init.status !== "running")
          throw failedPrecondition(`container ${req.id} is ${c.init.status}, not running`);
        const ports = portsOf(req.stdio);
        const notes: string[] = [];
        const proc = prepareProcess(
          parseJsonObject(req.processJson, "process"),
          ports.terminal,
          "process",
          notes,
        );
        for (const note of notes)
          this.log.info("exec process adjusted for the VM", { id: req.id, exec: req.execId, note });
        const file = join(c.dir, `exec-${req.execId}.json`);
        writeFileSync(file, JSON.stringify(proc));
        const io = await ProcessIo.open(ports, this.p.dial, this.log).catch((err: unknown) => {
          throw failedPrecondition(`dialling the host for stdio: ${errorMessage(err)}`);
        });
        c.execs.set(req.execId, new ProcessRecord(req.execId, io, file));
        return {};
      },

      kill: async (req) => {
        const { c, p } = this.process(req.id, req.execId);
        if (p.status === "stopped") throw notFound(`${p.label} of ${c.id}: process already finished`);
        if (p.execId === "") {
          await c.crun.kill(c.id, req.signal, req.all).catch((err: unknown) => {
            throw crunFailure(err);
          });
          return {};
        }
        if (p.status === "created") throw failedPrecondition(`${p.label} of ${c.id} has not started`);
        if (!this.p.kill(p.pid, req.signal))
          throw notFound(`${p.label} of ${c.id}: process already finished`);
        return {};
      },

      delete: async (req) => {
        const { c, p } = this.process(req.id, req.execId);
        if (p.status === "running")
          throw failedPrecondition(`cannot delete ${p.label} of ${c.id}: it is running`);
        if (p.execId !== "") {
          await p.io.close();
          c.execs.delete(p.execId);
          const exit = p.exit ?? { status: 0, at: new Date(0) };
          return { pid: p.pid, exitStatus: exit.status, exitedAt: timestampFromDate(exit.at) };
        }
        await c.crun.delete(c.id, p.status === "created").catch((err: unknown) => {
          throw crunFailure(err);
        });
        // A never-started init was just killed by the forced delete: report its real status.
        const exit =
          p.exit ??
          (await Promise.race([
            p.exited,
            new Promise<ExitInfo>((r) => setTimeout(() => r({ status: 137, at: new Date() }), 2000)),
          ]));
        await this.removeContainer(c);
        this.log.info("container deleted", { id: c.id, exit_status: exit.status });
        return { pid: p.pid, exitStatus: exit.status, exitedAt: timestampFromDate(exit.at) };
      },

      state: async (req) => {
        const { c, p } = this.process(req.id, req.execId);
        let status: ProcessStatus = ProcessStatus.UNKNOWN;
        if (p.status === "created") status = ProcessStatus.CREATED;
        else if (p.status === "stopped") status = ProcessStatus.STOPPED;
        else status = c.paused ? ProcessStatus.PAUSED : ProcessStatus.RUNNING;
        const res: MessageInitShape<typeof StateResponseSchema> = {
          id: c.id,
          execId: p.execId,
          pid: p.pid,
          status,
          terminal: p.io.terminal,
          exitStatus: p.exit?.status ?? 0,
        };
        if (p.exit) res.exitedAt = timestampFromDate(p.exit.at);
        return res;
      },

      wait: async (req) => {
        const { p } = this.process(req.id, req.execId);
        const exit = await p.exited;
        return { exitStatus: exit.status, exitedAt: timestampFromDate(exit.at) };
      },

      pids: async (req) => {
        const c = this.container(req.id);
        const byPid = new Map<number, string>();
        for (const e of c.execs.values()) if (e.pid) byPid.set(e.pid, e.execId);
        return { processes: cgroupPids(c.cgroupDir).map((pid) => ({ pid, execId: byPid.get(pid) ?? "" })) };
      },

      resizePty: async (req) => {
        const { c, p } = this.process(req.id, req.execId);
        if (!p.io.terminal) throw failedPrecondition(`${p.label} of ${c.id} has no terminal`);
        // The pty master is closed once the process exited and its output drained.
        if (p.status === "stopped")
          throw failedPrecondition(`${p.label} of ${c.id} has exited: no terminal to resize`);
        p.io.resize(req.width, req.height);
        return {};
      },

      closeIO: async (req) => {
        const { p } = this.process(req.id, req.execId);
        if (req.stdin) p.io.closeStdin();
        return {};
      },

      pause: async (req) => {
        const c = this.container(req.id);
        if (c.init.status !== "running") throw failedPrecondition(`container ${c.id} is ${c.init.status}`);
        await c.crun.pause(c.id).catch((err: unknown) => {
          throw crunFailure(err);
        });
        c.paused = true;
        return {};
      },

      resume: async (req) => {
        const c = this.container(req.id);
        if (!c.paused) throw failedPrecondition(`container ${c.id} is not paused`);
        await c.crun.resume(c.id).catch((err: unknown) => {
          throw crunFailure(err);
        });
        c.paused = false;
        return {};
      },

      update: async (req) => {
        const c = this.container(req.id);
        const resources = parseJsonObject(req.resourcesJson, "resources");
        const file = join(c.dir, "update-resources.json");
        writeFileSync(file, JSON.stringify(resources));
        await c.crun.update(c.id, file).catch((err: unknown) => {
          throw crunFailure(err);
        });
        return {};
      },

      stats: async (req) => {
        const c = this.container(req.id);
        if (!existsSync(c.cgroupDir))
          throw failedPrecondition(`container ${c.id} has no cgroup (it is ${c.init.status})`);
        const metrics = readMetrics(c.cgroupDir, (path) => {
          try {
            return readFileSync(path, "utf8");
          } catch {
            return undefined;
          }
        });
        return { cgroup2Metrics: encodeMetrics(metrics) };
      },

      events: (_req, ctx) => this.p.hub.subscribe(ctx.signal),
    };
  }

  /** Kills and removes every container (shutdown). */
  async shutdown(): Promise<void> {
    for (const c of [...this.containers.values()]) {
      try {
        await c.crun.delete(c.id, true);
      } catch (err) {
        this.log.warn("force delete failed", { id: c.id, error: errorMessage(err) });
      }
      await this.removeContainer(c);
    }
  }
}

/** Pids in a cgroup and all its descendants. */
function cgroupPids(dir: string): number[] {
  const out: number[] = [];
  const visit = (d: string) => {
    let text = "";
    try {
      text = readFileSync(join(d, "cgroup.procs"), "utf8");
    } catch {
      return;
    }
    for (const line of text.split("\n")) if (/^\d+$/.test(line.trim())) out.push(Number(line.trim()));
    let entries: Dirent[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) visit(join(d, e.name));
  };
  visit(dir);
  return out;
}
