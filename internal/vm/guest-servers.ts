import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { execa } from "execa";
import { Task } from "../../api/gen/beetroot/guest/v1/task_pb.ts";
import type { DiskSpec } from "./qemu-args.ts";
import type { Vm } from "./vm.ts";

/**
 * TCP servers in a container inside a real beetroot VM, for measuring and proving the pod network
 * end to end (host → bridge → TAP → QEMU → guest virtio-net → container): a byte-counting sink and
 * an echo, both busybox `nc`, run by crun through vminitd's Task service from a busybox EROFS disk
 * — the same path an application container takes. Used by `beetroot bench net` and
 * test/vm-network.test.ts; nothing here is on the product's path.
 */
export const SINK_PORT = 5001;
export const ECHO_PORT = 5002;
const DISK_SERIAL = "bench-bb";
const CONTAINER_ID = "net-servers";
const APPLETS = ["sh", "nc", "wc", "cat", "sleep"];

/** busybox with `applets` linked in /bin, the directories `dirs`, and `files` (path → text), as EROFS. */
export async function busyboxErofs(
  dir: string,
  tools: { busybox: string; mkfsErofs: string },
  opts: { applets: readonly string[]; dirs: readonly string[]; files?: Readonly<Record<string, string>> },
): Promise<string> {
  const root = join(dir, "bbroot");
  mkdirSync(join(root, "bin"), { recursive: true });
  for (const d of opts.dirs) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(tools.busybox, join(root, "bin", "busybox"));
  chmodSync(join(root, "bin", "busybox"), 0o755);
  for (const a of opts.applets) symlinkSync("busybox", join(root, "bin", a));
  for (const [path, text] of Object.entries(opts.files ?? {})) writeFileSync(join(root, path), text);
  const image = join(dir, "busybox.erofs");
  await execa(tools.mkfsErofs, ["--quiet", "-T0", "--all-root", image, root]);
  return image;
}

/** The mount recipe the shim sends for an EROFS layer on disk `serial` with a tmpfs upper. */
export function erofsOverTmpfsRootfs(serial: string) {
  return [
    { type: "erofs", diskSerial: serial, options: ["ro"], source: "" },
    { type: "tmpfs", diskSerial: "", options: ["mode=0755"], source: "tmpfs" },
    {
      type: "format/mkdir/overlay",
      diskSerial: "",
      source: "overlay",
      options: [
        "X-containerd.mkdir.path={{ mount 1 }}/upper:0755",
        "X-containerd.mkdir.path={{ mount 1 }}/work:0755",
        "lowerdir={{ mount 0 }}",
        "upperdir={{ mount 1 }}/upper",
        "workdir={{ mount 1 }}/work",
      ],
    },
  ];
}

/** A busybox root filesystem as an EROFS image, ready to attach as `disk` (VmSpec.disks). */
export async function busyboxServersDisk(
  dir: string,
  tools: { busybox: string; mkfsErofs: string },
): Promise<DiskSpec> {
  const image = await busyboxErofs(dir, tools, {
    applets: APPLETS,
    dirs: ["proc", "sys", "dev", "tmp", "etc"],
    files: { "etc/passwd": "root:x:0:0:root:/:/bin/sh\n" },
  });
  return { id: DISK_SERIAL, path: image, readonly: true };
}

function serversSpec(): Uint8Array {
  const caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"];
  return Buffer.from(
    JSON.stringify({
      ociVersion: "1.2.0",
      process: {
        terminal: false,
        user: { uid: 0, gid: 0 },
        // -ll: keep listening after each connection; -e: the connection becomes the program's stdio.
        args: ["/bin/sh", "-c", `nc -ll -p ${SINK_PORT} -e wc -c & exec nc -ll -p ${ECHO_PORT} -e cat`],
        env: ["PATH=/bin"],
        cwd: "/",
        capabilities: { bounding: caps, effective: caps, permitted: caps },
        noNewPrivileges: true,
      },
      root: { path: "rootfs", readonly: false },
      hostname: CONTAINER_ID,
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        {
          destination: "/dev",
          type: "tmpfs",
          source: "tmpfs",
          options: ["nosuid", "mode=755", "size=1024k"],
        },
      ],
      linux: {
        cgroupsPath: `/beetroot/${CONTAINER_ID}`,
        // A network namespace given by path is the pod's: in the VM the container shares the VM's network.
        namespaces: [
          { type: "pid" },
          { type: "mount" },
          { type: "uts" },
          { type: "network", path: "/var/run/netns/pod" },
        ],
      },
    }),
  );
}

export interface GuestServers {
  /** Kills the container and deletes it. */
  stop(): Promise<void>;
}

/**
 * Starts the servers container on a VM booted with `busyboxServersDisk()` among its disks, and
 * returns once both ports accept connections from `host` (the container's pod address).
 */
export async function startGuestServers(vm: Vm, reachableAt: string): Promise<GuestServers> {
  const task = vm.guest.service(Task);
  await task.create({
    id: CONTAINER_ID,
    specJson: serversSpec(),
    rootfs: erofsOverTmpfsRootfs(DISK_SERIAL),
    stdio: { stdinPort: 0, stdoutPort: 0, stderrPort: 0, terminal: false },
  });
  const stop = async () => {
    await task.kill({ id: CONTAINER_ID, signal: 9, all: true }).catch(() => {});
    await task.wait({ id: CONTAINER_ID }, { timeoutMs: 10_000 }).catch(() => {});
    await task.delete({ id: CONTAINER_ID }).catch(() => {});
  };
  try {
    await task.start({ id: CONTAINER_ID });
    await waitListening(reachableAt, [SINK_PORT, ECHO_PORT], 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}

async function waitListening(host: string, ports: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect({ host, port });
        s.once("connect", () => {
          s.destroy();
          resolve(true);
        });
        s.once("error", () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
