import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Task } from "../api/gen/beetroot/guest/v1/task_pb.ts";
import type { Vm } from "../internal/vm/vm.ts";
import { busyboxErofs, CONTAINER_ROOTFS, launchTaskVm } from "./fixtures/guest-task-vm.ts";
import { skipReason } from "./fixtures/skip.ts";
import { missingVmAssets } from "./vm-support.ts";

/**
 * Container output below the shim: a process in a crun container writes N bytes, vminitd copies its
 * pipe into a vsock stream (guest kernel virtio-vsock → vhost-device-vsock → `<uds>_<port>`), and
 * the host socket must receive exactly those bytes, then EOF. Writes above ~32 KiB per send() are
 * what vhost-device-vsock 0.3.0 used to drop (docs/shim.md, "Known problems"). Logs MB/s.
 */
const reason = skipReason(import.meta.url, missingVmAssets());

const APPLETS = ["sh", "cat", "dd", "head", "sha256sum"];

function spec(id: string, script: string): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      ociVersion: "1.2.0",
      process: {
        terminal: false,
        user: { uid: 0, gid: 0 },
        args: ["/bin/sh", "-c", script],
        env: ["PATH=/bin"],
        cwd: "/",
      },
      root: { path: "/rootfs", readonly: false },
      hostname: id,
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "mode=755"] },
      ],
      linux: {
        cgroupsPath: `/default/${id}`,
        namespaces: [{ type: "pid" }, { type: "mount" }, { type: "uts" }],
      },
    }),
  );
}

interface Received {
  data: Buffer;
  /** From the first to the last byte. */
  ms: number;
}

function receive(s: Socket, keep: boolean): Promise<Received> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let first = 0;
    s.on("data", (d: Buffer) => {
      if (n === 0) first = performance.now();
      n += d.length;
      if (keep) chunks.push(d);
    });
    s.on("end", () =>
      resolve({ data: keep ? Buffer.concat(chunks) : Buffer.alloc(n), ms: performance.now() - first }),
    );
    s.on("error", reject);
  });
}

const MiB = 1024 * 1024;

describe.skipIf(reason)("container output over vsock (guest Task service, no shim)", () => {
  let vm: Vm;
  let dir: string;
  let nextPort = 6000;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "bvs-"));
    const image = await busyboxErofs(dir, { applets: APPLETS, dirs: ["proc", "dev", "tmp"] });
    vm = await launchTaskVm({ dir, id: `vsock-stdio-${process.pid}`, image, cpus: 1 });
  }, 120_000);

  afterAll(async () => {
    await vm?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const task = () => vm.guest.service(Task);

  /** Runs `script` in a container; resolves stdout (kept only when asked) and stderr at EOF. */
  async function run(id: string, script: string, keep: boolean) {
    const outPort = nextPort++;
    const errPort = nextPort++;
    const out = (await vm.listen(outPort)).accept(30_000).then((s) => receive(s, keep));
    const err = (await vm.listen(errPort)).accept(30_000).then((s) => receive(s, true));
    await task().create({
      id,
      specJson: spec(id, script),
      rootfs: CONTAINER_ROOTFS,
      stdio: { stdinPort: 0, stdoutPort: outPort, stderrPort: errPort, terminal: false },
    });
    await task().start({ id });
    const [stdout, stderr, exit] = await Promise.all([out, err, task().wait({ id })]);
    await task().delete({ id });
    return { stdout, stderr: stderr.data.toString(), exitStatus: exit.exitStatus };
  }

  // 64 KiB in one write() is the smallest case the old window lost entirely.
  for (const n of [64 * 1024, MiB, 16 * MiB]) {
    it(`${n / 1024} KiB of random bytes in large writes arrive byte-exact`, async () => {
      const r = await run(
        `rnd${n}`,
        `head -c ${n} /dev/urandom > /tmp/d && sha256sum /tmp/d >&2 && dd if=/tmp/d bs=65536 2>/dev/null`,
        true,
      );
      expect(r.exitStatus, r.stderr).toBe(0);
      expect(r.stdout.data.length).toBe(n);
      expect(createHash("sha256").update(r.stdout.data).digest("hex")).toBe(
        /[0-9a-f]{64}/.exec(r.stderr)?.[0],
      );
    }, 120_000);
  }

  it("256 MiB stream: every byte arrives; the rate is logged", async () => {
    const n = 256 * MiB;
    const r = await run("bulk", `dd if=/dev/zero bs=65536 count=${n / 65536} 2>/dev/null`, false);
    expect(r.exitStatus, r.stderr).toBe(0);
    expect(r.stdout.data.length).toBe(n);
    console.log(`256 MiB over vsock: ${(n / 1e6 / (r.stdout.ms / 1000)).toFixed(1)} MB/s (TCG, 1 vCPU)`);
  }, 300_000);
});
