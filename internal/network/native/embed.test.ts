import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Files that ship inside the bundle are embedded as TypeScript string constants (esbuild and
 * vitest agree on .ts, not on text imports). The canonical file is the one next to it; this test
 * fails when the copy is stale. Refresh with BEETROOT_UPDATE_EMBEDS=1.
 */
const root = join(import.meta.dirname, "../../..");
const embeds = [
  {
    source: "internal/network/native/beetroot_net.c",
    target: "internal/network/native/source.generated.ts",
    name: "beetrootNetSource",
  },
  {
    source: "assets/cni/10-beetroot.conflist",
    target: "internal/network/cni/default-conflist.generated.ts",
    name: "defaultConflistText",
  },
];

function render(name: string, source: string, text: string): string {
  return `// Generated from ${source} by internal/network/native/embed.test.ts (BEETROOT_UPDATE_EMBEDS=1). Do not edit.\nexport const ${name} = ${JSON.stringify(text)};\n`;
}

describe("embedded copies", () => {
  for (const e of embeds) {
    it(`${e.target} matches ${e.source}`, () => {
      const expected = render(e.name, e.source, readFileSync(join(root, e.source), "utf8"));
      if (process.env.BEETROOT_UPDATE_EMBEDS === "1") writeFileSync(join(root, e.target), expected);
      expect(readFileSync(join(root, e.target), "utf8")).toBe(expected);
    });
  }
});
