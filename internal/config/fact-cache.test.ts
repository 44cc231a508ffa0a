import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cachedFact } from "./fact-cache.ts";

const dir = mkdtempSync(join(tmpdir(), "beetroot-facts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("cachedFact", () => {
  it("computes once per key and again when the key changes or the file is damaged", async () => {
    const file = join(dir, "sub", "fact.json");
    let calls = 0;
    const compute = async () => {
      calls++;
      return { version: `v${calls}` };
    };
    expect(await cachedFact(file, { size: 1 }, compute)).toEqual({ version: "v1" });
    expect(await cachedFact(file, { size: 1 }, compute)).toEqual({ version: "v1" });
    expect(calls).toBe(1);
    expect(await cachedFact(file, { size: 2 }, compute)).toEqual({ version: "v2" });
    writeFileSync(file, "{not json");
    expect(await cachedFact(file, { size: 2 }, compute)).toEqual({ version: "v3" });
  });

  it("does not cache a failure", async () => {
    const file = join(dir, "fails.json");
    await expect(cachedFact(file, 1, () => Promise.reject(new Error("no")))).rejects.toThrow("no");
    expect(await cachedFact(file, 1, async () => 42)).toBe(42);
  });
});
