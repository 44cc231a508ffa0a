import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { EmptySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ConfigureNetworkResponseSchema,
  HealthResponseSchema,
  InfoResponseSchema,
  NetworkStatusResponseSchema,
  SelfTestResponseSchema,
} from "../../../api/gen/beetroot/guest/v1/system_pb.ts";
import {
  CreateResponseSchema,
  DeleteResponseSchema,
  PidsResponseSchema,
  StartResponseSchema,
  StateResponseSchema,
  StatsResponseSchema,
  type TaskEvent,
  TaskEventSchema,
  WaitResponseSchema,
} from "../../../api/gen/beetroot/guest/v1/task_pb.ts";
import { Code } from "../../ttrpc/codes.ts";
import { TtrpcError } from "../../ttrpc/errors.ts";
import type { GuestClient } from "../guest-client.ts";
import type { Vm, Vmm, VmRequest, VsockListener } from "../vmm.ts";

/**
 * A stand-in for QEMU + vminitd at the Vmm/GuestClient seam, for unit tests of everything above it.
 * It "runs" processes from a tiny script language in the spec's args:
 *   ["echo", ...words]  → prints the words, exits 0
 *   ["exit", "N"]       → exits N
 *   ["cat"]             → copies stdin to stdout until EOF, exits 0
 *   ["sleep"]           → runs until signalled, exits 128+signal
 * Stdio dials back to the host's vsock listeners over real unix sockets, like vminitd does.
 */
interface FakeProc {
  execId: string;
  args: string[];
  stdio: { stdinPort: number; stdoutPort: number; stderrPort: number; terminal: boolean };
  status: "created" | "running" | "stopped";
  pid: number;
  exit?: { status: number; at: Date };
  waiters: Array<() => void>;
  out?: Socket;
  err?: Socket;
  input?: Socket;
  signal?: (sig: number) => void;
}

interface FakeContainer {
  id: string;
  procs: Map<string, FakeProc>;
  paused: boolean;
}

export class FakeVm implements Vm {
  readonly pid: number;
  readonly calls: string[] = [];
  readonly containers = new Map<string, FakeContainer>();
  private readonly listeners = new Map<number, Server>();
  private nextPid = 100;
  private resolveExited!: () => void;
  readonly exited: Promise<void>;
  stopped = false;
  /** Make the next guest call of this method fail with this error. */
  failNext = new Map<string, TtrpcError>();
  /** Make the next guest call of this method answer only once this promise settles (after its effect). */
  holdNext = new Map<string, Promise<void>>();

  constructor(
    readonly request: VmRequest,
    private readonly dir: string,
    pid: number,
  ) {
    this.pid = pid;
    this.exited = new Promise((r) => {
      this.resolveExited = r;
    });
  }

  private check(method: string): void {
    this.calls.push(method);
    if (this.stopped) throw new TtrpcError(Code.Unavailable, "VM is gone");
    const e = this.failNext.get(method);
    if (e) {
      this.failNext.delete(method);
      throw e;
    }
  }

  private async held(method: string): Promise<void> {
    const hold = this.holdNext.get(method);
    this.holdNext.delete(method);
    await hold;
    if (this.stopped) throw new TtrpcError(Code.Unavailable, "VM is gone");
  }

  private proc(id: string, execId: string): FakeProc {
    const c = this.containers.get(id);
    const p = c?.procs.get(execId);
    if (!p) throw new TtrpcError(Code.NotFound, `guest: ${id}/${execId} not found`);
    return p;
  }

  private dial(port: number): Promise<Socket | undefined> {
    if (port === 0) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const s = connect(join(this.dir, `vsock_${port}`));
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
  }

  private finish(p: FakeProc, status: number): void {
    if (p.exit) return;
    p.status = "stopped";
    p.exit = { status, at: new Date() };
    // Like vminitd: output streams close after the exit, then waiters learn about it.
    p.input?.destroy();
    const ends = [p.out, p.err].filter((s): s is Socket => s !== undefined);
    let left = ends.length;
    const done = () => {
      for (const w of p.waiters.splice(0)) w();
    };
    if (left === 0) done();
    for (const s of ends) {
      s.end(() => {
        if (--left === 0) done();
      });
    }
  }

  private run(p: FakeProc): void {
    const [cmd, ...rest] = p.args;
    switch (cmd) {
      case "echo":
        p.out?.write(`${rest.join(" ")}\n`);
        setImmediate(() => this.finish(p, 0));
        break;
      case "exit":
        setImmediate(() => this.finish(p, Number(rest[0] ?? 0)));
        break;
      case "cat":
        if (!p.input || !p.out) {
          setImmediate(() => this.finish(p, 0));
          break;
        }
        p.input.on("data", (d) => p.out?.write(d));
        p.input.on("end", () => this.finish(p, 0));
        break;
      default:
        p.signal = (sig) => this.finish(p, 128 + sig);
    }
  }

  readonly guest: GuestClient = {
    task: {
      create: async (req) => {
        this.check("create");
        const spec = JSON.parse(Buffer.from(req.specJson ?? new Uint8Array()).toString()) as {
          process?: { args?: string[] };
        };
        const stdio = { stdinPort: 0, stdoutPort: 0, stderrPort: 0, terminal: false, ...req.stdio };
        const init: FakeProc = {
          execId: "",
          args: spec.process?.args ?? [],
          stdio,
          status: "created",
          pid: this.nextPid++,
          waiters: [],
        };
        this.containers.set(req.id!, { id: req.id!, procs: new Map([["", init]]), paused: false });
        [init.input, init.out, init.err] = await Promise.all([
          this.dial(stdio.stdinPort),
          this.dial(stdio.stdoutPort),
          this.dial(stdio.stderrPort),
        ]);
        init.signal = (sig) => this.finish(init, 128 + sig);
        return create(CreateResponseSchema, { pid: init.pid });
      },
      start: async (req) => {
        this.check("start");
        const p = this.proc(req.id!, req.execId ?? "");
        if (p.status !== "created") throw new TtrpcError(Code.FailedPrecondition, "guest: not created");
        p.status = "running";
        this.run(p);
        return create(StartResponseSchema, { pid: p.pid });
      },
      exec: async (req) => {
        this.check("exec");
        const c = this.containers.get(req.id!);
        if (!c) throw new TtrpcError(Code.NotFound, "guest: no container");
        const proc = JSON.parse(Buffer.from(req.processJson ?? new Uint8Array()).toString()) as {
          args?: string[];
        };
        const stdio = { stdinPort: 0, stdoutPort: 0, stderrPort: 0, terminal: false, ...req.stdio };
        const p: FakeProc = {
          execId: req.execId!,
          args: proc.args ?? [],
          stdio,
          status: "created",
          pid: this.nextPid++,
          waiters: [],
        };
        c.procs.set(req.execId!, p);
        [p.input, p.out, p.err] = await Promise.all([
          this.dial(stdio.stdinPort),
          this.dial(stdio.stdoutPort),
          this.dial(stdio.stderrPort),
        ]);
        return create(EmptySchema);
      },
      kill: async (req) => {
        this.check("kill");
        const p = this.proc(req.id!, req.execId ?? "");
        p.signal?.(req.signal ?? 15);
        await this.held("kill");
        return create(EmptySchema);
      },
      delete: async (req) => {
        this.check("delete");
        const p = this.proc(req.id!, req.execId ?? "");
        const c = this.containers.get(req.id!)!;
        if (p.status === "running") throw new TtrpcError(Code.FailedPrecondition, "guest: running");
        if (p.status === "created") this.finish(p, 137);
        if (req.execId) c.procs.delete(req.execId);
        else this.containers.delete(req.id!);
        return create(DeleteResponseSchema, { pid: p.pid, exitStatus: p.exit?.status ?? 0 });
      },
      state: async (req) => {
        this.check("state");
        const p = this.proc(req.id!, req.execId ?? "");
        return create(StateResponseSchema, { id: req.id!, pid: p.pid });
      },
      wait: async (req) => {
        this.check("wait");
        const p = this.proc(req.id!, req.execId ?? "");
        if (!p.exit || p.waiters.length > 0) await new Promise<void>((r) => p.waiters.push(r));
        if (this.stopped && !p.exit) throw new TtrpcError(Code.Unavailable, "VM is gone");
        return create(WaitResponseSchema, {
          exitStatus: p.exit!.status,
          exitedAt: timestampFromDate(p.exit!.at),
        });
      },
      pids: async (req) => {
        this.check("pids");
        const c = this.containers.get(req.id!);
        if (!c) throw new TtrpcError(Code.NotFound, "guest: no container");
        const processes = [...c.procs.values()]
          .filter((p) => p.status === "running")
          .map((p) => ({ pid: p.pid, execId: p.execId }));
        return create(PidsResponseSchema, { processes });
      },
      resizePty: async () => {
        this.check("resizePty");
        return create(EmptySchema);
      },
      closeIO: async () => {
        this.check("closeIO");
        return create(EmptySchema);
      },
      pause: async (req) => {
        this.check("pause");
        this.containers.get(req.id!)!.paused = true;
        return create(EmptySchema);
      },
      resume: async (req) => {
        this.check("resume");
        this.containers.get(req.id!)!.paused = false;
        return create(EmptySchema);
      },
      update: async () => {
        this.check("update");
        return create(EmptySchema);
      },
      stats: async () => {
        this.check("stats");
        return create(StatsResponseSchema, { cgroup2Metrics: new Uint8Array([0x0a, 0x02, 0x08, 0x05]) });
      },
      events: (_req) => this.eventStream(),
    },
    system: {
      info: async () => create(InfoResponseSchema, { vminitdVersion: "fake" }),
      health: async () => create(HealthResponseSchema, { ok: true }),
      shutdown: async () => create(EmptySchema),
      selfTest: async () => create(SelfTestResponseSchema, { ok: true }),
      configureNetwork: async () => create(ConfigureNetworkResponseSchema, {}),
      networkStatus: async () => create(NetworkStatusResponseSchema, {}),
    },
  };

  private readonly pendingEvents: TaskEvent[] = [];
  private wakeEvents: (() => void) | undefined;

  /** Reports an OOM kill on the guest event stream, as vminitd does. */
  emitOom(id: string): void {
    this.pendingEvents.push(create(TaskEventSchema, { event: { case: "oom", value: { id } } }));
    this.wakeEvents?.();
  }

  private async *eventStream(): AsyncGenerator<TaskEvent> {
    while (!this.stopped) {
      const next = this.pendingEvents.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((r) => {
        this.wakeEvents = r;
      });
    }
    throw new TtrpcError(Code.Unavailable, "VM is gone");
  }

  async listenVsock(port: number): Promise<VsockListener> {
    const path = join(this.dir, `vsock_${port}`);
    const server = createServer();
    this.listeners.set(port, server);
    const first = new Promise<Socket>((resolve, reject) => {
      server.once("connection", resolve);
      server.once("close", () => reject(new Error(`listener ${port} closed`)));
    });
    first.catch(() => {});
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return {
      port,
      accept: () => first,
      close: () => {
        server.close();
      },
    };
  }

  /** Simulates QEMU dying: every guest call fails, waits reject. */
  crash(): void {
    this.stopped = true;
    for (const c of this.containers.values())
      for (const p of c.procs.values()) {
        // vhost-device-vsock drops every connection of a dead VM.
        for (const s of [p.input, p.out, p.err]) s?.destroy();
        for (const w of p.waiters.splice(0)) w();
      }
    this.wakeEvents?.();
    this.resolveExited();
  }

  async stop(): Promise<void> {
    this.calls.push("stop");
    this.crash();
  }
}

export class FakeVmm implements Vmm {
  readonly vms: FakeVm[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), "beetroot-fakevm-"));
  failLaunch: Error | undefined;
  private nextPid = 5000;

  async launch(req: VmRequest): Promise<FakeVm> {
    if (this.failLaunch) throw this.failLaunch;
    const vmDir = mkdtempSync(join(this.dir, "vm-"));
    const vm = new FakeVm(req, vmDir, this.nextPid++);
    this.vms.push(vm);
    return vm;
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
