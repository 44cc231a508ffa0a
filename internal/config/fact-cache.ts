import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { isDeepStrictEqual } from "node:util";

/**
 * A host fact that is costly to learn (it runs a program) but fixed while `key` holds, kept in
 * a small JSON file: every shim start asks for the same facts, and spawning `qemu --version` or
 * `dmesg` each time cost ~0.2 s of `ctr run` (docs/shim.md). The key says what the fact depends
 * on (a binary's size and mtime, the boot id); any change, or an unreadable file, computes it
 * again. Concurrent writers are harmless: each renames a complete file into place.
 */
export async function cachedFact<T>(file: string, key: unknown, compute: () => Promise<T>): Promise<T> {
  try {
    const stored = JSON.parse(readFileSync(file, "utf8")) as { key?: unknown; value?: T };
    if (stored.value !== undefined && isDeepStrictEqual(stored.key, key)) return stored.value;
  } catch {
    // missing or unreadable: learn it again
  }
  const value = await compute();
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ key, value })}\n`);
    renameSync(tmp, file);
  } catch {
    // a read-only cache only costs the next caller the same work
  }
  return value;
}
