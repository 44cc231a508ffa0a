import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultConflistText } from "../cni/default-conflist.generated.ts";
import { beetrootNetSource } from "./source.generated.ts";

/**
 * Files that ship inside the bundle are embedded as TypeScript string constants (esbuild and
 * vitest agree on .ts, not on text imports). The canonical file is the one named here; this test
 * fails when the embedded copy differs. Refresh with BEETROOT_UPDATE_EMBEDS=1 (then `biome format`).
 */
const root = join(import.meta.dirname, "../../..");
const embeds = [
  {
    source: "internal/network/native/beetroot_net.c",
    target: "internal/network/native/source.generated.ts",
    name: "beetrootNetSource",
    value: beetrootNetSource,
  },
  {
    source: "assets/cni/10-beetroot.conflist",
    target: "internal/network/cni/default-conflist.generated.ts",
    name: "defaultConflistText",
    value: defaultConflistText,
  },
];

describe("embedded copies", () => {
  for (const e of embeds) {
    it(`${e.target} holds ${e.source}`, () => {
      const text = readFileSync(join(root, e.source), "utf8");
      if (process.env.BEETROOT_UPDATE_EMBEDS === "1") {
        writeFileSync(
          join(root, e.target),
          `// Generated from ${e.source} (BEETROOT_UPDATE_EMBEDS=1 npx vitest run internal/network/native/embed.test.ts). Do not edit.\nexport const ${e.name} = ${JSON.stringify(text)};\n`,
        );
        return;
      }
      expect(e.value).toBe(text);
    });
  }
});
