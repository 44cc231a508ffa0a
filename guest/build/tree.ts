/**
 * Directory trees as image inputs: a content hash that is independent of readdir order, mtimes and
 * owners (the image fixes those), and a filtered copy that keeps symlinks as symlinks.
 */
import { createHash, type Hash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  symlinkSync,
} from "node:fs";
import { join } from "node:path";

export type Exclude = (relPath: string) => boolean;

export function excludeByPatterns(patterns: readonly RegExp[]): Exclude {
  return (rel) => patterns.some((p) => p.test(rel));
}

const noExclude: Exclude = () => false;

/** Entries of `root` (relative paths, sorted byte-wise), depth first, directories before their content. */
export function walkTree(root: string, exclude: Exclude = noExclude): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    const names = readdirSync(rel === "" ? root : join(root, rel)).sort((a, b) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)),
    );
    for (const name of names) {
      const child = rel === "" ? name : `${rel}/${name}`;
      if (exclude(child)) continue;
      out.push(child);
      if (lstatSync(join(root, child)).isDirectory()) visit(child);
    }
  };
  visit("");
  return out;
}

export function hashFileInto(hash: Hash, path: string): void {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

export function sha256File(path: string): string {
  const h = createHash("sha256");
  hashFileInto(h, path);
  return h.digest("hex");
}

/** sha256 over every entry's path, type, permission bits and content (or link target). */
export function hashTree(root: string, exclude: Exclude = noExclude): string {
  const h = createHash("sha256");
  for (const rel of walkTree(root, exclude)) {
    const p = join(root, rel);
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) h.update(`L ${rel} ${readlinkSync(p)}\n`);
    else if (st.isDirectory()) h.update(`D ${rel} ${mode}\n`);
    else if (st.isFile()) {
      h.update(`F ${rel} ${mode} ${st.size}\n`);
      hashFileInto(h, p);
    } else throw new Error(`${p}: unsupported file type in an image input (mode ${st.mode.toString(8)})`);
  }
  return h.digest("hex");
}

/**
 * Copies `src` into `dst` (which may exist), keeping symlinks verbatim and permission bits, leaving
 * out excluded paths. Hard links become separate files: the image does not need them.
 */
export function copyTree(src: string, dst: string, exclude: Exclude = noExclude): void {
  mkdirSync(dst, { recursive: true });
  for (const rel of walkTree(src, exclude)) {
    const from = join(src, rel);
    const to = join(dst, rel);
    const st = lstatSync(from);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else if (st.isDirectory()) {
      mkdirSync(to, { recursive: true });
      chmodSync(to, st.mode & 0o7777);
    } else if (st.isFile()) {
      copyFileSync(from, to, constants.COPYFILE_FICLONE);
      chmodSync(to, st.mode & 0o7777);
    } else throw new Error(`${from}: unsupported file type in an image input`);
  }
}
