import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "../log/logger.ts";

const execFileAsync = promisify(execFile);

/**
 * EROFS images built from snapshot directories (overlayfs and native snapshotters), cached under
 * `<cacheDir>/layers/` so every later container of the same image reuses them. A committed snapshot
 * directory never changes, so its identity — real path, device, inode and ctime — is the key: a
 * snapshot recreated at the same path (containerd root wiped) has a new inode/ctime, so a stale
 * image is never reused.
 */
export interface LayerCacheOptions {
  readonly cacheDir: string;
  readonly mkfsErofs: string;
  readonly log: Logger;
  /** Runs `mount`/`umount` for merging layers on the host; tests may replace it. */
  readonly exec?: (file: string, args: readonly string[]) => Promise<void>;
}

export interface CachedImage {
  readonly path: string;
  /** True when this call built it (false: reused from the cache). */
  readonly built: boolean;
}

export function directoryKey(dir: string): string {
  const real = realpathSync(dir);
  const st = statSync(real, { bigint: true });
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  return createHash("sha256")
    .update(
      JSON.stringify({ v: 1, real, dev: String(st.dev), ino: String(st.ino), ctime: String(st.ctimeNs) }),
    )
    .digest("hex");
}

export class LayerCache {
  private readonly dir: string;
  private readonly inflight = new Map<string, Promise<CachedImage>>();
  private readonly exec: (file: string, args: readonly string[]) => Promise<void>;

  constructor(private readonly opts: LayerCacheOptions) {
    this.dir = join(opts.cacheDir, "layers");
    this.exec =
      opts.exec ??
      (async (file, args) => {
        await execFileAsync(file, [...args], { maxBuffer: 1 << 20 });
      });
  }

  imagePath(key: string): string {
    return join(this.dir, `${key}.erofs`);
  }

  /** The EROFS image of one snapshot directory, built on first use. */
  imageOfDirectory(dir: string): Promise<CachedImage> {
    return this.once(directoryKey(dir), (out) => this.mkfs(out, dir));
  }

  /**
   * One EROFS image holding several layers merged as overlayfs would show them (whiteouts applied),
   * for images with more layers than the VM has disk slots. Built from a read-only overlay mount of
   * the layer directories on the host; keyed by the ordered list of layer keys.
   */
  mergedImage(dirsTopFirst: readonly string[]): Promise<CachedImage> {
    const key = createHash("sha256")
      .update(JSON.stringify({ v: 1, merged: dirsTopFirst.map(directoryKey) }))
      .digest("hex");
    return this.once(key, async (out) => {
      mkdirSync(this.dir, { recursive: true });
      const mnt = mkdtempSync(join(this.dir, ".merge-"));
      try {
        // A read-only overlay needs no upper; ≥ 2 lowers are required, a single dir is copied as is.
        if (dirsTopFirst.length === 1) {
          await this.mkfs(out, dirsTopFirst[0]!);
          return;
        }
        await this.exec("mount", [
          "-t",
          "overlay",
          "overlay",
          "-o",
          `ro,lowerdir=${dirsTopFirst.join(":")}`,
          mnt,
        ]);
        try {
          await this.mkfs(out, mnt);
        } finally {
          await this.exec("umount", [mnt]);
        }
      } finally {
        rmSync(mnt, { recursive: true, force: true });
      }
    });
  }

  private async once(key: string, build: (tmpOut: string) => Promise<void>): Promise<CachedImage> {
    const path = this.imagePath(key);
    if (existsSync(path)) return { path, built: false };
    const running = this.inflight.get(key);
    if (running) return running;
    const job = (async (): Promise<CachedImage> => {
      mkdirSync(this.dir, { recursive: true });
      const tmp = join(this.dir, `.${key}.${process.pid}.${Date.now()}.tmp`);
      const started = Date.now();
      try {
        await build(tmp);
        // Atomic: a concurrent builder in another shim either finds the finished file or replaces it
        // with an identical one.
        renameSync(tmp, path);
      } catch (err) {
        rmSync(tmp, { force: true });
        throw err;
      }
      this.opts.log.info("built layer image", { image: path, ms: Date.now() - started });
      return { path, built: true };
    })();
    this.inflight.set(key, job);
    try {
      return await job;
    } finally {
      this.inflight.delete(key);
    }
  }

  private async mkfs(out: string, dir: string): Promise<void> {
    // Uncompressed: building and reading stay cheap under TCG; xattrs (overlay opaque markers) and
    // whiteout devices are kept as they are, so the guest's overlayfs applies them.
    try {
      await execFileAsync(this.opts.mkfsErofs, ["--quiet", out, dir], { maxBuffer: 4 << 20 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`mkfs.erofs of ${dir} failed: ${(e.stderr || e.message).trim()}`);
    }
  }
}
