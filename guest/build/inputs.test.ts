import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bunBinary, compileVminitdBytecode, GuestBuildError, projectRoot } from "./inputs.ts";

describe("compileVminitdBytecode (the guest's Bun on the host)", () => {
  const dirs: string[] = [];
  const scratch = () => {
    const d = mkdtempSync(join(tmpdir(), "bt-bytecode-"));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("writes CommonJS with Bun's bytecode marker and a .jsc, identical on rebuild", async () => {
    const d = scratch();
    const bundle = join(d, "vminitd.js");
    writeFileSync(bundle, 'import { writeSync } from "node:fs";\nwriteSync(1, "hi\\n");\n');
    const bun = bunBinary(projectRoot());
    const a = await compileVminitdBytecode(bun, bundle, join(d, "a"));
    const b = await compileVminitdBytecode(bun, bundle, join(d, "b"));
    expect(a.js).toBe(join(d, "a", "vminitd.js"));
    expect(readFileSync(a.js, "utf8")).toMatch(/^\/\/ @bun @bytecode @bun-cjs/);
    expect(statSync(a.jsc).size).toBeGreaterThan(0);
    expect(readFileSync(b.jsc).equals(readFileSync(a.jsc))).toBe(true);
  });

  it("names the failure when Bun cannot compile the bundle", async () => {
    const d = scratch();
    const bundle = join(d, "vminitd.js");
    writeFileSync(bundle, "export const x = ;\n");
    await expect(compileVminitdBytecode(bunBinary(projectRoot()), bundle, join(d, "out"))).rejects.toThrow(
      GuestBuildError,
    );
    await expect(compileVminitdBytecode(bunBinary(projectRoot()), bundle, join(d, "out"))).rejects.toThrow(
      /compiling vminitd to bytecode failed/,
    );
  });
});
