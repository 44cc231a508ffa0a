import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { busyboxImage } from "./oci-image.ts";
import { type ContainerdVersion, type PrivateContainerd, startContainerd } from "./private-containerd.ts";
import { RUN_PHASES, type RunPhaseName, runPhases } from "./run-phases.ts";

/**
 * `beetroot bench run`: what a user of the runtime feels, against a private containerd.
 *  - wall time of `ctr run --rm IMG true`, beetroot vs runc (median of N after one warm-up), and
 *    where beetroot's goes (phases from containerd's debug log, run-phases.ts);
 *  - resident memory of the shim (2 s and 10 s after `ctr run -d`) and of the VMM while a container runs;
 *  - stdout throughput of `cat` of a <size> file through `ctr task exec` (vsock → FIFO → ctr), and
 *    the same `cat` into /dev/null inside the container (what the guest alone costs).
 *
 * The file lives in the container's writable layer (a guest tmpfs), so the throughput container's
 * VM gets memory for it. Its bytes come from /dev/zero with dd (large blocks): busybox `head -c`
 * alone reaches only ~33 MB/s under TCG and would be what the number measures.
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

const runId = (runtime: string, i: number) => `bench-${runtime.split(".").at(-2)}-${i}`;

async function timeRuns(c: PrivateContainerd, runtime: string, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const id = runId(runtime, i);
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

/** Runs `ctr task exec` and counts its stdout; a stream without progress is an error, not a hang. */
function execCounting(c: PrivateContainerd, id: string, execId: string, argv: string[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const child = spawn(
      c.ctrPath,
      ["--address", c.address, "task", "exec", "--exec-id", execId, id, ...argv],
      {
        env: c.env,
        stdio: ["ignore", "pipe", "pipe"],
      },
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
      reject(
        new Error(
          `${argv.join(" ")}: stalled after ${n} bytes, no progress for ${THROUGHPUT_IDLE_MS / 1000} s`,
        ),
      );
    }, THROUGHPUT_IDLE_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      if (code === 0) resolve(n);
      else
        reject(new Error(`ctr task exec ${argv.join(" ")} failed (${code}) after ${n} bytes: ${err.trim()}`));
    });
  });
}

const THROUGHPUT_FILE = "/tmp/throughput.bin";

/** MiB/s of `cat FILE` to the host, and of `cat FILE >/dev/null` in the guest (the guest's share). */
async function throughput(
  c: PrivateContainerd,
  id: string,
  mib: number,
): Promise<{ toHost: number; inGuest: number }> {
  const bytes = mib * 1024 * 1024;
  const blocks = mib * 16; // 64 KiB blocks
  await execCounting(c, id, "tp-make", [
    "dd",
    "if=/dev/zero",
    `of=${THROUGHPUT_FILE}`,
    "bs=65536",
    `count=${blocks}`,
  ]);
  const timed = async (execId: string, argv: string[]) => {
    const t0 = performance.now();
    const n = await execCounting(c, id, execId, argv);
    return { n, seconds: (performance.now() - t0) / 1000 };
  };
  const guest = await timed("tp-null", ["sh", "-c", `cat ${THROUGHPUT_FILE} >/dev/null`]);
  const host = await timed("tp", ["cat", THROUGHPUT_FILE]);
  if (host.n !== bytes) throw new Error(`throughput run received ${host.n} of ${bytes} bytes`);
  return { toHost: mib / host.seconds, inGuest: mib / guest.seconds };
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
    const log = readFileSync(c.logFile, "utf8");
    const perRun = Array.from({ length: o.runs }, (_, i) =>
      runPhases(log, runId("io.containerd.beetroot.v1", i + 1)),
    );
    const phasesMs: Partial<Record<RunPhaseName, number>> = {};
    for (const { name } of RUN_PHASES) {
      const xs = perRun.map((r) => r[name]).filter((x): x is number => x !== undefined);
      if (xs.length > 0) phasesMs[name] = median(xs);
    }
    // ctr's own start, image and container records, snapshot prepare/remove: the wall time no phase covers.
    const outsideMs = median(
      perRun.map((r, i) => beetroot[i]! - Object.values(r).reduce((a, b) => a + (b ?? 0), 0)),
    );

    // Memory for the throughput file, which lives in the guest's tmpfs (see throughput()).
    const memoryMiB = Math.max(512, 384 + o.throughputMiB * 2);
    await c.ctr([
      "run",
      "-d",
      "--runtime",
      "io.containerd.beetroot.v1",
      "--annotation",
      `io.beetroot.vm.memory_mib=${memoryMiB}`,
      IMAGE,
      "bench-rss",
      "sleep",
      "3600",
    ]);
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
    // And once V8's memory reducer has run (8 s after start-up's allocation burst): what the shim
    // holds for the rest of the pod's life.
    await new Promise((r) => setTimeout(r, 8000));
    const shimRssSettled = rssKiB(shimPid);
    let mibPerS: { toHost: number; inGuest: number } | null = null;
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
      beetrootPhasesMs: phasesMs,
      beetrootOutsidePhasesMs: outsideMs,
      shimRssMiB: shimRss / 1024,
      shimRssSettledMiB: shimRssSettled / 1024,
      vmmRssMiB: vmmRss / 1024,
      execStdoutMiBPerS: mibPerS?.toHost ?? null,
      execInGuestMiBPerS: mibPerS?.inGuest ?? null,
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
          "  where beetroot's goes (median per phase, containerd's debug log):",
          ...Object.entries(phasesMs).map(([name, ms]) => `    ${name.padEnd(32)} ${f(ms)} ms`),
          `    ${"ctr and containerd, outside".padEnd(32)} ${f(outsideMs)} ms`,
          `shim RSS                ${result.shimRssMiB.toFixed(1)} MiB 2 s after start, ${result.shimRssSettledMiB.toFixed(1)} MiB 10 s after (VMM processes ${result.vmmRssMiB.toFixed(1)} MiB)`,
          result.execStdoutMiBPerS === null
            ? `exec stdout throughput  FAILED: ${throughputError}`
            : `exec stdout throughput  ${result.execStdoutMiBPerS.toFixed(1)} MiB/s (cat of ${o.throughputMiB} MiB through ctr task exec; the same cat into /dev/null in the guest: ${result.execInGuestMiBPerS?.toFixed(1)} MiB/s)`,
          "",
        ].join("\n"),
      );
    }
    return throughputError ? 1 : 0;
  } finally {
    await c.stop();
  }
}
