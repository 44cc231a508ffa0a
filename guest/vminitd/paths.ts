/** Where things live inside the guest image (laid out by guest/build). */
export const GUEST_PATHS = {
  bun: "/usr/bin/bun",
  vminitd: "/usr/lib/beetroot/vminitd.js",
  /** The Node-API addon behind sys/libc.ts (guest/native/vminitd_sys.c). */
  sysAddon: "/usr/lib/beetroot/vminitd_sys.node",
  crun: "/usr/bin/crun",
  selftestDir: "/usr/lib/beetroot/selftest",
  manifest: "/usr/lib/beetroot/image.json",
  /** Written by System.ConfigureNetwork (network-service.ts), bound into containers on the VM's network. */
  podResolvConf: "/run/beetroot/resolv.conf",
  binderfs: "/dev/binderfs",
} as const;
