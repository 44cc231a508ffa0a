import { cpus as hostCpus, totalmem } from "node:os";
import { invalidArgument } from "./errors.ts";
import type { OciSpec } from "./oci.ts";

/** Annotations an operator (or a RuntimeClass / pod) sets to size the VM explicitly. */
export const CPUS_ANNOTATION = "io.beetroot.vm.cpus";
export const MEMORY_ANNOTATION = "io.beetroot.vm.memory_mib";

/** containerd's CRI plugin puts the pod's aggregate resources on the sandbox container. */
const CRI_SANDBOX_CPU_QUOTA = "io.kubernetes.cri.sandbox-cpu-quota";
const CRI_SANDBOX_CPU_PERIOD = "io.kubernetes.cri.sandbox-cpu-period";
const CRI_SANDBOX_MEMORY = "io.kubernetes.cri.sandbox-memory";

export const DEFAULT_CPUS = 1;
export const DEFAULT_MEMORY_MIB = 512;
/** Guest kernel + vminitd (Bun) + page cache headroom on top of a container's memory limit. */
export const GUEST_OVERHEAD_MIB = 192;
const MIN_MEMORY_MIB = 128;

/** The size of a VM nothing else sizes: the [vm] table of the config file (a RuntimeClass may name another). */
export interface VmDefaults {
  readonly cpus: number;
  readonly memoryMib: number;
}

export const BUILTIN_VM_DEFAULTS: VmDefaults = { cpus: DEFAULT_CPUS, memoryMib: DEFAULT_MEMORY_MIB };

export interface VmSize {
  readonly cpus: number;
  readonly memoryMib: number;
  /** Where the numbers came from, for the log. */
  readonly source: string;
}

function positiveInt(name: string, raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw invalidArgument(`annotation ${name}="${raw}": not a positive integer`);
  const n = Number(raw.trim());
  if (!Number.isSafeInteger(n) || n <= 0)
    throw invalidArgument(`annotation ${name}="${raw}": not a positive integer`);
  return n;
}

function bigNumber(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return Number(v);
  return undefined;
}

/**
 * The VM's vCPUs and memory: explicit annotations win; then the CRI sandbox totals; then the
 * container's own limits (cpu quota/period rounded up, memory limit + guest overhead); else the
 * configured defaults. Clamped to what the host has, because QEMU refuses more vCPUs than it can back only
 * late and confusingly.
 */
export function vmSizeFor(
  spec: OciSpec,
  host = { cpus: hostCpus().length, memoryMib: Math.floor(totalmem() / 2 ** 20) },
  defaults: VmDefaults = BUILTIN_VM_DEFAULTS,
): VmSize {
  const ann = spec.annotations ?? {};
  let cpus: number | undefined;
  let memoryMib: number | undefined;
  const sources: string[] = [];

  if (ann[CPUS_ANNOTATION] !== undefined) {
    cpus = positiveInt(CPUS_ANNOTATION, ann[CPUS_ANNOTATION]);
    sources.push(CPUS_ANNOTATION);
  }
  if (ann[MEMORY_ANNOTATION] !== undefined) {
    memoryMib = positiveInt(MEMORY_ANNOTATION, ann[MEMORY_ANNOTATION]);
    if (memoryMib < MIN_MEMORY_MIB) {
      throw invalidArgument(
        `annotation ${MEMORY_ANNOTATION}=${memoryMib}: the guest needs at least ${MIN_MEMORY_MIB} MiB`,
      );
    }
    sources.push(MEMORY_ANNOTATION);
  }

  const quota = bigNumber(ann[CRI_SANDBOX_CPU_QUOTA]) ?? bigNumber(spec.linux?.resources?.cpu?.quota);
  const period = bigNumber(ann[CRI_SANDBOX_CPU_PERIOD]) ?? bigNumber(spec.linux?.resources?.cpu?.period);
  if (cpus === undefined && quota !== undefined && quota > 0 && period !== undefined && period > 0) {
    cpus = Math.ceil(quota / period);
    sources.push("cpu quota");
  }
  const limit = bigNumber(ann[CRI_SANDBOX_MEMORY]) ?? bigNumber(spec.linux?.resources?.memory?.limit);
  if (memoryMib === undefined && limit !== undefined && limit > 0) {
    memoryMib = Math.max(defaults.memoryMib, Math.ceil(limit / 2 ** 20) + GUEST_OVERHEAD_MIB);
    sources.push("memory limit");
  }

  cpus = Math.min(cpus ?? defaults.cpus, Math.max(1, host.cpus));
  memoryMib = Math.min(memoryMib ?? defaults.memoryMib, Math.max(MIN_MEMORY_MIB, host.memoryMib));
  return { cpus, memoryMib, source: sources.length > 0 ? sources.join(", ") : "defaults" };
}
