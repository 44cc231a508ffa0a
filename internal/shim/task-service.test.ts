import { execFileSync } from "node:child_process";
import { constants, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointTaskRequestSchema,
  CloseIORequestSchema,
  ConnectRequestSchema,
  CreateTaskRequestSchema,
  DeleteRequestSchema,
  ExecProcessRequestSchema,
  KillRequestSchema,
  PauseRequestSchema,
  PidsRequestSchema,
  ResizePtyRequestSchema,
  ResumeRequestSchema,
  ShutdownRequestSchema,
  StartRequestSchema,
  StateRequestSchema,
  StatsRequestSchema,
  WaitRequestSchema,
} from "../../api/gen/containerd/task/v2/shim_pb.ts";
import { Status } from "../../api/gen/containerd/types/task_pb.ts";
import { createLogger } from "../log/logger.ts";
import type { MountTranslator } from "../storage/types.ts";
import { UnsupportedMountError } from "../storage/types.ts";
import { Code } from "../ttrpc/codes.ts";
import { TtrpcError } from "../ttrpc/errors.ts";
import type { EventInit, Topic } from "./events.ts";
import { VmPodManager } from "./pod.ts";
import { attachStdio } from "./stdio.ts";
import { TaskService } from "./task-service.ts";
import { FakeVmm } from "./testing/fake-vm.ts";

const log = createLogger({ fd: null });

/** Storage is its own seam: these tests only need "no mounts" and "a mount type nobody supports". */
const testStorage: MountTranslator = {
  async translate(req) {
    for (const m of req.mounts) throw new UnsupportedMountError(`unsupported rootfs mount type "${m.type}"`);
    return { disks: [], mounts: [], release: async () => {} };
  },
};

interface Published {
  topic: Topic;
  event: EventInit<Topic>;
}

async function expectCode(p: Promise<unknown>, code: number, text?: RegExp): Promise<TtrpcError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TtrpcError);
    expect((err as TtrpcError).code, (err as Error).message).toBe(code);
    if (text) expect((err as Error).message).toMatch(text);
    return err as TtrpcError;
  }
  throw new Error("expected the call to fail");
}

/** The client side of a FIFO the way containerd's cio opens it (read end for output, write end for stdin). */
function fifoReader(path: string): { text: () => string; ended: Promise<string> } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const s = new Socket({ fd, readable: true, writable: false });
  let buf = "";
  s.on("data", (d) => {
    buf += d.toString();
  });
  const ended = new Promise<string>((resolve) => s.on("end", () => resolve(buf)));
  return { text: () => buf, ended };
}

describe("TaskService", () => {
  let dir: string;
  let vmm: FakeVmm;
  let events: Published[];
  let shutdowns: number;
  let svc: TaskService;
  let pods: VmPodManager;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "beetroot-task-"));
    vmm = new FakeVmm();
    events = [];
    shutdowns = 0;
    pods = new VmPodManager({
      containerdAddress: "/run/test/containerd.sock",
      vmm,
      storage: testStorage,
      log,
    });
    svc = new TaskService({
      pods,
      publisher: { publish: (topic, event) => events.push({ topic, event: event as EventInit<Topic> }) },
      attachStdio,
      namespace: "default",
      log,
      shimPid: 4242,
      version: "test",
      onShutdown: () => {
        shutdowns++;
      },
      drainTimeoutMs: 2_000,
    });
  });

  afterEach(() => {
    vmm.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  function bundle(id: string, args: string[], annotations: Record<string, string> = {}): string {
    const b = join(dir, id);
    mkdirSync(b, { recursive: true });
    writeFileSync(
      join(b, "config.json"),
      JSON.stringify({ ociVersion: "1.2.0", process: { args }, annotations }),
    );
    return b;
  }

  function fifos(id: string): { stdin: string; stdout: string; stderr: string } {
    const f = {
      stdin: join(dir, `${id}-stdin`),
      stdout: join(dir, `${id}-stdout`),
      stderr: join(dir, `${id}-stderr`),
    };
    execFileSync("mkfifo", [f.stdin, f.stdout, f.stderr]);
    return f;
  }

  const topics = (id?: string) =>
    events
      .filter((e) => id === undefined || (e.event as { containerId?: string }).containerId === id)
      .map((e) => e.topic);

  async function createTask(id: string, args: string[], opts: { stdin?: boolean } = {}) {
    const io = fifos(id);
    const out = fifoReader(io.stdout);
    const err = fifoReader(io.stderr);
    // Like containerd's cio: the stdin writer is opened (blocking, in the background) before Create.
    const stdinWriter = opts.stdin ? open(io.stdin, constants.O_WRONLY) : undefined;
    const res = await svc.create(
      create(CreateTaskRequestSchema, {
        id,
        bundle: bundle(id, args),
        stdin: opts.stdin ? io.stdin : "",
        stdout: io.stdout,
        stderr: io.stderr,
      }),
    );
    return { res, io, out, err, stdinWriter };
  }

  it("runs a container: create → start → output → exit → delete, events in order, VM released", async () => {
    const { res, out } = await createTask("c1", ["echo", "hello", "world"]);
    expect(res.pid).toBeGreaterThan(0);
    expect(vmm.vms).toHaveLength(1);
    expect(vmm.vms[0]!.request).toMatchObject({ cpus: 1, memoryMib: 512 });

    const state0 = await svc.state(create(StateRequestSchema, { id: "c1" }));
    expect(state0.status).toBe(Status.CREATED);

    const started = await svc.start(create(StartRequestSchema, { id: "c1" }));
    expect(started.pid).toBe(res.pid);
    const wait = await svc.wait(create(WaitRequestSchema, { id: "c1" }));
    expect(wait.exitStatus).toBe(0);
    expect(await out.ended).toBe("hello world\n");

    const state1 = await svc.state(create(StateRequestSchema, { id: "c1" }));
    expect(state1.status).toBe(Status.STOPPED);

    const del = await svc.delete(create(DeleteRequestSchema, { id: "c1" }));
    expect(del.exitStatus).toBe(0);
    expect(topics()).toEqual(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]);
    expect(vmm.vms[0]!.calls).toContain("stop");
    expect(pods.podCount).toBe(0);
    await expectCode(svc.state(create(StateRequestSchema, { id: "c1" })), Code.NotFound, /c1: not found/);
  });

  it("reports exit codes and never reports an exit before the output drained", async () => {
    const big = "x".repeat(300_000);
    const { out } = await createTask("c2", ["echo", big]);
    let outputAtExit = -1;
    const publish = events.push.bind(events);
    events.push = (...items: Published[]) => {
      for (const e of items) if (e.topic === "/tasks/exit") outputAtExit = out.text().length;
      return publish(...items);
    };
    await svc.start(create(StartRequestSchema, { id: "c2" }));
    await svc.wait(create(WaitRequestSchema, { id: "c2" }));
    // Everything was written into the FIFO before the exit; the reader may still be catching up,
    // but EOF (writer closed) only comes after all of it.
    expect((await out.ended).length).toBe(big.length + 1);
    expect(outputAtExit).toBeGreaterThanOrEqual(0);

    await createTask("c3", ["exit", "3"]);
    await svc.start(create(StartRequestSchema, { id: "c3" }));
    expect((await svc.wait(create(WaitRequestSchema, { id: "c3" }))).exitStatus).toBe(3);
  });

  it("pipes stdin until the client closes it", async () => {
    const { out, stdinWriter } = await createTask("cat", ["cat"], { stdin: true });
    await svc.start(create(StartRequestSchema, { id: "cat" }));
    const w = await stdinWriter!;
    await w.write("line one\nline two\n");
    await w.close();
    expect((await svc.wait(create(WaitRequestSchema, { id: "cat" }))).exitStatus).toBe(0);
    expect(await out.ended).toBe("line one\nline two\n");
  });

  it("CloseIO ends stdin even while the client keeps its writer open", async () => {
    const { out, stdinWriter } = await createTask("cat2", ["cat"], { stdin: true });
    await svc.start(create(StartRequestSchema, { id: "cat2" }));
    const w = await stdinWriter!;
    await w.write("kept open\n");
    await svc.closeIO(create(CloseIORequestSchema, { id: "cat2", stdin: true }));
    expect((await svc.wait(create(WaitRequestSchema, { id: "cat2" }))).exitStatus).toBe(0);
    expect(await out.ended).toBe("kept open\n");
    await w.close();
  });

  it("kills, and a second kill of a finished process is NotFound", async () => {
    await createTask("k", ["sleep"]);
    await svc.start(create(StartRequestSchema, { id: "k" }));
    await expectCode(
      svc.delete(create(DeleteRequestSchema, { id: "k" })),
      Code.FailedPrecondition,
      /running/,
    );
    await svc.kill(create(KillRequestSchema, { id: "k", signal: 9 }));
    expect((await svc.wait(create(WaitRequestSchema, { id: "k" }))).exitStatus).toBe(137);
    await expectCode(
      svc.kill(create(KillRequestSchema, { id: "k", signal: 15 })),
      Code.NotFound,
      /already finished/,
    );
  });

  it("Delete of the last container skips the guest's delete, and waits for a Kill still in the guest", async () => {
    await createTask("k2", ["sleep"]);
    await svc.start(create(StartRequestSchema, { id: "k2" }));
    const vm = vmm.vms[0]!;
    let answerKill!: () => void;
    vm.holdNext.set("kill", new Promise((r) => (answerKill = r)));
    // The process dies at once, the Kill answers later: containerd may Delete in between.
    const kill = svc.kill(create(KillRequestSchema, { id: "k2", signal: 9 }));
    expect((await svc.wait(create(WaitRequestSchema, { id: "k2" }))).exitStatus).toBe(137);
    const del = svc.delete(create(DeleteRequestSchema, { id: "k2" }));
    await new Promise((r) => setTimeout(r, 20));
    expect(vm.calls).not.toContain("stop");
    answerKill();
    await kill;
    expect((await del).exitStatus).toBe(137);
    expect(vm.calls).not.toContain("delete");
    await svc.shutdown(create(ShutdownRequestSchema, {}));
    await pods.shutdown();
    expect(vm.calls).toContain("stop");
  });

  it("execs: added → started → exit, with precise errors for bad exec ids", async () => {
    await createTask("e", ["sleep"]);
    await svc.start(create(StartRequestSchema, { id: "e" }));
    const io = fifos("e-x1");
    const out = fifoReader(io.stdout);
    const spec = create(AnySchema, {
      typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process",
      value: Buffer.from(JSON.stringify({ args: ["echo", "from", "exec"] })),
    });
    await svc.exec(create(ExecProcessRequestSchema, { id: "e", execId: "x1", stdout: io.stdout, spec }));
    await expectCode(
      svc.exec(create(ExecProcessRequestSchema, { id: "e", execId: "x1", spec })),
      Code.AlreadyExists,
      /exec x1 in container e: already exists/,
    );
    await svc.start(create(StartRequestSchema, { id: "e", execId: "x1" }));
    expect((await svc.wait(create(WaitRequestSchema, { id: "e", execId: "x1" }))).exitStatus).toBe(0);
    expect(await out.ended).toBe("from exec\n");
    await svc.delete(create(DeleteRequestSchema, { id: "e", execId: "x1" }));
    expect(topics("e")).toEqual([
      "/tasks/create",
      "/tasks/start",
      "/tasks/exec-added",
      "/tasks/exec-started",
      "/tasks/exit",
    ]);
    expect((events.at(-1)!.event as { id: string }).id).toBe("x1");

    await expectCode(
      svc.start(create(StartRequestSchema, { id: "e", execId: "nope" })),
      Code.NotFound,
      /exec nope/,
    );
    await expectCode(
      svc.exec(
        create(ExecProcessRequestSchema, {
          id: "e",
          execId: "bad",
          spec: create(AnySchema, { value: Buffer.from("[1") }),
        }),
      ),
      Code.InvalidArgument,
      /not a JSON object/,
    );
    expect(await svc.pids(create(PidsRequestSchema, { id: "e" }))).toMatchObject({
      processes: [{ pid: expect.any(Number) }],
    });
  });

  it("pauses and resumes with events; illegal transitions are FailedPrecondition", async () => {
    await createTask("p", ["sleep"]);
    await expectCode(
      svc.pause(create(PauseRequestSchema, { id: "p" })),
      Code.FailedPrecondition,
      /it is created/,
    );
    await svc.start(create(StartRequestSchema, { id: "p" }));
    await expectCode(
      svc.resume(create(ResumeRequestSchema, { id: "p" })),
      Code.FailedPrecondition,
      /it is running/,
    );
    await svc.pause(create(PauseRequestSchema, { id: "p" }));
    expect((await svc.state(create(StateRequestSchema, { id: "p" }))).status).toBe(Status.PAUSED);
    await svc.resume(create(ResumeRequestSchema, { id: "p" }));
    expect((await svc.state(create(StateRequestSchema, { id: "p" }))).status).toBe(Status.RUNNING);
    expect(topics("p")).toEqual(["/tasks/create", "/tasks/start", "/tasks/paused", "/tasks/resumed"]);
  });

  it("refuses a duplicate Create, a bundle without config.json, unknown mounts — and leaves nothing", async () => {
    await createTask("dup", ["sleep"]);
    await expectCode(
      svc.create(create(CreateTaskRequestSchema, { id: "dup", bundle: bundle("dup2", ["sleep"]) })),
      Code.AlreadyExists,
      /container dup: already exists/,
    );
    expect(vmm.vms).toHaveLength(1);

    const empty = join(dir, "empty");
    mkdirSync(empty);
    await expectCode(
      svc.create(create(CreateTaskRequestSchema, { id: "nocfg", bundle: empty })),
      Code.InvalidArgument,
      /has no config.json/,
    );
    await expectCode(
      svc.create(
        create(CreateTaskRequestSchema, {
          id: "badmount",
          bundle: bundle("badmount", ["sleep"]),
          rootfs: [{ type: "nfs", source: "server:/x" }],
        }),
      ),
      Code.InvalidArgument,
      /"nfs"/,
    );
    expect(vmm.vms).toHaveLength(1);
    expect(svc.containerCount).toBe(1);
    expect(pods.podCount).toBe(1);
  });

  it("a guest failure during Create unwinds: stdio closed, VM stopped", async () => {
    const io = fifos("gf");
    fifoReader(io.stdout);
    const b = bundle("gf", ["sleep"]);
    const launch = vmm.launch.bind(vmm);
    vmm.launch = async (req) => {
      const vm = await launch(req);
      vm.failNext.set("create", new TtrpcError(Code.InvalidArgument, "crun: bad spec"));
      return vm;
    };
    const err = await expectCode(
      svc.create(create(CreateTaskRequestSchema, { id: "gf", bundle: b, stdout: io.stdout })),
      Code.InvalidArgument,
    );
    expect(err.message).toBe("creating container gf in the VM: crun: bad spec");
    expect(vmm.vms[0]!.calls).toContain("stop");
    expect(pods.podCount).toBe(0);
    expect(svc.containerCount).toBe(0);
  });

  it("answers Checkpoint with Unimplemented, Stats with cgroups v2 metrics, Connect with pids", async () => {
    const { res } = await createTask("m", ["sleep"]);
    await expectCode(
      svc.checkpoint(create(CheckpointTaskRequestSchema, { id: "m" })),
      Code.Unimplemented,
      /checkpoint/,
    );
    const stats = await svc.stats(create(StatsRequestSchema, { id: "m" }));
    expect(stats.stats?.typeUrl).toBe("io.containerd.cgroups.v2.Metrics");
    expect(await svc.connect(create(ConnectRequestSchema, { id: "m" }))).toEqual({
      shimPid: 4242,
      taskPid: res.pid,
      version: "test",
    });
    await expectCode(
      svc.resizePty(create(ResizePtyRequestSchema, { id: "m", width: 80, height: 24 })),
      Code.FailedPrecondition,
      /no terminal/,
    );
  });

  it("shuts down only when no task is left (or now=true)", async () => {
    await createTask("s", ["exit", "0"]);
    await svc.shutdown(create(ShutdownRequestSchema, { id: "s" }));
    await new Promise((r) => setImmediate(r));
    expect(shutdowns).toBe(0);
    await svc.start(create(StartRequestSchema, { id: "s" }));
    await svc.wait(create(WaitRequestSchema, { id: "s" }));
    await svc.delete(create(DeleteRequestSchema, { id: "s" }));
    await svc.shutdown(create(ShutdownRequestSchema, { id: "s" }));
    await new Promise((r) => setImmediate(r));
    expect(shutdowns).toBe(1);
    await expectCode(
      svc.create(create(CreateTaskRequestSchema, { id: "late", bundle: bundle("late", ["sleep"]) })),
      Code.FailedPrecondition,
      /shutting down/,
    );
  });

  it("reports every process as killed (137) when the VM dies underneath", async () => {
    await createTask("v", ["sleep"]);
    await svc.start(create(StartRequestSchema, { id: "v" }));
    vmm.vms[0]!.crash();
    expect((await svc.wait(create(WaitRequestSchema, { id: "v" }))).exitStatus).toBe(137);
    expect(topics("v")).toEqual(["/tasks/create", "/tasks/start", "/tasks/exit"]);
    await svc.delete(create(DeleteRequestSchema, { id: "v" }));
    expect(topics("v").at(-1)).toBe("/tasks/delete");
  });

  it("publishes the guest's OOM kills as /tasks/oom", async () => {
    await createTask("oom", ["sleep"]);
    await svc.start(create(StartRequestSchema, { id: "oom" }));
    vmm.vms[0]!.emitOom("oom");
    await new Promise((r) => setTimeout(r, 20));
    expect(topics("oom")).toEqual(["/tasks/create", "/tasks/start", "/tasks/oom"]);
  });

  it("puts CRI containers of one pod into the sandbox's VM", async () => {
    const sandbox = { "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "pod1" };
    const app = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod1" };
    await svc.create(
      create(CreateTaskRequestSchema, { id: "pod1", bundle: bundle("pod1", ["sleep"], sandbox) }),
    );
    await svc.create(create(CreateTaskRequestSchema, { id: "app1", bundle: bundle("app1", ["sleep"], app) }));
    expect(vmm.vms).toHaveLength(1);
    expect(vmm.vms[0]!.containers.has("app1")).toBe(true);
    await expectCode(
      svc.create(
        create(CreateTaskRequestSchema, {
          id: "orphan",
          bundle: bundle("orphan", ["sleep"], { ...app, "io.kubernetes.cri.sandbox-id": "pod2" }),
        }),
      ),
      Code.FailedPrecondition,
      /pod pod2/,
    );
    // The VM outlives the sandbox container until the last member is gone.
    await svc.delete(create(DeleteRequestSchema, { id: "app1" }));
    expect(vmm.vms[0]!.calls).not.toContain("stop");
    await svc.delete(create(DeleteRequestSchema, { id: "pod1" }));
    expect(vmm.vms[0]!.calls).toContain("stop");
  });
});
