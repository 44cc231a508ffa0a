/**
 * Guest asset builders behind `beetroot build <name>`. Each is loaded lazily so building one asset
 * does not load the others' code. `beetroot build all` runs them in this order.
 */
export interface AssetBuilder {
  readonly summary: string;
  readonly load: () => Promise<{ build: (args: string[]) => Promise<number> }>;
}

export const builders: Record<string, AssetBuilder> = {
  kernel: {
    summary: "guest kernel (Linux 6.12, binder, PVH vmlinux)",
    load: () => import("../kernel/build-command.ts"),
  },
  guest: {
    summary: "guest image (EROFS root: vminitd on Bun, crun, binder self-test)",
    load: () => import("../../guest/build/build-command.ts"),
  },
};
