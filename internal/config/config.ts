import { readFileSync } from "node:fs";
import { parse, TomlError } from "smol-toml";
import { type BeetrootPaths, beetrootPaths } from "./paths.ts";

/**
 * The operator configuration, `/etc/beetroot/config.toml` (BEETROOT_CONFIG). Every key is
 * optional; a missing file means all defaults. Unknown keys and wrong types are errors that name
 * the file and the key: a typo must not silently fall back to a default.
 *
 * ```toml
 * [vm]
 * accel = "auto"          # auto | kvm | tcg
 * cpus = 1
 * memory_mib = 512
 * boot_timeout_ms = 30000
 * ```
 */
export type Accel = "auto" | "kvm" | "tcg";
export const ACCELS: readonly Accel[] = ["auto", "kvm", "tcg"];

export interface VmConfig {
  /**
   * auto: KVM only after a real probe boot succeeded on this host (cached per host kernel +
   * QEMU version), TCG otherwise. kvm: KVM or a precise error. tcg: always TCG.
   */
  readonly accel: Accel;
  readonly cpus: number;
  readonly memoryMiB: number;
  /** From QEMU spawn to vminitd's first answer. */
  readonly bootTimeoutMs: number;
  /** Limit for the KVM probe boot. */
  readonly kvmProbeTimeoutMs: number;
}

export interface BeetrootConfig {
  readonly vm: VmConfig;
  /** Where it came from ("defaults" when the file does not exist). */
  readonly source: string;
}

export const DEFAULT_VM_CONFIG: VmConfig = {
  accel: "auto",
  cpus: 1,
  memoryMiB: 512,
  bootTimeoutMs: 30_000,
  kvmProbeTimeoutMs: 15_000,
};

export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

type Table = Record<string, unknown>;

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function intIn(table: Table, key: string, min: number, max: number, where: string): number | undefined {
  const v = table[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(`${where}: ${key} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function unknownKeys(table: Table, known: readonly string[], where: string): void {
  for (const key of Object.keys(table)) {
    if (!known.includes(key))
      throw new ConfigError(`${where}: unknown key "${key}" (known: ${known.join(", ")})`);
  }
}

export function parseConfig(text: string, origin: string): BeetrootConfig {
  let doc: Table;
  try {
    doc = parse(text) as Table;
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(`${origin}:${err.line}:${err.column}: ${err.message.split("\n")[0]}`, {
        cause: err,
      });
    }
    throw err;
  }
  unknownKeys(doc, ["vm"], origin);
  const vmRaw = doc.vm ?? {};
  if (!isTable(vmRaw)) throw new ConfigError(`${origin}: [vm] must be a table`);
  const where = `${origin} [vm]`;
  unknownKeys(vmRaw, ["accel", "cpus", "memory_mib", "boot_timeout_ms", "kvm_probe_timeout_ms"], where);
  const accel = vmRaw.accel ?? DEFAULT_VM_CONFIG.accel;
  if (typeof accel !== "string" || !(ACCELS as readonly string[]).includes(accel)) {
    throw new ConfigError(
      `${where}: accel must be one of ${ACCELS.join(", ")}, got ${JSON.stringify(accel)}`,
    );
  }
  return {
    source: origin,
    vm: {
      accel: accel as Accel,
      cpus: intIn(vmRaw, "cpus", 1, 64, where) ?? DEFAULT_VM_CONFIG.cpus,
      memoryMiB: intIn(vmRaw, "memory_mib", 128, 1024 * 1024, where) ?? DEFAULT_VM_CONFIG.memoryMiB,
      bootTimeoutMs: intIn(vmRaw, "boot_timeout_ms", 1000, 600_000, where) ?? DEFAULT_VM_CONFIG.bootTimeoutMs,
      kvmProbeTimeoutMs:
        intIn(vmRaw, "kvm_probe_timeout_ms", 1000, 600_000, where) ?? DEFAULT_VM_CONFIG.kvmProbeTimeoutMs,
    },
  };
}

export function loadConfig(paths: Pick<BeetrootPaths, "configFile"> = beetrootPaths()): BeetrootConfig {
  let text: string;
  try {
    text = readFileSync(paths.configFile, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      return { source: "defaults", vm: DEFAULT_VM_CONFIG };
    throw new ConfigError(`cannot read ${paths.configFile}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, paths.configFile);
}
