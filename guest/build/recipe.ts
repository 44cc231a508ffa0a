/**
 * What goes into the guest image and how it is laid out: the recipe as data. Everything here is
 * part of the image fingerprint, so changing any of it rebuilds the image.
 * Bump GUEST_RECIPE_VERSION when the builder's behaviour changes in a way this data does not show.
 */
export const GUEST_RECIPE_VERSION = 5;

/** Paths inside the image (must agree with guest/vminitd/paths.ts, which the guest reads). */
export const IMAGE_PATHS = {
  bun: "usr/bin/bun",
  vminitd: "usr/lib/beetroot/vminitd.js",
  sysAddon: "usr/lib/beetroot/vminitd_sys.node",
  selftestDir: "usr/lib/beetroot/selftest",
  /** What the image was built from (fingerprint, package versions), for System.Info. */
  manifest: "usr/lib/beetroot/image.json",
  // /sbin is a symlink to usr/sbin in the merged-/usr userspace tree.
  init: "usr/sbin/init",
} as const;

/** Paths of the guest userspace tree (crun + glibc, from `beetroot setup`) left out of the image. */
export const USERSPACE_EXCLUDES: readonly RegExp[] = [
  /^wrappers(\/|$)/, // host-side loader wrappers, meaningless in the guest
  /^usr\/share\/(doc|man|info|lintian|locale)(\/|$)/,
  /^usr\/lib\/x86_64-linux-gnu\/gconv(\/|$)/, // iconv modules: 8 MB nobody in the guest loads
  /\.a$/, // static libraries
];

/** Empty directories the guest mounts on or writes under (root is read-only). */
export const MOUNT_POINT_DIRS: readonly { path: string; mode: number }[] = [
  { path: "proc", mode: 0o555 },
  { path: "sys", mode: 0o555 },
  { path: "dev", mode: 0o755 },
  { path: "run", mode: 0o755 },
  { path: "tmp", mode: 0o1777 },
  { path: "mnt", mode: 0o755 },
  { path: "root", mode: 0o700 },
  { path: "var", mode: 0o755 },
  { path: "etc", mode: 0o755 },
];

export const SYMLINKS: readonly { path: string; target: string }[] = [
  { path: "etc/mtab", target: "../proc/self/mounts" },
  { path: "var/run", target: "../run" },
  { path: "var/tmp", target: "../tmp" },
];

export const ETC_FILES: Readonly<Record<string, string>> = {
  "etc/passwd":
    "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
  "etc/group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
  "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
  "etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
  "etc/os-release":
    'NAME="beetroot guest"\nID=beetroot-guest\nPRETTY_NAME="beetroot micro-VM guest (vminitd on Bun)"\n',
};

/**
 * mkfs.erofs options besides the paths: no compression. Bun is ~100 MB of the ~118 MB staged, and
 * its cold start (page faults all over the binary) is most of the guest's boot under TCG, where
 * every decompressed page costs emulated CPU. Measured Bun cold start (init exec → first JS line,
 * 3 boots each, loaded 2-core host): uncompressed 0.40–0.58 s (116 MB), lz4hc with 64 KiB clusters
 * 0.68–1.19 s (63 MB), zstd-9 0.86–1.43 s (50–54 MB). Whole boot (bench boot): uncompressed 2.33 s
 * vs lz4hc 2.60 s, and 30 MiB less guest RAM touched (no decompression buffers); docs/boot-time.md.
 * The image costs 116 MB of host disk instead of 63 MB; host page cache holds it either way.
 * -T0 and --all-root make times and owners fixed; the UUID is derived from the fingerprint.
 */
export const MKFS_OPTIONS: readonly string[] = ["-T0", "--all-time", "--all-root"];

/**
 * vminitd ships as JavaScriptCore bytecode next to its source (`vminitd.js` + `vminitd.js.jsc`):
 * Bun loads the `.jsc` instead of parsing and compiling ~260 KB of JS under TCG: boot median
 * 4.2 → 3.1 s in an interleaved A/B on a loaded host (docs/boot-time.md). Bytecode needs CommonJS
 * without `--compile`; the esbuild bundle has no top-level await or import.meta, so the conversion
 * is mechanical.
 * The output is deterministic for a given Bun binary and bundle (same sha256 on rebuild).
 */
export const BUN_BYTECODE_ARGS: readonly string[] = ["build", "--target=bun", "--format=cjs", "--bytecode"];

const WARNINGS = ["-O2", "-Wall", "-Wextra", "-Werror"];
/** gcc flags for the guest's C programs: static, so they need nothing from the guest's libraries. */
export const STATIC_CFLAGS: readonly string[] = ["-static", ...WARNINGS];
/**
 * gcc flags for the Node-API addon Bun loads: a shared object linked against the host's glibc
 * (bookworm's 2.36); the guest's newer glibc (trixie's) still provides every symbol version it
 * uses. Its Node-API symbols are resolved from Bun when it loads the addon.
 */
export const ADDON_CFLAGS: readonly string[] = ["-shared", "-fPIC", ...WARNINGS];

export interface NativeProgram {
  readonly name: string;
  readonly source: string;
  readonly dest: string;
  readonly cflags: readonly string[];
}

/**
 * C code compiled on the host into the image. /sbin/init is a launcher that mounts /proc (which
 * Bun needs before it can start) and execs Bun on vminitd — a `#!` script cannot do that.
 * vminitd_sys is the addon behind vminitd's system calls (guest/native).
 */
export const NATIVE_PROGRAMS: readonly NativeProgram[] = [
  { name: "init", source: "guest/init/init.c", dest: IMAGE_PATHS.init, cflags: STATIC_CFLAGS },
  {
    name: "vminitd_sys",
    source: "guest/native/vminitd_sys.c",
    dest: IMAGE_PATHS.sysAddon,
    cflags: ADDON_CFLAGS,
  },
  {
    name: "binder-roundtrip",
    source: "guest/selftest/binder-roundtrip.c",
    dest: `${IMAGE_PATHS.selftestDir}/binder-roundtrip`,
    cflags: STATIC_CFLAGS,
  },
];
