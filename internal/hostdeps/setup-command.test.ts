import { describe, expect, it } from "vitest";
import { requireRoot } from "./setup.ts";
import { parseSetupArgs } from "./setup-command.ts";

describe("setup arguments", () => {
  it("parses flags", () => {
    expect(parseSetupArgs([])).toEqual({ refresh: false, maxListAgeHours: 12, help: false });
    expect(parseSetupArgs(["--refresh", "--max-list-age", "2"])).toEqual({
      refresh: true,
      maxListAgeHours: 2,
      help: false,
    });
    expect(parseSetupArgs(["--max-list-age=0.5"]).maxListAgeHours).toBe(0.5);
  });
  it("rejects bad input precisely", () => {
    expect(() => parseSetupArgs(["--max-list-age"])).toThrow(/needs a number of hours, got nothing/);
    expect(() => parseSetupArgs(["--max-list-age", "soon"])).toThrow(/got "soon"/);
    expect(() => parseSetupArgs(["--frobnicate"])).toThrow(/unknown argument "--frobnicate"/);
  });
  it("requires root and says how", () => {
    expect(() => requireRoot(1000)).toThrow(/must run as root \(uid is 1000\)[\s\S]*sudo npx beetroot setup/);
    expect(() => requireRoot(0)).not.toThrow();
  });
});
