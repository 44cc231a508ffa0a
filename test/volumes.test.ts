import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PrivateContainerd, startContainerd } from "./fixtures/containerd.ts";
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
 * Host paths in beetroot containers through `ctr run --mount` (containerd 2.1, real QEMU,
 * virtiofsd and crun): read-write and read-only directories, a single file, a host edit seen by
 * a running container (Kubernetes' atomic `..data` swap), symlinks that point out of the share,
 * a missing source, and nothing left behind.
 */
const IMAGE = "docker.io/beetroot/busybox:volumes";
const RT = ["--runtime", "io.containerd.beetroot.v1"];
const why = skipReason(import.meta.url, missingShimPrerequisites());

const bind = (src: string, dst: string, opts = "rbind:rw") => [
  "--mount",
  `type=bind,src=${src},dst=${dst},options=${opts}`,
];

describe.skipIf(why !== undefined)("volumes: host bind mounts in beetroot VMs (containerd 2.1)", () => {
  let c: PrivateContainerd;
  let host: string;
  const virtiofsds = () => processesMatching("--shared-dir=");
  const volumeMounts = () =>
    readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => / \S*\/vm\/[^/ ]+\/volumes(-stage)?(\/\S*)? /.test(l));
  const before = { virtiofsd: 0, mounts: 0, pids: [] as number[] };

  beforeAll(async () => {
    c = await startContainerd({ version: "2.1", shim: "sea" });
    writeFileSync(join(c.dir, "img.tar"), busyboxImage(IMAGE));
    await c.ctr(["images", "import", join(c.dir, "img.tar")]);
    host = mkdtempSync(join(tmpdir(), "beetroot-volumes-"));
    before.pids = virtiofsds();
    before.virtiofsd = before.pids.length;
    before.mounts = volumeMounts().length;
  }, 180_000);

  afterAll(async () => {
    await c?.stop();
    if (host) rmSync(host, { recursive: true, force: true });
  });

  it("a read-write directory: the container reads host files and its writes land on the host, owned and moded as written", async () => {
    const dir = join(host, "rw");
    mkdirSync(dir);
    writeFileSync(join(dir, "from-host"), "hello from the host\n");
    const r = await c.ctr([
      "run",
      "--rm",
      ...RT,
      ...bind(dir, "/data"),
      IMAGE,
      "vol-rw",
      "sh",
      "-c",
      "cat /data/from-host && echo written > /data/out && chmod 640 /data/out && chown 1234:4321 /data/out",
    ]);
    expect(r.stdout).toBe("hello from the host\n");
    expect(readFileSync(join(dir, "out"), "utf8")).toBe("written\n");
    const st = statSync(join(dir, "out"));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([1234, 4321, 0o640]);
  });

  it("read-only is enforced on the host: even a privileged container that remounts its view read-write cannot write", async () => {
    const dir = join(host, "ro");
    mkdirSync(dir);
    writeFileSync(join(dir, "keep"), "original\n");
    const r = await c.ctr(
      [
        "run",
        "--rm",
        "--privileged",
        ...RT,
        ...bind(dir, "/data", "rbind:ro"),
        IMAGE,
        "vol-ro",
        "sh",
        "-c",
        "echo x > /data/keep; echo plain=$?; mount -o remount,rw,bind /data; echo remount=$?; echo x > /data/keep; echo after=$?; cat /data/keep",
      ],
      { reject: false },
    );
    expect(r.stdout).toMatch(/plain=1/);
    // The guest's own read-only flag is gone after the remount: what still refuses is the host.
    expect(r.stdout).toMatch(/remount=0/);
    expect(r.stdout).toMatch(/after=1/);
    expect(r.stdout).toContain("original");
    expect(readFileSync(join(dir, "keep"), "utf8")).toBe("original\n");
  });

  it("a single file, as CRI binds /etc/hosts", async () => {
    const file = join(host, "hosts");
    writeFileSync(file, "10.9.8.7 volume-test\n");
    const r = await c.ctr([
      "run",
      "--rm",
      ...RT,
      ...bind(file, "/etc/hosts", "rbind:ro"),
      IMAGE,
      "vol-file",
      "cat",
      "/etc/hosts",
    ]);
    expect(r.stdout).toBe("10.9.8.7 volume-test\n");
  });

  it("a ConfigMap-style atomic ..data swap on the host shows in a running container within a second", async () => {
    const vol = join(host, "configmap");
    mkdirSync(join(vol, "..v1"), { recursive: true });
    writeFileSync(join(vol, "..v1", "key"), "one\n");
    symlinkSync("..v1", join(vol, "..data"));
    symlinkSync("..data/key", join(vol, "key"));
    await c.ctr(["run", "-d", ...RT, ...bind(vol, "/config", "rbind:ro"), IMAGE, "vol-cm", "sleep", "600"]);
    try {
      expect(
        String((await c.ctr(["task", "exec", "--exec-id", "r1", "vol-cm", "cat", "/config/key"])).stdout),
      ).toBe("one\n");
      mkdirSync(join(vol, "..v2"));
      writeFileSync(join(vol, "..v2", "key"), "two\n");
      symlinkSync("..v2", join(vol, "..data_tmp"));
      renameSync(join(vol, "..data_tmp"), join(vol, "..data"));
      const swapped = Date.now();
      let seen = "";
      for (let i = 0; seen !== "two\n" && Date.now() - swapped < 5_000; i++) {
        seen = (await c.ctr(["task", "exec", "--exec-id", `p${i}`, "vol-cm", "cat", "/config/key"]))
          .stdout as string;
      }
      const ms = Date.now() - swapped;
      console.log(`ConfigMap swap visible after ${ms} ms (including ctr exec round trips)`);
      expect(seen).toBe("two\n");
      // The bound is a second of attribute caching plus the exec round trips under TCG.
      expect(ms).toBeLessThan(5_000);
    } finally {
      await removeContainer(c, "vol-cm", { stopWaitMs: 10_000, deleteTimeoutMs: 60_000 });
    }
  });

  it("a symlink in the share that points outside it resolves in the guest, never to the host's file", async () => {
    const dir = join(host, "links");
    mkdirSync(dir);
    const secret = join(host, "host-secret");
    writeFileSync(secret, "host secret\n");
    symlinkSync(secret, join(dir, "abs"));
    symlinkSync("../host-secret", join(dir, "rel"));
    const r = await c.ctr(
      [
        "run",
        "--rm",
        ...RT,
        ...bind(dir, "/data"),
        IMAGE,
        "vol-links",
        "sh",
        "-c",
        "cat /data/abs; cat /data/rel; true",
      ],
      { reject: false },
    );
    expect(r.stdout).not.toContain("host secret");
  });

  it("a bind source that does not exist fails the run with NotFound naming it, and leaves no VM or virtiofsd", async () => {
    const missing = join(host, "no-such-dir");
    const r = await c.ctr(["run", "--rm", ...RT, ...bind(missing, "/data"), IMAGE, "vol-missing", "true"], {
      reject: false,
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toMatch(/no such file or directory/);
  });

  it("kill -9 of virtiofsd: the VM is stopped (it cannot serve its volumes), the task exits, and delete leaves nothing", async () => {
    const dir = join(host, "crash");
    mkdirSync(dir);
    await c.ctr(["run", "-d", ...RT, ...bind(dir, "/data"), IMAGE, "vol-crash", "sleep", "600"]);
    // virtiofsd's namespace sandbox is a parent and its serving child: a crash takes both.
    const mine = virtiofsds().filter((p) => !before.pids.includes(p));
    expect(mine.length, "virtiofsd processes of the VM").toBeGreaterThan(0);
    for (const p of mine) process.kill(p, "SIGKILL");
    await waitFor(
      "the task to stop after its virtiofsd died",
      async () => (await taskStatus(c, "vol-crash")) === "STOPPED",
      60_000,
    );
    await removeContainer(c, "vol-crash", { stopWaitMs: 10_000, deleteTimeoutMs: 60_000 });
  });

  it("nothing is left: no virtiofsd, no volume mounts", async () => {
    const deadline = Date.now() + 30_000;
    while (
      Date.now() < deadline &&
      (virtiofsds().length > before.virtiofsd || volumeMounts().length > before.mounts)
    )
      await new Promise((r) => setTimeout(r, 250));
    expect(virtiofsds()).toHaveLength(before.virtiofsd);
    expect(volumeMounts()).toHaveLength(before.mounts);
  });
});
