import { describe, expect, it } from "vitest";
import { parseDpkgQuery, unavailablePackages } from "./system-packages.ts";

describe("system packages", () => {
  it("counts only fully installed packages", () => {
    const out =
      "qemu-system-x86\tinstalled\t1:7.2+dfsg-7\nlz4\tconfig-files\t1.9.4-1\nbusybox-static:amd64\tinstalled\t1:1.35.0-4\n";
    const m = parseDpkgQuery(out);
    expect([...m.keys()]).toEqual(["qemu-system-x86", "busybox-static"]);
    expect(m.get("busybox-static")?.version).toBe("1:1.35.0-4");
  });
  it("extracts the packages apt could not find", () => {
    const out =
      "E: Unable to locate package golang-github-containerd-ttrpc-dev\nE: Package 'foo' has no installation candidate\n";
    expect(unavailablePackages(out)).toEqual(["golang-github-containerd-ttrpc-dev", "foo"]);
  });
});
