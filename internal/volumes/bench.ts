import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { busyboxImage } from "../shim/bench/oci-image.ts";
import { type PrivateContainerd, startContainerd } from "../shim/bench/private-containerd.ts";

/**
 * `beetroot bench volumes`: a host directory bind-mounted into a container, beetroot (virtio-fs)
 * beside runc (a plain bind mount) in the same run, on a private containerd 2.1:
 *  - sequential write of a <size> file (dd, 1 MiB blocks, fsync at the end) and, after dropping the
 *    page caches (the host's, and the guest's for beetroot), its sequential read;
 *  - <files> small files created, stat'ed and unlinked (one touch, one ls -l and one rm for all of
 *    them: under TCG a process per file would measure fork, not the file system; busybox xargs
 *    garbled names at its batch boundaries here).
 * Timed inside the container with /proc/uptime (10 ms), so neither ctr nor the VM boot counts.
 */
const IMAGE = "docker.io/beetroot/bench-volumes:latest";

interface Options {
  json: boolean;
  sizeMiB: number;
  files: number;
}

function parse(args: string[]): Options {
  const o: Options = { json: false, sizeMiB: 256, files: 10_000 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return Math.max(1, Number.parseInt(v, 10));
    };
    if (a === "--json") o.json = true;
    else if (a === "--size-mib") o.sizeMiB = next();
    else if (a === "--files") o.files = next();
    else throw new Error(`unknown option ${a} (--json, --size-mib N, --files N)`);
  }
  return o;
}

const UPTIME = "$(cut -d' ' -f1 /proc/uptime)";
const timed = (name: string, cmd: string) => `a=${UPTIME}; ${cmd}; b=${UPTIME}; echo "${name} $a $b"`;

/** The containers' scripts, one `PHASE start end` line per phase; the host drops its caches between. */
function scripts(o: Options): [string, string] {
  return [
    [
      "set -e",
      timed("write", `dd if=/dev/zero of=/vol/seq bs=1M count=${o.sizeMiB} conv=fsync 2>/dev/null`),
    ].join("\n"),
    [
      "set -e",
      // The guest's page cache (beetroot) or the host's (runc, where the host just dropped it).
      "sync; echo 3 > /proc/sys/vm/drop_caches",
      timed("read", "dd if=/vol/seq of=/dev/null bs=1M 2>/dev/null"),
      "rm /vol/seq; mkdir /vol/small; cd /vol/small",
      `seq 1 ${o.files} | sed 's/^/f/' > /tmp/names`,
      timed("create", "touch $(cat /tmp/names)"),
      `n=$(ls | wc -l); [ "$n" -eq ${o.files} ] || { echo "created $n of ${o.files} files" >&2; exit 1; }`,
      timed("stat", "ls -l > /dev/null"),
      timed("unlink", "rm $(cat /tmp/names)"),
      "cd /; rmdir /vol/small",
    ].join("\n"),
  ];
}

export interface VolumeBench {
  readonly writeMiBps: number;
  readonly readMiBps: number;
  /** Files per second through create + stat + unlink. */
  readonly smallFilesPerSec: number;
  readonly phasesS: Record<string, number>;
}

export function parseBenchOutput(stdout: string, o: Options): VolumeBench {
  const phasesS: Record<string, number> = {};
  for (const line of stdout.split("\n")) {
    const m = /^(write|read|create|stat|unlink) ([\d.]+) ([\d.]+)$/.exec(line.trim());
    if (m) phasesS[m[1]!] = Math.max(Number(m[3]) - Number(m[2]), 0.01);
  }
  for (const p of ["write", "read", "create", "stat", "unlink"])
    if (phasesS[p] === undefined) throw new Error(`no "${p}" timing in the container's output:\n${stdout}`);
  const small = phasesS.create! + phasesS.stat! + phasesS.unlink!;
  return {
    writeMiBps: o.sizeMiB / phasesS.write!,
    readMiBps: o.sizeMiB / phasesS.read!,
    smallFilesPerSec: o.files / small,
    phasesS,
  };
}

async function runPart(
  c: PrivateContainerd,
  runtime: string,
  dir: string,
  o: Options,
  part: string,
  n: number,
) {
  const r = await c.ctr(
    [
      "run",
      "--rm",
      "--privileged", // to drop the page cache (the guest's own, under beetroot)
      "--runtime",
      runtime,
      "--annotation",
      `io.beetroot.vm.memory_mib=${Math.max(512, 256 + o.sizeMiB)}`,
      "--mount",
      `type=bind,src=${dir},dst=/vol,options=rbind:rw`,
      IMAGE,
      `bench-vol-${runtime.split(".").at(-2)}-${n}`,
      "sh",
      "-c",
      part,
    ],
    { reject: false, timeoutMs: 900_000 },
  );
  if (r.exitCode !== 0) throw new Error(`${runtime}: ${String(r.stderr).trim() || String(r.stdout).trim()}`);
  return String(r.stdout);
}

async function runOnce(c: PrivateContainerd, runtime: string, dir: string, o: Options): Promise<VolumeBench> {
  const [write, rest] = scripts(o);
  let out = await runPart(c, runtime, dir, o, write, 1);
  // Reads then come from the disk through each runtime's path, not from the host's page cache.
  writeFileSync("/proc/sys/vm/drop_caches", "3");
  out += await runPart(c, runtime, dir, o, rest, 2);
  return parseBenchOutput(out, o);
}

export async function main(args: string[]): Promise<number> {
  const o = parse(args);
  const c = await startContainerd({ version: "2.1", shim: "sea" });
  const dir = mkdtempSync(join(c.dir, "vol-"));
  try {
    writeFileSync(join(c.dir, "img.tar"), busyboxImage(IMAGE));
    await c.ctr(["images", "import", join(c.dir, "img.tar")]);
    const runc = await runOnce(c, "io.containerd.runc.v2", dir, o);
    const beetroot = await runOnce(c, "io.containerd.beetroot.v1", dir, o);
    const ratio = (k: "writeMiBps" | "readMiBps" | "smallFilesPerSec") => beetroot[k] / runc[k];
    const result = {
      sizeMiB: o.sizeMiB,
      files: o.files,
      share: "virtio-fs (virtiofsd --cache=metadata --allow-mmap; QEMU has no DAX window for vhost-user-fs)",
      beetroot,
      runc,
      ratioToRunc: {
        write: ratio("writeMiBps"),
        read: ratio("readMiBps"),
        smallFiles: ratio("smallFilesPerSec"),
      },
      targets: { readMiBps: 200, writeMiBps: 100, smallFilesPerSec: 1000 },
    };
    if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      const row = (name: string, b: number, r: number, unit: string, target: number) =>
        `${name.padEnd(22)} ${b.toFixed(1).padStart(9)} ${r.toFixed(1).padStart(9)}   ${(b / r).toFixed(2).padStart(5)}x   ${unit} (target ≥ ${target}: ${b >= target ? "met" : "missed"})`;
      process.stdout.write(
        [
          `volume bench: ${o.sizeMiB} MiB sequential, ${o.files} small files, a host dir bind-mounted at /vol`,
          `${"".padEnd(22)} ${"beetroot".padStart(9)} ${"runc".padStart(9)}   ratio`,
          row("sequential write", beetroot.writeMiBps, runc.writeMiBps, "MiB/s", 100),
          row("sequential read", beetroot.readMiBps, runc.readMiBps, "MiB/s", 200),
          row(
            "small files",
            beetroot.smallFilesPerSec,
            runc.smallFilesPerSec,
            "files/s (create+stat+unlink)",
            1000,
          ),
          "",
        ].join("\n"),
      );
    }
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await c.stop();
  }
}
