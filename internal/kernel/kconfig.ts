/**
 * Kconfig files as maps. Kconfig silently drops an option whose dependencies are off, so the
 * build checks every option of our fragment against the final .config instead of trusting it.
 */

/** Value as written: `y`, `n` (for "is not set"), a number or a quoted string (quotes kept). */
export type KconfigValues = Map<string, string>;

export function parseKconfig(text: string): KconfigValues {
  const values: KconfigValues = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set) {
      values.set(set[1]!, set[2]!);
      continue;
    }
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset) values.set(unset[1]!, "n");
  }
  return values;
}

export interface ConfigMismatch {
  readonly option: string;
  readonly wanted: string;
  /** `undefined` when the option is absent from .config: Kconfig hid it (a dependency is off). */
  readonly got: string | undefined;
}

export function checkFragment(fragment: KconfigValues, final: KconfigValues): ConfigMismatch[] {
  const mismatches: ConfigMismatch[] = [];
  for (const [option, wanted] of fragment) {
    const got = final.get(option);
    // An option Kconfig does not list at all is off; that satisfies "is not set".
    if (got === wanted || (got === undefined && wanted === "n")) continue;
    mismatches.push({ option, wanted, got });
  }
  return mismatches;
}

export function describeMismatch(m: ConfigMismatch): string {
  const wanted = m.wanted === "n" ? "not set" : m.wanted;
  const got =
    m.got === undefined
      ? "absent (a dependency is off or the option does not exist)"
      : m.got === "n"
        ? "not set"
        : m.got;
  return `${m.option}: wanted ${wanted}, got ${got}`;
}
