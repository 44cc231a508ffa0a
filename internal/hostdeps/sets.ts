import { compareDebianVersions, upstreamVersion } from "./debian-version.ts";
import type { RootRequest } from "./resolver.ts";

/**
 * The recipe: which packages beetroot takes from newer Debian suites and how each set is laid out.
 * Bump RECIPE_VERSION whenever the meaning of a set changes in a way its package list does not
 * show (layout, wrappers, exclusions), so cached prefixes are rebuilt.
 */
export const RECIPE_VERSION = 1;

/** Packages installed into the system from the machine's own suite with apt-get. */
export const SYSTEM_PACKAGES = [
  "qemu-system-x86",
  "containernetworking-plugins",
  "iproute2",
  "iptables",
  "nftables",
  "erofs-utils",
  "busybox-static",
  "build-essential",
  "bc",
  "bison",
  "flex",
  "libelf-dev",
  "libssl-dev",
  "cpio",
  "lz4",
  "zstd",
  // The Go peer of the TTRPC interop tests (test/ttrpc/gopeer) builds offline in GOPATH mode from
  // these; trixie's ttrpc 1.2 (a prefix set below) imports google.golang.org/protobuf, which
  // bookworm's ttrpc 1.1 does not pull in.
  "golang-go",
  "golang-github-containerd-ttrpc-dev",
  "golang-google-protobuf-dev",
  // containerd's default runtime. trixie's and sid's runc need glibc 2.38 and re-exec themselves
  // through /proc/self/exe, so they cannot run through a loader wrapper: the host's own runc it is.
  "runc",
] as const;

/** Files from the system packages that other parts of beetroot use directly. */
export const SYSTEM_FILES = {
  qemu: "/usr/bin/qemu-system-x86_64",
  cniPluginDir: "/usr/lib/cni",
  busyboxStatic: "/bin/busybox",
  runc: "/usr/sbin/runc",
} as const;

export type Suite = "trixie" | "sid";

export interface PrefixSet {
  /** Directory name under `prefixDir` and key in the manifest. */
  readonly name: string;
  readonly suite: Suite;
  readonly roots: readonly RootRequest[];
  /** Unpack the Depends/Pre-Depends closure too (sets that bring their own glibc). */
  readonly closure: boolean;
  /**
   * Create the merged-/usr links (`bin`, `sbin`, `lib`, `lib64` → `usr/…`) before unpacking, so
   * packages that still ship `/lib/…` land where the loader looks — as on a trixie system.
   */
  readonly usrMerged: boolean;
  /**
   * Executables (paths inside the set) that need the set's own glibc: each gets a wrapper in
   * `<set>/wrappers/` that runs it through the set's ld.so with `--library-path`.
   */
  readonly wrap: readonly string[];
  /** Files the rest of beetroot uses, by role, as paths inside the set (or `wrappers/<name>`). */
  readonly files: Readonly<Record<string, string>>;
  /** Dependencies of this set never unpacked (besides MAINTAINER_ONLY), each with its reason. */
  readonly exclude?: readonly string[];
  /** Commands proving the unpacked set runs on this host: file role + args, stdout must match. */
  readonly verify: readonly {
    readonly file: string;
    readonly args: readonly string[];
    readonly expect: RegExp;
  }[];
}

function line(prefix: string): Pick<RootRequest, "accepts" | "describe"> {
  return { accepts: (v) => upstreamVersion(v).startsWith(`${prefix}.`), describe: `${prefix}.x` };
}

function atLeast(min: string): Pick<RootRequest, "accepts" | "describe"> {
  return { accepts: (v) => compareDebianVersions(upstreamVersion(v), min) >= 0, describe: `>= ${min}` };
}

/**
 * Packages that only serve maintainer scripts or package management. An unpacked prefix runs no
 * maintainer scripts, so following these would only add an unused perl and dpkg.
 */
export const MAINTAINER_ONLY = new Set([
  "debconf",
  "debconf-2.0",
  "cdebconf",
  "adduser",
  "dpkg",
  "init-system-helpers",
  "perl-base",
  "sensible-utils",
  "lsb-base",
  "sysvinit-utils",
  "usrmerge",
  "usr-is-merged",
]);

const containerdFiles = {
  containerd: "usr/bin/containerd",
  ctr: "usr/bin/ctr",
  shimRuncV2: "usr/bin/containerd-shim-runc-v2",
};

const containerdVerify = [
  { file: "containerd", args: ["--version"], expect: /containerd/ },
  { file: "ctr", args: ["--version"], expect: /ctr/ },
];

export const PREFIX_SETS: readonly PrefixSet[] = [
  {
    // containerd's Go binaries need glibc >= 2.34 only, so they run on bookworm's libc as they are.
    // Its runc dependency is satisfied by the host's runc (see SYSTEM_PACKAGES).
    name: "containerd-2.1",
    suite: "sid",
    roots: [{ name: "containerd", ...line("2.1") }],
    closure: false,
    usrMerged: false,
    wrap: [],
    files: containerdFiles,
    verify: containerdVerify,
  },
  {
    name: "containerd-1.7",
    suite: "trixie",
    roots: [{ name: "containerd", ...line("1.7") }],
    closure: false,
    usrMerged: false,
    wrap: [],
    files: containerdFiles,
    verify: containerdVerify,
  },
  {
    name: "vhost-device-vsock",
    suite: "sid",
    roots: [{ name: "vhost-device-vsock" }],
    closure: false,
    usrMerged: false,
    wrap: [],
    files: { vhostDeviceVsock: "usr/bin/vhost-device-vsock" },
    verify: [{ file: "vhostDeviceVsock", args: ["--version"], expect: /vsock/ }],
  },
  {
    // mkfs.erofs >= 1.8 is what containerd's erofs snapshotter needs; trixie builds it against
    // glibc 2.38+, hence the set carries trixie's libc and runs through its loader.
    name: "erofs-utils",
    suite: "trixie",
    roots: [{ name: "erofs-utils", ...atLeast("1.8") }],
    closure: true,
    usrMerged: true,
    wrap: ["usr/bin/mkfs.erofs", "usr/bin/fsck.erofs", "usr/bin/dump.erofs"],
    files: {
      mkfsErofs: "wrappers/mkfs.erofs",
      fsckErofs: "wrappers/fsck.erofs",
      dumpErofs: "wrappers/dump.erofs",
    },
    verify: [{ file: "mkfsErofs", args: ["--version"], expect: /mkfs\.erofs.*1\.(8|9|\d\d)/ }],
  },
  {
    // Host paths into pod VMs (internal/volumes): virtio-fs through QEMU's vhost-user-fs device.
    // Built against glibc 2.39+, so it runs through the set's own loader. `uidmap` (newuidmap for
    // virtiofsd's unprivileged mode) is left out: the shim runs virtiofsd as root.
    name: "virtiofsd",
    suite: "sid",
    roots: [{ name: "virtiofsd", ...atLeast("1.10") }],
    closure: true,
    usrMerged: true,
    wrap: ["usr/libexec/virtiofsd"],
    exclude: ["uidmap", "account-utils-passwd"],
    files: { virtiofsd: "wrappers/virtiofsd" },
    verify: [{ file: "virtiofsd", args: ["--version"], expect: /virtiofsd/ }],
  },
  {
    name: "linux-source-6.12",
    suite: "trixie",
    roots: [{ name: "linux-source-6.12" }],
    closure: false,
    usrMerged: false,
    wrap: [],
    files: { tarball: "usr/src/linux-source-6.12.tar.xz" },
    verify: [],
  },
  {
    // containerd's Go ttrpc with streaming (>= 1.2; bookworm packages 1.1.1) for the TTRPC interop
    // tests and `bench ttrpc`: Go sources only, put first on GOPATH ahead of Debian's /usr/share/gocode.
    name: "go-ttrpc",
    suite: "trixie",
    roots: [{ name: "golang-github-containerd-ttrpc-dev", ...atLeast("1.2") }],
    closure: false,
    usrMerged: false,
    wrap: [],
    files: { gopath: "usr/share/gocode" },
    verify: [],
  },
  {
    // The guest's userspace besides Bun and vminitd: crun (bookworm's 1.8 rejects containerd 2.x
    // specs) with trixie's glibc. This tree is copied into the guest image as its root.
    name: "guest-userspace",
    suite: "trixie",
    roots: [{ name: "crun", ...atLeast("1.21") }, { name: "libc6" }],
    closure: true,
    usrMerged: true,
    wrap: ["usr/bin/crun"],
    files: {
      crun: "usr/bin/crun",
      crunWrapper: "wrappers/crun",
      dynamicLoader: "usr/lib64/ld-linux-x86-64.so.2",
    },
    verify: [{ file: "crunWrapper", args: ["--version"], expect: /crun version/ }],
  },
];
