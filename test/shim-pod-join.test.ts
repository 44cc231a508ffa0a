import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { beetrootPaths } from "../internal/config/paths.ts";
import { loadHostDeps } from "../internal/hostdeps/index.ts";
import { podVmId, vmLedgerOwner } from "../internal/shim/pod-id.ts";
import { type ContainerdVersion, type PrivateContainerd, startContainerd } from "./fixtures/containerd.ts";
import { busyboxImage, busyboxLayer, ociArchive } from "./fixtures/oci-image.ts";
import { missingShimPrerequisites, processesMatching, taskStatus, waitFor } from "./fixtures/shim-e2e.ts";
import { skipReason } from "./fixtures/skip.ts";

/**
 * A container joining a running pod VM with image layers the VM did not boot with (the CRI flow:
 * the sandbox boots the VM, app containers of other images join it). microvm cannot hot-plug
 * virtio-blk, so the new layers reach the guest as files on the VM's virtio-9p disk share
 * (docs/storage.md). Driven with ctr through a private containerd; the CRI annotations group the
 * containers. Needs `beetroot setup`, the kernel and guest image and `npm run build`.
 */
const SANDBOX_IMAGE = "docker.io/beetroot/busybox:join-sandbox";
const APP_IMAGE = "docker.io/beetroot/marker:join-app";
const MARKER = "joined with a layer of its own\n";
const RT = ["--runtime", "io.containerd.beetroot.v1"];

const why = skipReason(import.meta.url, missingShimPrerequisites());

/** The annotations CRI puts on a pod's sandbox ("sandbox") and its app containers ("container"). */
function criAnnotations(type: "sandbox" | "container", pod: string): string[] {
  return [
    "--annotation",
    `io.kubernetes.cri.container-type=${type}`,
    "--annotation",
    `io.kubernetes.cri.sandbox-id=${pod}`,
  ];
}

/** Mount points under `dir` in this (the shim's) mount namespace. */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((mp) => mp.startsWith(`${dir}/`));
}

const cases: { version: ContainerdVersion; snapshotter: "overlayfs" | "erofs" }[] = [
  { version: "2.1", snapshotter: "overlayfs" },
  { version: "2.1", snapshotter: "erofs" },
  { version: "1.7", snapshotter: "overlayfs" },
];

for (const { version, snapshotter } of cases) {
  describe.skipIf(why !== undefined)(`pod join on containerd ${version} (${snapshotter})`, () => {
    let c: PrivateContainerd;
    const snap = ["--snapshotter", snapshotter];

    beforeAll(async () => {
      c = await startContainerd({ version, shim: "sea" });
      writeFileSync(join(c.dir, "sandbox.tar"), busyboxImage(SANDBOX_IMAGE));
      // A different image: its own busybox layer digest (an extra file) and a marker layer.
      const base = [...busyboxLayer(), { type: "file" as const, path: "etc/app-image", data: "app\n" }];
      writeFileSync(
        join(c.dir, "app.tar"),
        ociArchive({ name: APP_IMAGE, layers: [base, [{ type: "file", path: "marker", data: MARKER }]] }),
      );
      await c.ctr(["images", "import", ...snap, join(c.dir, "sandbox.tar")]);
      await c.ctr(["images", "import", ...snap, join(c.dir, "app.tar")]);
    });

    afterAll(async () => {
      await c?.stop();
    });

    it("an app container of another image joins the sandbox's VM, reads its own layer, and nothing is left", async () => {
      const pod = `sbx${version.replace(".", "")}${snapshotter}`;
      const vm = podVmId(c.address, "default", pod);
      const share = join(beetrootPaths().runDir, "vm", vm, "disks");
      const cri = (type: "sandbox" | "container") => criAnnotations(type, pod);
      await c.ctr(["run", "-d", ...RT, ...snap, ...cri("sandbox"), SANDBOX_IMAGE, pod, "sleep", "600"]);
      await waitFor(`${pod} running`, async () => (await taskStatus(c, pod)) === "RUNNING");
      const qemus = processesMatching(vm).filter((p) =>
        readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith(loadHostDeps().qemu),
      );
      expect(qemus, "one QEMU for the pod").toHaveLength(1);
      expect(mountsUnder(share), "the share starts empty").toEqual([]);

      const started = Date.now();
      const app = `${pod}-app`;
      const running = c.ctr(
        [
          "run",
          "--rm",
          ...RT,
          ...snap,
          ...cri("container"),
          APP_IMAGE,
          app,
          "sh",
          "-c",
          "cat /marker /etc/app-image; hostname; sleep 2",
        ],
        { reject: false },
      );
      // While the app runs, its two layers are on the share (the VM booted with the sandbox's only).
      let seen = 0;
      let done = false;
      void running.finally(() => {
        done = true;
      });
      while (!done) {
        seen = Math.max(seen, mountsUnder(share).length);
        await new Promise((res) => setTimeout(res, 100));
      }
      const r = await running;
      const joinMs = Date.now() - started;
      expect(r.exitCode, `stdout: ${r.stdout} stderr: ${r.stderr}`).toBe(0);
      // The hostname is the VM id, which comes from the pod id: the app ran in the sandbox's VM.
      expect(r.stdout).toBe(`${MARKER}app\n${vm}\n`);
      console.log(
        `containerd ${version} ${snapshotter}: ctr run --rm of a joining container took ${joinMs} ms (its command sleeps 2 s)`,
      );
      const stillOne = processesMatching(vm).filter((p) =>
        readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith(loadHostDeps().qemu),
      );
      expect(stillOne, "no second VM").toEqual(qemus);
      expect(seen, "the app's layers were bind-mounted into the share").toBe(2);
      // The app is deleted: its disks left the share while the sandbox's VM keeps running.
      expect(mountsUnder(share), "the app's disks are detached").toEqual([]);
      expect(await taskStatus(c, pod)).toBe("RUNNING");

      await c.ctr(["task", "kill", "-s", "SIGKILL", pod]);
      await waitFor(`${pod} to stop`, async () => (await taskStatus(c, pod)) !== "RUNNING", 30_000);
      await c.ctr(["task", "delete", pod]);
      await c.ctr(["containers", "delete", pod]);
      await waitFor("the VM to go", () => processesMatching(vm).length === 0, 30_000);
      const ledger = join(beetrootPaths().libDir, "ledger", vmLedgerOwner(vm));
      await waitFor("the ledger to go", () => !existsSync(ledger), 30_000);
      expect(mountsUnder(share)).toEqual([]);
      expect(existsSync(join(beetrootPaths().runDir, "vm", vm)), "run dir").toBe(false);
    });

    it("SIGKILL of the shim while a joined container runs: containerd's delete releases its shared disks too", async () => {
      const pod = `kill${version.replace(".", "")}${snapshotter}`;
      const vm = podVmId(c.address, "default", pod);
      const share = join(beetrootPaths().runDir, "vm", vm, "disks");
      const cri = (type: "sandbox" | "container") => criAnnotations(type, pod);
      await c.ctr(["run", "-d", ...RT, ...snap, ...cri("sandbox"), SANDBOX_IMAGE, pod, "sleep", "600"]);
      await waitFor(`${pod} running`, async () => (await taskStatus(c, pod)) === "RUNNING");
      const app = `${pod}-app`;
      await c.ctr(["run", "-d", ...RT, ...snap, ...cri("container"), APP_IMAGE, app, "sleep", "600"]);
      await waitFor(`${app} running`, async () => (await taskStatus(c, app)) === "RUNNING");
      expect(mountsUnder(share)).toHaveLength(2);
      const bundleDir = join(c.dir, "state", "io.containerd.runtime.v2.task", "default", pod);
      process.kill(Number(readFileSync(join(bundleDir, "shim.pid"), "utf8")), "SIGKILL");
      const ledger = join(beetrootPaths().libDir, "ledger", vmLedgerOwner(vm));
      await waitFor(
        "the orphaned VM, its shared disks and its ledger to be released",
        () => processesMatching(vm).length === 0 && !existsSync(ledger) && mountsUnder(share).length === 0,
        60_000,
      );
      expect(existsSync(join(beetrootPaths().runDir, "vm", vm)), "run dir").toBe(false);
      for (const id of [app, pod]) {
        await c.ctr(["task", "delete", id], { reject: false });
        await c.ctr(["containers", "delete", id], { reject: false });
        expect(await taskStatus(c, id)).toBeUndefined();
      }
    });
  });
}
