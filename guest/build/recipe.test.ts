import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GUEST_PATHS } from "../vminitd/paths.ts";
import { SELF_TESTS } from "../vminitd/selftests.ts";
import { fingerprintUuid } from "./inputs.ts";
import { IMAGE_PATHS, NATIVE_PROGRAMS } from "./recipe.ts";

describe("guest image recipe", () => {
  it("puts files where vminitd looks for them", () => {
    expect(`/${IMAGE_PATHS.bun}`).toBe(GUEST_PATHS.bun);
    expect(`/${IMAGE_PATHS.vminitd}`).toBe(GUEST_PATHS.vminitd);
    expect(`/${IMAGE_PATHS.selftestDir}`).toBe(GUEST_PATHS.selftestDir);
    expect(`/${IMAGE_PATHS.manifest}`).toBe(GUEST_PATHS.manifest);
    expect(`/${IMAGE_PATHS.sysAddon}`).toBe(GUEST_PATHS.sysAddon);
    for (const t of Object.values(SELF_TESTS)) {
      const program = t.argv[0] ?? "";
      expect(NATIVE_PROGRAMS.map((s) => `/${s.dest}`)).toContain(program);
    }
  });

  it("installs the init launcher as /sbin/init, and it execs Bun on vminitd", () => {
    const init = NATIVE_PROGRAMS.find((p) => p.name === "init");
    expect(init?.dest).toBe(IMAGE_PATHS.init);
    const source = readFileSync(init?.source ?? "", "utf8");
    expect(source).toContain(`#define BUN "${GUEST_PATHS.bun}"`);
    expect(source).toContain(`#define VMINITD "${GUEST_PATHS.vminitd}"`);
  });

  it("derives a well-formed UUID from the fingerprint", () => {
    expect(fingerprintUuid("0123456789abcdef".repeat(4))).toBe("01234567-89ab-cdef-0123-456789abcdef");
  });
});
