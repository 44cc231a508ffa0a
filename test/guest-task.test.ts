import { mkdtempSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessStatus, Task, type TaskEvent } from "../api/gen/beetroot/guest/v1/task_pb.ts";
import { MetricsSchema } from "../api/gen/cgroups/v2/metrics_pb.ts";
import { Code, type TtrpcError } from "../internal/ttrpc/index.ts";
import type { Vm } from "../internal/vm/vm.ts";
import { busyboxErofs, CONTAINER_ROOTFS, launchTaskVm } from "./fixtures/guest-task-vm.ts";
import { skipReason } from "./fixtures/skip.ts";
import { missingVmAssets } from "./vm-support.ts";

/**
 * The guest Task service for real: a busybox image as an EROFS disk, containers assembled from the
 * same mount recipe the shim sends (erofs layer + tmpfs upper + format/mkdir/overlay), run by crun in
 * the VM, with stdio over vsock dial-back, exec, terminal, pause, stats and OOM events.
 */
const reason = skipReason(import.meta.url, missingVmAssets());

const APPLETS = ["sh", "echo", "cat", "sleep", "ls", "hostname", "tty", "dd", "head", "true", "id", "env"];

function spec(
  id: string,
  args: string[],
  opts: { terminal?: boolean; memoryLimit?: number } = {},
): Uint8Array {
  const caps = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_NET_BIND_SERVICE",
  ];
  return Buffer.from(
    JSON.stringify({
      ociVersion: "1.2.0",
      process: {
        terminal: opts.terminal ?? false,
        user: { uid: 0, gid: 0 },
        args,
        env: ["PATH=/bin", "TERM=xterm"],
        cwd: "/",
        capabilities: { bounding: caps, effective: caps, permitted: caps },
        noNewPrivileges: true,
      },
      root: {
        path: "/var/lib/containerd/io.containerd.runtime.v2.task/default/x/rootfs",
        readonly: false,
      },
      hostname: id,
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        {
          destination: "/dev",
          type: "tmpfs",
          source: "tmpfs",
          options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
          destination: "/dev/pts",
          type: "devpts",
          source: "devpts",
          options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
          destination: "/dev/shm",
          type: "bind",
          source: "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm",
          options: ["rbind", "rw"],
        },
        { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
        {
          destination: "/sys/fs/cgroup",
          type: "cgroup",
          source: "cgroup",
          options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
      ],
      linux: {
        cgroupsPath: `/default/${id}`,
        resources: {
          devices: [{ allow: false, access: "rwm" }],
          ...(opts.memoryLimit ? { memory: { limit: opts.memoryLimit, swap: opts.memoryLimit } } : {}),
        },
        namespaces: [
          { type: "pid" },
          { type: "ipc" },
          { type: "uts" },
          { type: "mount" },
          { type: "network", path: "/var/run/netns/cni-00000000-0000-0000-0000-000000000000" },
        ],
        maskedPaths: ["/proc/kcore", "/sys/firmware"],
        readonlyPaths: ["/proc/sys", "/proc/sysrq-trigger"],
      },
    }),
  );
}

function readAll(s: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    s.on("data", (d) => {
      out += d.toString();
    });
    s.on("end", () => resolve(out));
    s.on("error", reject);
  });
}

describe.skipIf(reason)("the guest Task service (crun in the VM)", () => {
  let vm: Vm;
  let dir: string;
  let nextPort = 5000;
  const events: TaskEvent[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "bt-"));
    const image = await busyboxErofs(dir, {
      applets: APPLETS,
      dirs: ["proc", "sys", "dev", "tmp", "etc", "root"],
      files: { "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" },
    });
    vm = await launchTaskVm({ dir, id: `task-test-${process.pid}`, image, cpus: 2 });
    void (async () => {
      for await (const ev of vm.guest.service(Task).events({})) events.push(ev);
    })().catch(() => {});
  });

  afterAll(async () => {
    await vm?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const task = () => vm.guest.service(Task);

  /** Listens on fresh host ports for the streams asked for; resolves each stream's text at EOF. */
  async function stdio(streams: { stdin?: boolean; stdout?: boolean; stderr?: boolean }, terminal = false) {
    const open = async (want: boolean | undefined) => {
      if (!want) return { port: 0, socket: Promise.resolve(undefined as Socket | undefined) };
      const port = nextPort++;
      const l = await vm.listen(port);
      return { port, socket: l.accept(30_000) as Promise<Socket | undefined> };
    };
    const i = await open(streams.stdin);
    const o = await open(streams.stdout);
    const e = await open(streams.stderr);
    return {
      ports: { stdinPort: i.port, stdoutPort: o.port, stderrPort: e.port, terminal },
      stdin: i.socket,
      stdout: o.socket.then((s) => (s ? readAll(s) : "")),
      stderr: e.socket.then((s) => (s ? readAll(s) : "")),
    };
  }

  it("runs a container to completion: output, exit status, state, events, delete", async () => {
    const io = await stdio({ stdout: true, stderr: true });
    const t0 = performance.now();
    const { pid } = await task().create({
      id: "c1",
      specJson: spec("c1", [
        "/bin/sh",
        "-c",
        "echo hello from $(hostname); echo oops >&2; ls /dev/shm >/dev/null && exit 3",
      ]),
      rootfs: CONTAINER_ROOTFS,
      stdio: io.ports,
    });
    const tCreate = performance.now() - t0;
    expect(pid).toBeGreaterThan(1);
    expect((await task().state({ id: "c1" })).status).toBe(ProcessStatus.CREATED);
    const t1 = performance.now();
    expect((await task().start({ id: "c1" })).pid).toBe(pid);
    const w = await task().wait({ id: "c1" });
    console.log(
      `create ${tCreate.toFixed(0)} ms, start→exit ${(performance.now() - t1).toFixed(0)} ms (TCG)`,
    );
    expect(w.exitStatus).toBe(3);
    expect(await io.stdout).toBe("hello from c1\n");
    expect(await io.stderr).toBe("oops\n");
    const st = await task().state({ id: "c1" });
    expect(st).toMatchObject({ status: ProcessStatus.STOPPED, exitStatus: 3, pid });
    const exit = events.find((e) => e.event.case === "exit" && e.event.value.id === "c1");
    expect(exit?.event.value).toMatchObject({ id: "c1", execId: "", pid, exitStatus: 3 });
    const del = await task().delete({ id: "c1" });
    expect(del.exitStatus).toBe(3);
    const gone = await task()
      .state({ id: "c1" })
      .catch((e: TtrpcError) => e);
    expect((gone as TtrpcError).code).toBe(Code.NotFound);
  });

  it("execs into a running container, reports pids and stats, kills with 128+signal", async () => {
    const io = await stdio({ stdin: true, stdout: true });
    const { pid } = await task().create({
      id: "c2",
      specJson: spec("c2", ["/bin/cat"]),
      rootfs: CONTAINER_ROOTFS,
      stdio: io.ports,
    });
    await task().start({ id: "c2" });
    const stdin = await io.stdin;
    stdin?.write("echoed through cat\n");

    const eio = await stdio({ stdout: true });
    await task().exec({
      id: "c2",
      execId: "e1",
      processJson: Buffer.from(
        JSON.stringify({
          args: ["/bin/sh", "-c", "echo exec says hi; id -u"],
          cwd: "/",
          env: ["PATH=/bin"],
          user: { uid: 0, gid: 0 },
        }),
      ),
      stdio: eio.ports,
    });
    const { pid: epid } = await task().start({ id: "c2", execId: "e1" });
    expect(epid).toBeGreaterThan(1);
    expect((await task().wait({ id: "c2", execId: "e1" })).exitStatus).toBe(0);
    expect(await eio.stdout).toBe("exec says hi\n0\n");
    await task().delete({ id: "c2", execId: "e1" });

    const pids = await task().pids({ id: "c2" });
    expect(pids.processes.map((p) => p.pid)).toContain(pid);
    const stats = await task().stats({ id: "c2" });
    const m = fromBinary(MetricsSchema, stats.cgroup2Metrics);
    expect(m.pids?.current).toBeGreaterThanOrEqual(1n);
    expect(m.memory?.usage).toBeGreaterThan(0n);

    await task().pause({ id: "c2" });
    expect((await task().state({ id: "c2" })).status).toBe(ProcessStatus.PAUSED);
    await task().resume({ id: "c2" });

    await task().closeIO({ id: "c2", stdin: true });
    expect((await task().wait({ id: "c2" })).exitStatus).toBe(0); // cat ends at EOF
    expect(await io.stdout).toBe("echoed through cat\n");
    await task().delete({ id: "c2" });

    const io3 = await stdio({});
    await task().create({
      id: "c3",
      specJson: spec("c3", ["/bin/sleep", "1000"]),
      rootfs: CONTAINER_ROOTFS,
      stdio: io3.ports,
    });
    await task().start({ id: "c3" });
    await task().kill({ id: "c3", signal: 9 });
    expect((await task().wait({ id: "c3" })).exitStatus).toBe(137);
    const again = await task()
      .kill({ id: "c3", signal: 9 })
      .catch((e: TtrpcError) => e);
    expect((again as TtrpcError).code).toBe(Code.NotFound);
    await task().delete({ id: "c3" });
  });

  it("takes the host's half-close of stdin as EOF (what the shim does after CloseIO)", async () => {
    const io = await stdio({ stdin: true, stdout: true });
    await task().create({
      id: "cat2",
      specJson: spec("cat2", ["/bin/cat"]),
      rootfs: CONTAINER_ROOTFS,
      stdio: io.ports,
    });
    await task().start({ id: "cat2" });
    (await io.stdin)?.end("last words\n");
    expect((await task().wait({ id: "cat2" })).exitStatus).toBe(0);
    expect(await io.stdout).toBe("last words\n");
    await task().delete({ id: "cat2" });
  });

  it("gives a terminal through crun's console socket", async () => {
    const io = await stdio({ stdout: true }, true);
    await task().create({
      id: "t1",
      specJson: spec("t1", ["/bin/sh", "-c", "tty; exit 0"], { terminal: true }),
      rootfs: CONTAINER_ROOTFS,
      stdio: io.ports,
    });
    await task().resizePty({ id: "t1", width: 100, height: 40 });
    await task().start({ id: "t1" });
    expect((await task().wait({ id: "t1" })).exitStatus).toBe(0);
    expect(await io.stdout).toMatch(/\/dev\/pts\/0/);
    await task().delete({ id: "t1" });
  });

  it("reports an OOM kill as an event and 137", async () => {
    const io = await stdio({});
    await task().create({
      id: "oom",
      specJson: spec("oom", ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], {
        memoryLimit: 16 * 1024 * 1024,
      }),
      rootfs: CONTAINER_ROOTFS,
      stdio: io.ports,
    });
    await task().start({ id: "oom" });
    expect((await task().wait({ id: "oom" })).exitStatus).toBe(137);
    // The event travels on its own stream: it may land just after Wait's answer.
    const deadline = Date.now() + 5000;
    while (
      !events.some((e) => e.event.case === "oom" && e.event.value.id === "oom") &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const kinds = events.filter((e) => e.event.value?.id === "oom").map((e) => e.event.case);
    // The OOM kill is reported before the exit it caused.
    expect(kinds).toEqual(["oom", "exit"]);
    await task().delete({ id: "oom" });
  });

  it("refuses bad requests precisely", async () => {
    const code = (p: Promise<unknown>) =>
      p.then(
        () => Code.OK,
        (e: TtrpcError) => e.code,
      );
    expect(
      await code(task().create({ id: "../x", specJson: spec("x", ["/bin/true"]), rootfs: CONTAINER_ROOTFS })),
    ).toBe(Code.InvalidArgument);
    expect(await code(task().create({ id: "x", specJson: Buffer.from("{"), rootfs: CONTAINER_ROOTFS }))).toBe(
      Code.InvalidArgument,
    );
    expect(
      await code(
        task().create({
          id: "x",
          specJson: spec("x", ["/bin/true"]),
          rootfs: [{ type: "erofs", diskSerial: "br-9", options: [], source: "" }],
        }),
      ),
    ).toBe(Code.FailedPrecondition);
    expect(await code(task().start({ id: "nope" }))).toBe(Code.NotFound);
  });
});
