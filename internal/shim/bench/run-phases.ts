/**
 * Where one `ctr run --rm … true` spends its time, read back from the private containerd's debug log:
 * containerd's own lines (snapshot prepare/remove, the shim's disconnect) and the shim's, which reach
 * that log through the `log` FIFO. Each phase runs from one marker line to the next; a phase whose
 * lines are missing is left out rather than guessed.
 */

export const RUN_PHASES = [
  // containerd execs `start`, which spawns the server and waits until it listens.
  { name: "ctr → shim serving", from: /msg="prepare snapshot"/, to: /msg="shim serving"/ },
  // containerd connects and sends Create; the shim makes the netns, runs CNI ADD, spawns QEMU.
  { name: "serving → VM booting", from: /msg="shim serving"/, to: /msg="booting VM"/ },
  { name: "netns + CNI ADD + boot", from: /msg="booting VM"/, to: /msg="VM running"/ },
  { name: "guest network", from: /msg="VM running"/, to: /msg="VM on its pod network"/ },
  {
    name: "stdio + rootfs + crun create",
    from: /msg="VM on its pod network"/,
    to: /msg="container created"/,
  },
  { name: "start → exit reported", from: /msg="container created"/, to: /msg="process exited"/ },
  { name: "exit → Delete answered", from: /msg="process exited"/, to: /msg="container deleted"/ },
  // Shutdown, the connection close, containerd's dead-shim `delete` (which it waits for), bundle removal.
  // ("removed snapshot" comes later from containerd's garbage collector, off ctr's path: not a phase.)
  { name: "Shutdown + containerd's delete", from: /msg="container deleted"/, to: /msg="remove snapshot"/ },
] as const;

export type RunPhaseName = (typeof RUN_PHASES)[number]["name"];

const TIME_RE = /^time="?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:\d\d)?/;

/** Milliseconds since the epoch of a logrus line (containerd writes ns and an offset, the shim ms and Z). */
function lineTime(line: string): number | undefined {
  const m = TIME_RE.exec(line);
  if (!m) return undefined;
  const [date, frac = ""] = m[1]!.split(".");
  const ms = Date.parse(`${date}.${frac.padEnd(3, "0").slice(0, 3)}${m[2] ?? "Z"}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The phases of the run of container `id`. Its lines are those naming it (`id=`, `key=`, or a
 * snapshot key ending in `/id`), plus the launcher's "VM running", which names the VM instead; runs
 * must not overlap in the log (bench runs them one after another).
 */
export function runPhases(log: string, id: string): Partial<Record<RunPhaseName, number>> {
  const start = log.indexOf(`key=${id} `);
  if (start < 0) return {};
  const names = new RegExp(`[=/]${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=[ "]|$)`);
  const lines = log
    .slice(log.lastIndexOf("\n", start) + 1)
    .split("\n")
    .filter((l) => names.test(l) || /msg="VM running"/.test(l));
  const at = (re: RegExp): number | undefined => {
    const line = lines.find((l) => re.test(l));
    return line === undefined ? undefined : lineTime(line);
  };
  const out: Partial<Record<RunPhaseName, number>> = {};
  for (const p of RUN_PHASES) {
    const from = at(p.from);
    const to = at(p.to);
    if (from !== undefined && to !== undefined && to >= from) out[p.name] = to - from;
  }
  return out;
}
