/** The cgroup v2 file formats the task service reads (containerd/cgroups reads them the same way). */

const MAX_U64 = 0xffff_ffff_ffff_ffffn;

/** A counter or limit; "max" (no limit) is the largest uint64, as containerd reports it. */
export function u64(v: string | undefined): bigint {
  if (v === undefined) return 0n;
  const t = v.trim();
  if (t === "max") return MAX_U64;
  return /^\d+$/.test(t) ? BigInt(t) : 0n;
}

/** "key value" lines (cpu.stat, memory.stat, memory.events). */
export function flatKeyed(text: string | undefined): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of (text ?? "").split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out.set(k, u64(v));
  }
  return out;
}
