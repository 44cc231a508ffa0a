import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { busyboxImage } from "./oci-image.ts";
import { type ContainerdVersion, type PrivateContainerd, startContainerd } from "./private-containerd.ts";

/**
 * `beetroot bench run`: what a user of the runtime feels, against a private containerd.
 *  - wall time of `ctr run --rm IMG true`, beetroot vs runc (median of N after one warm-up);
 *  - resident memory of the shim (and of the VMM) while a container runs;
 *  - stdout throughput of `head -c <size> /dev/zero` through `ctr task exec` (vsock → FIFO → ctr).
 */
const IMAGE = "docker.io/beetroot/bench-busybox:latest";

interface Options {
  json: boolean;
  runs: number;
  containerd: ContainerdVersion;
  throughputMiB: number;
}

function parse(args: string[]): Options {
  const o: Options = { json: false, runs: 10, containerd: "2.1", throughputMiB: 256 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--json") o.json = true;
    else if (a === "--runs") o.runs = Math.max(1, Number.parseInt(next(), 10));
    else if (a === "--containerd") {
      const v = next();
      if (v !== "2.1" && v !== "1.7") throw new Error(`--containerd must be 2.1 or 1.7, got ${v}`);
      o.containerd = v;
    } else if (a === "--throughput-mib") o.throughputMiB = Math.max(1, Number.parseInt(next(), 10));
    else throw new Error(`unknown option ${a} (--json, --runs N, --containerd 2.1|1.7, --throughput-mib N)`);
  }
  return o;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function timeRuns(c: PrivateContainerd, runtime: string, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const id = `bench-${runtime.split(".").at(-2)}-${i}`;
    const t0 = performance.now();
    const r = await c.ctr(["run", "--rm", "--runtime", runtime, IMAGE, id, "true"], {
      reject: false,
      timeoutMs: 300_000,
    });
    const ms = performance.now() - t0;
    if (r.exitCode !== 0) throw new Error(`ctr run with ${runtime} failed: ${String(r.stderr).trim()}`);
    if (i > 0) times.push(ms); // the first run warms caches (layer images, page cache)
  }
  return times;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** A stream without progress for this long is a failure with the byte count, not a hang. */
const THROUGHPUT_IDLE_MS = 60_000;

async function throughput(c: PrivateContainerd, id: string, mib: number): Promise<number> {
  const bytes = mib * 1024 * 1024;
  const t0 = performance.now();
  const received = await new Promise<number>((resolve, reject) => {
    const child = spawn(
      c.ctrPath,
      [
        "--address",
        c.address,
        "task",
        "exec",
        "--exec-id",
        "tp",
        id,
        "head",
        "-c",
        String(bytes),
        "/dev/zero",
      ],
      { env: c.env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let n = 0;
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      n += d.length;
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    let last = -1;
    const timer = setInterval(() => {
      if (n !== last) {
        last = n;
        return;
      }
      clearInterval(timer);
      child.kill();
      reject(new Error(`stalled: ${n} of ${bytes} bytes, no progress for ${THROUGHPUT_IDLE_MS / 1000} s`));
    }, THROUGHPUT_IDLE_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      if (code === 0) resolve(n);
      else reject(new Error(`ctr task exec failed (${code}) after ${n} bytes: ${err.trim()}`));
    });
  });
  const seconds = (performance.now() - t0) / 1000;
  if (received !== bytes) throw new Error(`throughput run received ${received} of ${bytes} bytes`);
  return mib / seconds;
}

export async function main(args: string[]): Promise<number> {
  const o = parse(args);
  const c = await startContainerd({ version: o.containerd, shim: "sea" });
  try {
    const tarball = join(c.dir, "image.tar");
    writeFileSync(tarball, busyboxImage(IMAGE));
    await c.ctr(["images", "import", tarball]);

    const beetroot = await timeRuns(c, "io.containerd.beetroot.v1", o.runs);
    const runc = await timeRuns(c, "io.containerd.runc.v2", o.runs);

    await c.ctr(["run", "-d", "--runtime", "io.containerd.beetroot.v1", IMAGE, "bench-rss", "sleep", "3600"]);
    const shimPid = Number(
      readFileSync(
        join(c.dir, "state", "io.containerd.runtime.v2.task", "default", "bench-rss", "shim.pid"),
        "utf8",
      ),
    );
    // Give the shim a moment to settle after Start (GC, lazy module loads).
    await new Promise((r) => setTimeout(r, 2000));
    const shimRss = rssKiB(shimPid);
    const vmmRss = childPids(shimPid).reduce((sum, p) => sum + rssKiB(p), 0);
    let mibPerS: number | null = null;
    let throughputError: string | undefined;
    try {
      mibPerS = await throughput(c, "bench-rss", o.throughputMiB);
    } catch (err) {
      throughputError = err instanceof Error ? err.message : String(err);
    }
    await c.ctr(["task", "kill", "-s", "SIGKILL", "bench-rss"], { reject: false });
    await c.ctr(["task", "delete", "bench-rss"], { reject: false, timeoutMs: 60_000 });
    await c.ctr(["containers", "delete", "bench-rss"], { reject: false });

    const result = {
      containerd: o.containerd,
      runs: o.runs,
      ctrRunTrueMs: { beetroot: median(beetroot), runc: median(runc), beetrootAll: beetroot, runcAll: runc },
      shimRssMiB: shimRss / 1024,
      vmmRssMiB: vmmRss / 1024,
      execStdoutMiBPerS: mibPerS,
      throughputMiB: o.throughputMiB,
      ...(throughputError ? { throughputError } : {}),
    };
    if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      const f = (n: number) => n.toFixed(0);
      process.stdout.write(
        [
          `containerd ${o.containerd}, median of ${o.runs} runs after one warm-up`,
          `ctr run --rm IMG true   beetroot ${f(result.ctrRunTrueMs.beetroot)} ms   runc ${f(result.ctrRunTrueMs.runc)} ms`,
          `shim RSS                ${result.shimRssMiB.toFixed(1)} MiB (VMM processes ${result.vmmRssMiB.toFixed(1)} MiB)`,
          result.execStdoutMiBPerS === null
            ? `exec stdout throughput  FAILED: ${throughputError}`
            : `exec stdout throughput  ${result.execStdoutMiBPerS.toFixed(1)} MiB/s (${o.throughputMiB} MiB through ctr task exec)`,
          "",
        ].join("\n"),
      );
    }
    return throughputError ? 1 : 0;
  } finally {
    await c.stop();
  }
}
