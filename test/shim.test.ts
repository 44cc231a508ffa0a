import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { beetrootPaths } from "../internal/config/paths.ts";
import { podVmId, vmLedgerOwner } from "../internal/shim/pod-id.ts";
import { type ContainerdVersion, type PrivateContainerd, startContainerd } from "./fixtures/containerd.ts";
import { busyboxImage } from "./fixtures/oci-image.ts";
import {
  missingShimPrerequisites,
  processesMatching,
  removeContainer,
  taskStatus,
  waitFor,
} from "./fixtures/shim-e2e.ts";
import { skipReason } from "./fixtures/skip.ts";

/**
 * End to end: a private containerd (2.1 and 1.7) running busybox containers through
 * containerd-shim-beetroot-v1 in micro-VMs, driven with ctr. Needs `beetroot setup`, the kernel and
 * guest image (`beetroot build kernel|guest`) and `npm run build`.
 */
const IMAGE = "docker.io/beetroot/busybox:test";
const DEEP = "docker.io/beetroot/busybox:deep";
const RT = ["--runtime", "io.containerd.beetroot.v1"];

const why = skipReason(import.meta.url, missingShimPrerequisites());

function ctrArgs(c: PrivateContainerd, args: string[]): string[] {
  return ["--address", c.address, ...args];
}

/** ctr needs a terminal for -t: run it under script(1) with a pty of the given size. */
async function inPty(c: PrivateContainerd, args: string[], rows: number, cols: number) {
  const cmd = [c.ctrPath, ...ctrArgs(c, args)].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  return execa("script", ["-qec", `stty rows ${rows} cols ${cols}; ${cmd}`, "/dev/null"], {
    env: c.env,
    reject: false,
    timeout: 180_000,
  });
}

for (const version of ["2.1", "1.7"] as ContainerdVersion[]) {
  describe.skipIf(why !== undefined)(`beetroot shim on containerd ${version}`, () => {
    let c: PrivateContainerd;

    beforeAll(async () => {
      c = await startContainerd({ version, shim: "sea" });
      writeFileSync(join(c.dir, "img.tar"), busyboxImage(IMAGE));
      writeFileSync(join(c.dir, "deep.tar"), busyboxImage(DEEP, 39));
      await c.ctr(["images", "import", join(c.dir, "img.tar")]);
      await c.ctr(["images", "import", join(c.dir, "deep.tar")]);
      if (version === "2.1")
        await c.ctr(["images", "import", "--snapshotter", "erofs", join(c.dir, "img.tar")]);
    });

    afterAll(async () => {
      await c?.stop();
    });

    it("ctr run --rm echoes, and exit codes 0, 3 and 137 come back", async () => {
      const r = await c.ctr(["run", "--rm", ...RT, IMAGE, "echo1", "echo", "hello", "from", "a", "VM"]);
      expect(r.stdout).toBe("hello from a VM\n");
      for (const [id, script, code] of [
        ["exit0", "exit 0", 0],
        ["exit3", "exit 3", 3],
        // The container's init ignores SIGKILL from inside its own pid namespace: kill a child shell.
        ["exit137", 'sh -c "kill -9 \\$\\$"; exit $?', 137],
      ] as const) {
        const x = await c.ctr(["run", "--rm", ...RT, IMAGE, id, "sh", "-c", script], { reject: false });
        expect(x.exitCode, `${id}: ${x.stderr}`).toBe(code);
      }
    });

    // The last container's Delete answers before its VM is gone (docs/shim.md "Exit"): the same id
    // right after must wait for the old VM's ledger, not collide with it or lose its socket.
    it("ctr run --rm of the same id again, at once, while the first VM still powers off", async () => {
      for (const n of [1, 2, 3]) {
        const r = await c.ctr(["run", "--rm", ...RT, IMAGE, "again", "echo", `run ${n}`]);
        expect(r.stdout).toBe(`run ${n}\n`);
      }
    });

    it("pipes stdin", async () => {
      const r = await c.ctr(["run", "--rm", ...RT, IMAGE, "stdin1", "sh", "-c", "cat; echo done"], {
        input: "line one\nline two\n",
      });
      expect(r.stdout).toBe("line one\nline two\ndone\n");
    });

    // ctr sends the first ResizePty only after Start returned (as with runc), so the command waits a
    // moment before asking for its size; the resize itself is what is under test.
    it("gives -t a terminal of the caller's size", async () => {
      const r = await inPty(
        c,
        ["run", "--rm", "-t", ...RT, IMAGE, "tty1", "sh", "-c", "sleep 1; stty size; tty"],
        37,
        101,
      );
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/37 101/);
      expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    });

    it("task exec -t gets a terminal of the caller's size", async () => {
      const id = "ttyexec";
      await c.ctr(["run", "-d", ...RT, IMAGE, id, "sleep", "600"]);
      try {
        await waitFor(`${id} running`, async () => (await taskStatus(c, id)) === "RUNNING");
        const t = await inPty(
          c,
          ["task", "exec", "-t", "--exec-id", "e2", id, "sh", "-c", "sleep 1; stty size"],
          20,
          70,
        );
        expect(t.stdout).toMatch(/20 70/);
      } finally {
        await removeContainer(c, id, { stopWaitMs: 30_000 });
      }
    });

    it("task exec, ps, metrics, pause/resume, kill TERM/KILL", async () => {
      const id = "svc1";
      await c.ctr([
        "run",
        "-d",
        ...RT,
        IMAGE,
        id,
        "sh",
        "-c",
        "trap 'exit 42' TERM; while :; do sleep 0.2; done",
      ]);
      try {
        await waitFor("svc1 running", async () => (await taskStatus(c, id)) === "RUNNING");
        const e = await c.ctr(
          ["task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo out; echo err >&2; exit 5"],
          {
            reject: false,
          },
        );
        expect(e.exitCode).toBe(5);
        expect(e.stdout).toBe("out\n");
        expect(e.stderr).toContain("err");
        const unknown = await c.ctr(["task", "kill", "--exec-id", "nope", id], { reject: false });
        expect(unknown.exitCode).not.toBe(0);
        expect(unknown.stderr).toMatch(/not found/);

        const ps = await c.ctr(["task", "ps", id]);
        expect(String(ps.stdout)).toMatch(/PID/);
        expect(String(ps.stdout).trim().split("\n").length).toBeGreaterThan(1);
        const metrics = await c.ctr(["task", "metrics", id]);
        expect(String(metrics.stdout)).toMatch(/memory/i);

        await c.ctr(["task", "pause", id]);
        expect(await taskStatus(c, id)).toBe("PAUSED");
        await c.ctr(["task", "resume", id]);
        expect(await taskStatus(c, id)).toBe("RUNNING");
        await c.ctr(["task", "kill", id]); // SIGTERM: the trap exits 42
        await waitFor("svc1 stopped", async () => (await taskStatus(c, id)) === "STOPPED");
      } finally {
        await removeContainer(c, id, { stopWaitMs: 30_000 });
      }
      // SIGKILL of an attached run: ctr reports 137.
      const run: ChildProcess = spawn(
        c.ctrPath,
        ctrArgs(c, ["run", "--rm", ...RT, IMAGE, "svc2", "sleep", "600"]),
        {
          env: c.env,
          stdio: "ignore",
        },
      );
      const exited = new Promise<number | null>((r) => run.once("exit", (code) => r(code)));
      await waitFor("svc2 running", async () => (await taskStatus(c, "svc2")) === "RUNNING");
      await c.ctr(["task", "kill", "-s", "SIGKILL", "svc2"]);
      expect(await exited).toBe(137);
    });

    it("publishes events in lifecycle order", async () => {
      const events = spawn(c.ctrPath, ctrArgs(c, ["events"]), {
        env: c.env,
        stdio: ["ignore", "pipe", "ignore"],
      });
      let log = "";
      events.stdout?.on("data", (d: Buffer) => {
        log += d.toString();
      });
      await new Promise((r) => setTimeout(r, 500));
      await c.ctr(["run", "--rm", ...RT, IMAGE, "ev1", "true"]);
      await waitFor("delete event", () => /\/tasks\/delete.*ev1/.test(log), 10_000);
      events.kill();
      const topics = log
        .split("\n")
        .filter((l) => l.includes('"ev1"') || l.includes("ev1"))
        .map((l) => /\/tasks\/[a-z-]+/.exec(l)?.[0])
        .filter((t): t is string => t !== undefined);
      expect(topics).toEqual(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]);
    });

    if (version === "2.1")
      it("runs from the erofs snapshotter (layer.erofs passed as disks)", async () => {
        const r = await c.ctr([
          "run",
          "--rm",
          "--snapshotter",
          "erofs",
          ...RT,
          IMAGE,
          "erofs1",
          "cat",
          "/etc/passwd",
        ]);
        expect(r.stdout).toContain("root:x:0:0");
      });

    it("runs a 40-layer image (bottom layers merged to fit the VM's disk slots)", async () => {
      const r = await c.ctr([
        "run",
        "--rm",
        ...RT,
        DEEP,
        "deep1",
        "sh",
        "-c",
        "ls /layers | wc -l; cat /layers/38",
      ]);
      // 39 layer files, /layers/0 whited out by the top layer.
      expect(r.stdout).toBe("38\nlayer 38\n");
    });

    it("20 run/delete cycles leave no process, socket or ledger behind", async () => {
      const ids = Array.from({ length: 20 }, (_, i) => `cycle${i}`);
      for (const id of ids) {
        const r = await c.ctr(["run", "--rm", ...RT, IMAGE, id, "true"], { reject: false });
        expect(r.exitCode, String(r.stderr)).toBe(0);
      }
      // Shims of this containerd carry its socket path in their argv; VM processes carry the VM id.
      await waitFor("shims to exit", () => processesMatching(c.address).length === 0, 20_000);
      const vmIds = ids.map((id) => podVmId(c.address, "default", id));
      for (const vm of vmIds) {
        expect(processesMatching(vm), `processes of ${vm}`).toEqual([]);
        expect(existsSync(join(beetrootPaths().libDir, "ledger", vmLedgerOwner(vm))), `ledger of ${vm}`).toBe(
          false,
        );
        expect(existsSync(join(beetrootPaths().runDir, "vm", vm)), `run dir of ${vm}`).toBe(false);
      }
      const containers = await c.ctr(["containers", "ls", "-q"]);
      expect(String(containers.stdout).trim()).toBe("");
    });

    it("SIGKILL of the shim mid-run: containerd's delete cleans the VM up", async () => {
      const id = "killshim";
      await c.ctr(["run", "-d", ...RT, IMAGE, id, "sleep", "600"]);
      await waitFor(`${id} running`, async () => (await taskStatus(c, id)) === "RUNNING");
      const bundleDir = join(c.dir, "state", "io.containerd.runtime.v2.task", "default", id);
      const shimPid = Number(readFileSync(join(bundleDir, "shim.pid"), "utf8"));
      const vm = podVmId(c.address, "default", id);
      const vmProcs = processesMatching(vm);
      expect(vmProcs.length, "QEMU and vhost-device-vsock of the VM").toBeGreaterThan(0);
      process.kill(shimPid, "SIGKILL");
      // The sweep goes on after QEMU is gone: TAP, CNI DEL and the pod namespace, then the ledger.
      const ledger = join(beetrootPaths().libDir, "ledger", vmLedgerOwner(vm));
      await waitFor(
        "the orphaned VM and its network to be cleaned up",
        () => processesMatching(vm).length === 0 && !existsSync(ledger),
        60_000,
      );
      await c.ctr(["task", "delete", id], { reject: false });
      await c.ctr(["containers", "delete", id], { reject: false });
      expect(await taskStatus(c, id)).toBeUndefined();
    });
  });
}
