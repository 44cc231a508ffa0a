import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EMBEDDED_SOURCE, embeddedConfList, loadConfList } from "./config.ts";

describe("CNI configuration loading", () => {
  it("falls back to the embedded default (bridge + host-local on a private range + portmap)", () => {
    const c = loadConfList("/nonexistent/cni/net.d");
    expect(c.source).toBe(EMBEDDED_SOURCE);
    expect(c.list.name).toBe("beetroot");
    expect(c.list.plugins.map((p) => p.type)).toEqual(["bridge", "portmap"]);
    expect(embeddedConfList().list).toEqual(c.list);
  });

  it("takes the lexically first file like containerd, wrapping a single .conf", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetroot-cniconf-"));
    try {
      writeFileSync(join(dir, "README"), "not a config");
      writeFileSync(
        join(dir, "20-b.conflist"),
        JSON.stringify({ cniVersion: "1.0.0", name: "b", plugins: [{ type: "bridge" }] }),
      );
      writeFileSync(
        join(dir, "10-a.conf"),
        JSON.stringify({ cniVersion: "0.4.0", name: "a", type: "ptp", ipMasq: true }),
      );
      const c = loadConfList(dir);
      expect(c.source).toBe(join(dir, "10-a.conf"));
      expect(c.list).toEqual({ cniVersion: "0.4.0", name: "a", plugins: [{ type: "ptp", ipMasq: true }] });
      writeFileSync(
        join(dir, "05-x.conf"),
        JSON.stringify({ cniVersion: "1.0.0", name: "x", plugins: [{ type: "bridge" }] }),
      );
      expect(() => loadConfList(dir)).toThrow(
        /05-x\.conf: holds a "plugins" list but is not named \*\.conflist/,
      );
      writeFileSync(
        join(dir, "05-x.conf"),
        JSON.stringify({ cniVersion: "1.0.0", name: "x", type: "../../bin/sh" }),
      );
      expect(() => loadConfList(dir)).toThrow(/type "..\/..\/bin\/sh" is not a plugin name/);
      writeFileSync(
        join(dir, "05-x.conf"),
        JSON.stringify({ cniVersion: "1.0.0", name: "bad name", type: "bridge" }),
      );
      expect(() => loadConfList(dir)).toThrow(/network name "bad name"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
