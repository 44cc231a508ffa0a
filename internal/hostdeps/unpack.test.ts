import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { findLoaderLayout, writeWrapper } from "./unpack.ts";

function fakeGlibcSet(): string {
  const root = mkdtempSync(join(tmpdir(), "beetroot set '"));
  const lib = join(root, "usr/lib/x86_64-linux-gnu");
  mkdirSync(lib, { recursive: true });
  mkdirSync(join(root, "usr/lib/x86_64-linux-gnu/gconv"), { recursive: true });
  mkdirSync(join(root, "usr/lib64"), { recursive: true });
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  // The "loader" echoes its arguments, so the test sees exactly what the wrapper passes.
  writeFileSync(join(lib, "ld-linux-x86-64.so.2"), '#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n');
  chmodSync(join(lib, "ld-linux-x86-64.so.2"), 0o755);
  symlinkSync("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", join(root, "usr/lib64/ld-linux-x86-64.so.2"));
  writeFileSync(join(lib, "libc.so.6"), "");
  writeFileSync(join(root, "usr/lib/x86_64-linux-gnu/gconv/UTF-16.so"), "");
  writeFileSync(join(root, "usr/bin/tool"), "");
  return root;
}

describe("loader wrappers", () => {
  it("finds the real loader and the library directories, not plugin dirs", () => {
    const root = fakeGlibcSet();
    const layout = findLoaderLayout(root);
    expect(layout.loader).toBe(join(root, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
    expect(layout.libraryPath).toEqual([join(root, "usr/lib/x86_64-linux-gnu"), join(root, "usr/lib64")]);
  });

  it("writes a wrapper that passes library path, argv0, program and arguments through (quoting intact)", async () => {
    const root = fakeGlibcSet();
    const wrapper = writeWrapper(root, "usr/bin/tool", findLoaderLayout(root));
    const r = await execa(wrapper, ["a b", "it's"]);
    expect(r.stdout.split("\n")).toEqual([
      "[--library-path]",
      `[${join(root, "usr/lib/x86_64-linux-gnu")}:${join(root, "usr/lib64")}]`,
      "[--argv0]",
      `[${wrapper}]`,
      `[${join(root, "usr/bin/tool")}]`,
      "[a b]",
      "[it's]",
    ]);
  });

  it("refuses a set without libc and a program that is not there", () => {
    const root = mkdtempSync(join(tmpdir(), "beetroot-empty-"));
    mkdirSync(join(root, "usr/bin"), { recursive: true });
    expect(() => findLoaderLayout(root)).toThrow(/the set lacks libc6/);
    const full = fakeGlibcSet();
    expect(() => writeWrapper(full, "usr/bin/missing", findLoaderLayout(full))).toThrow(
      /cannot wrap usr\/bin\/missing/,
    );
  });
});
