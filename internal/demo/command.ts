import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { busyboxImage } from "../shim/bench/oci-image.ts";
import { type ContainerdVersion, startContainerd } from "../shim/bench/private-containerd.ts";

const IMAGE = "beetroot.local/busybox:demo";
const RUNTIME = "io.containerd.beetroot.v1";

/**
 * `beetroot demo`: the README's main job. Starts a private containerd (its own root, state and
 * socket, the beetroot shim on its PATH), imports a busybox image built locally from Debian's
 * busybox-static, and runs it with `ctr run --runtime io.containerd.beetroot.v1`. The container
 * prints the kernel it sees: beetroot's guest kernel, not the host's.
 */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      containerd: { type: "string", default: "2.1" },
      snapshotter: { type: "string", default: "overlayfs" },
    },
  });
  const version = values.containerd as ContainerdVersion;
  if (version !== "2.1" && version !== "1.7") {
    process.stderr.write(`beetroot demo: --containerd must be 2.1 or 1.7, not ${values.containerd}\n`);
    return 2;
  }
  const say = (line: string) => process.stdout.write(`[demo] ${line}\n`);
  say(`starting a private containerd ${version}`);
  const c = await startContainerd({ version });
  try {
    say(`containerd listens on ${c.address} (log: ${c.logFile})`);
    const tarball = join(c.dir, "busybox.tar");
    writeFileSync(tarball, busyboxImage(IMAGE));
    await c.ctr(["images", "import", "--snapshotter", values.snapshotter, tarball]);
    say(`imported ${IMAGE} (built from Debian's busybox-static)`);
    const host = (await import("node:os")).release();
    say(`host kernel: ${host}`);
    say(`ctr run --rm --runtime ${RUNTIME} ${IMAGE} demo …`);
    const started = Date.now();
    const run = await c.ctr(
      [
        "run",
        "--rm",
        "--snapshotter",
        values.snapshotter,
        "--runtime",
        RUNTIME,
        IMAGE,
        "demo",
        "sh",
        "-c",
        'echo "hello from a beetroot micro-VM"; echo "guest kernel: $(uname -r)"; echo "cpus: $(nproc)"',
      ],
      { reject: false, timeoutMs: 180_000 },
    );
    process.stdout.write(String(run.stdout));
    if (run.exitCode !== 0) {
      process.stderr.write(String(run.stderr));
      say(`ctr run failed with exit code ${run.exitCode}; containerd's log: ${c.logFile}`);
      return 1;
    }
    say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    await c.stop();
  }
}
