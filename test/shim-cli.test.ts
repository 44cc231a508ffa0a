import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BootstrapParamsSchema,
  BootstrapResultSchema,
} from "../api/gen/containerd/runtime/bootstrap/v1/bootstrap_pb.ts";
import { DeleteResponseSchema } from "../api/gen/containerd/task/v2/shim_pb.ts";
import { Task as TaskV3 } from "../api/gen/containerd/task/v3/shim_pb.ts";
import { RuntimeInfoSchema } from "../api/gen/containerd/types/introspection_pb.ts";
import { Client } from "../internal/ttrpc/client.ts";
import { REPO, SHIM_BUNDLE } from "./fixtures/containerd.ts";

/**
 * The shim binary's protocol with containerd, exercised without containerd and without VMs:
 * `-info`, `-v`, `start` (legacy JSON and ≥ 2.3 protobuf bootstrap, grouping), the detached server
 * (socket modes, Connect, Shutdown), and `delete`.
 */
const NS = "beetroot-test";
const ADDRESS = "/run/containerd-test/containerd.sock";

let dir: string;
let socketDir: string;

function shim(args: string[], opts: { cwd?: string; input?: Buffer | string } = {}) {
  return execa(process.execPath, [SHIM_BUNDLE, ...args], {
    cwd: opts.cwd ?? dir,
    input: opts.input ?? "",
    encoding: "buffer",
    reject: false,
    env: { ...process.env, BEETROOT_SHIM_SOCKET_DIR: socketDir, TTRPC_ADDRESS: join(dir, "none.ttrpc") },
    timeout: 30_000,
  });
}

function bundle(id: string, annotations: Record<string, string> = {}): string {
  const b = join(dir, "bundles", id);
  mkdirSync(b, { recursive: true });
  writeFileSync(
    join(b, "config.json"),
    JSON.stringify({ ociVersion: "1.2.0", process: { args: ["true"] }, annotations }),
  );
  return b;
}

function startArgs(id: string, extra: string[] = []) {
  return [
    "-namespace",
    NS,
    "-address",
    ADDRESS,
    "-publish-binary",
    join(dir, "fake-containerd"),
    "-id",
    id,
    ...extra,
    "start",
  ];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(alive(pid)).toBe(false);
}

beforeAll(() => {
  if (!existsSync(SHIM_BUNDLE)) {
    execFileSync(process.execPath, ["scripts/build.mjs", "containerd-shim"], {
      cwd: REPO,
      env: { ...process.env, BEETROOT_SKIP_SEA: "1" },
      stdio: "inherit",
    });
  }
  dir = mkdtempSync("/tmp/bshim-");
  socketDir = join(dir, "s");
  // What `containerd --version` prints decides the task API version of a legacy reply.
  writeFileSync(
    join(dir, "fake-containerd"),
    "#!/bin/sh\necho 'containerd github.com/containerd/containerd/v2 2.1.9~ds1 '\n",
  );
  chmodSync(join(dir, "fake-containerd"), 0o755);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("containerd-shim-beetroot-v1 protocol", () => {
  it("-info prints a protobuf RuntimeInfo allowing erofs mounts through", async () => {
    const r = await shim(["-info"]);
    expect(r.exitCode).toBe(0);
    const info = fromBinary(RuntimeInfoSchema, r.stdout);
    expect(info.name).toBe("io.containerd.beetroot.v1");
    expect(info.annotations["containerd.io/runtime-allow-mounts"]).toBe("mkdir/*,format/*,erofs");
    const v = await shim(["-v"]);
    expect(Buffer.from(v.stdout).toString()).toMatch(/Version:\s+\d+\.\d+\.\d+/);
  });

  it("start spawns a detached server and prints only the JSON reply; Connect and Shutdown work", async () => {
    const b = bundle("c1");
    execFileSync("mkfifo", [join(b, "log")]);
    const r = await shim(startArgs("c1"), { cwd: b });
    expect(Buffer.from(r.stderr).toString()).toBe("");
    expect(r.exitCode).toBe(0);
    const reply = JSON.parse(Buffer.from(r.stdout).toString()) as {
      version: number;
      address: string;
      protocol: string;
    };
    expect(reply.version).toBe(3);
    expect(reply.protocol).toBe("ttrpc");
    expect(reply.address.startsWith(`unix://${socketDir}/`)).toBe(true);
    const path = reply.address.slice("unix://".length);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(socketDir).mode & 0o777).toBe(0o711);
    expect(readFileSync(join(b, "address"), "utf8")).toBe(reply.address);
    const pid = Number(readFileSync(join(b, "shim.pid"), "utf8"));
    // Its own session: containerd being restarted or killed must not take the shim with it.
    const sid = execFileSync("ps", ["-o", "sid=", "-p", String(pid)])
      .toString()
      .trim();
    expect(Number(sid)).toBe(pid);

    const client = await Client.connect(path);
    const task = client.service(TaskV3);
    const md = { metadata: { "containerd-namespace-ttrpc": NS } };
    const conn = await task.connect({ id: "c1" }, md);
    expect(conn.shimPid).toBe(pid);
    expect(conn.taskPid).toBe(0);
    await expect(task.state({ id: "c1" }, md)).rejects.toMatchObject({ code: 5 });
    await expect(task.checkpoint({ id: "c1" }, md)).rejects.toMatchObject({ code: 5 });
    await task.shutdown({ id: "c1" }, md);
    await client.close();
    await waitGone(pid);
    expect(existsSync(path)).toBe(false);
  });

  it("joins the shim of the same group instead of starting another", async () => {
    const a = bundle("pod-a", {
      "io.kubernetes.cri.sandbox-id": "pod-1",
      "io.kubernetes.cri.container-type": "sandbox",
    });
    const c = bundle("app-b", {
      "io.kubernetes.cri.sandbox-id": "pod-1",
      "io.kubernetes.cri.container-type": "container",
    });
    const first = await shim(startArgs("pod-a"), { cwd: a });
    const second = await shim(startArgs("app-b"), { cwd: c });
    expect(first.exitCode).toBe(0);
    expect(second.exitCode).toBe(0);
    const addrA = JSON.parse(Buffer.from(first.stdout).toString()).address as string;
    const addrB = JSON.parse(Buffer.from(second.stdout).toString()).address as string;
    expect(addrB).toBe(addrA);
    expect(existsSync(join(c, "shim.pid"))).toBe(false);
    const pid = Number(readFileSync(join(a, "shim.pid"), "utf8"));
    const client = await Client.connect(addrA.slice("unix://".length));
    await client.service(TaskV3).shutdown({ id: "pod-a", now: true });
    await client.close();
    await waitGone(pid);
  });

  it("answers containerd ≥ 2.3's protobuf BootstrapParams with a protobuf BootstrapResult", async () => {
    const b = bundle("c3");
    const params = toBinary(
      BootstrapParamsSchema,
      create(BootstrapParamsSchema, { instanceId: "c3", namespace: NS, containerdVersion: "2.3.0" }),
    );
    const r = await shim(startArgs("c3"), { cwd: b, input: Buffer.from(params) });
    expect(r.exitCode).toBe(0);
    const result = fromBinary(BootstrapResultSchema, r.stdout);
    expect(result.version).toBe(3);
    expect(result.protocol).toBe("ttrpc");
    const pid = Number(readFileSync(join(b, "shim.pid"), "utf8"));
    const client = await Client.connect(result.address.slice("unix://".length));
    await client.service(TaskV3).shutdown({ id: "c3" });
    await client.close();
    await waitGone(pid);
  });

  it("refuses bad Create requests precisely and leaves nothing behind", async () => {
    const b = bundle("bad");
    const r = await shim(startArgs("bad"), { cwd: b });
    const path = (JSON.parse(Buffer.from(r.stdout).toString()).address as string).slice("unix://".length);
    const pid = Number(readFileSync(join(b, "shim.pid"), "utf8"));
    const client = await Client.connect(path);
    const task = client.service(TaskV3);
    const empty = join(dir, "bundles", "no-config");
    mkdirSync(empty, { recursive: true });
    await expect(task.create({ id: "x1", bundle: empty })).rejects.toMatchObject({
      code: 3,
      message: expect.stringMatching(/no-config has no config.json/),
    });
    await expect(
      task.create({ id: "x2", bundle: b, rootfs: [{ type: "nfs", source: "srv:/export", options: [] }] }),
    ).rejects.toMatchObject({
      code: 3,
      message: expect.stringContaining('unsupported rootfs mount type "nfs"'),
    });
    await expect(task.create({ id: "x3", bundle: b, checkpoint: "/tmp/cp" })).rejects.toMatchObject({
      code: 12,
    });
    await expect(task.start({ id: "x1" })).rejects.toMatchObject({ code: 5 });
    await expect(task.kill({ id: "bad", execId: "nope", signal: 9 })).rejects.toMatchObject({ code: 5 });
    // Nothing was created: no VM process under the shim, and Shutdown lets it exit at once.
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    expect(children).toBe("");
    await task.shutdown({ id: "bad" });
    await client.close();
    await waitGone(pid);
  });

  it("fails start precisely (stderr, exit 1, empty stdout) for a bundle without config.json", async () => {
    const b = join(dir, "bundles", "empty");
    mkdirSync(b, { recursive: true });
    const r = await shim(startArgs("empty"), { cwd: b });
    expect(r.exitCode).toBe(1);
    expect(r.stdout.length).toBe(0);
    expect(Buffer.from(r.stderr).toString()).toMatch(/bundle .*empty has no config.json/);
  });

  it("delete prints a DeleteResponse (137, now) and removes a dead shim's socket", async () => {
    const b = bundle("c4");
    const r = await shim(startArgs("c4"), { cwd: b });
    const path = (JSON.parse(Buffer.from(r.stdout).toString()).address as string).slice("unix://".length);
    const pid = Number(readFileSync(join(b, "shim.pid"), "utf8"));
    process.kill(pid, "SIGKILL");
    await waitGone(pid);
    expect(existsSync(path)).toBe(true);
    const before = Date.now();
    const d = await shim(["-namespace", NS, "-address", ADDRESS, "-id", "c4", "-bundle", b, "delete"], {
      cwd: b,
    });
    expect(d.exitCode).toBe(0);
    const res = fromBinary(DeleteResponseSchema, d.stdout);
    expect(res.exitStatus).toBe(137);
    expect(Number(res.exitedAt?.seconds) * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(existsSync(path)).toBe(false);
  });
});
