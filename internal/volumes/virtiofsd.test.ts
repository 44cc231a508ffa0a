import { describe, expect, it } from "vitest";
import { VOLUME_SHARE_TAG as GUEST_TAG, VOLUMES_DIR } from "../../guest/vminitd/task/volumes.ts";
import { buildQemuArgs } from "../vm/qemu-args.ts";
import { GUEST_VOLUMES_DIR, VOLUME_SHARE_TAG, virtiofsdArgs } from "./virtiofsd.ts";

describe("the volume share's contract", () => {
  it("host and guest agree on the tag and the guest directory", () => {
    expect(GUEST_TAG).toBe(VOLUME_SHARE_TAG);
    expect(VOLUMES_DIR).toBe(GUEST_VOLUMES_DIR);
  });

  it("virtiofsd serves only the share, sandboxed, metadata cached, data direct", () => {
    expect(virtiofsdArgs("/run/b/vm/x/virtiofsd.sock", "/run/b/vm/x/volumes")).toEqual([
      "--socket-path=/run/b/vm/x/virtiofsd.sock",
      "--shared-dir=/run/b/vm/x/volumes",
      "--sandbox=namespace",
      "--cache=metadata",
      "--allow-mmap",
      "--xattr",
      "--announce-submounts",
    ]);
  });

  it("QEMU gets a vhost-user-fs device on virtiofsd's socket only when asked", () => {
    const base = {
      kernel: "/k",
      cmdline: "console=ttyS0",
      accel: "tcg" as const,
      cpus: 1,
      memoryMiB: 512,
      disks: [{ id: "root", path: "/r", readonly: true }],
      qmpSocket: "/q",
      consoleLog: "/c",
      vhostUserSocket: "/v",
    };
    expect(buildQemuArgs(base).join(" ")).not.toContain("vhost-user-fs");
    const args = buildQemuArgs({ ...base, volumeSocket: "/run/b/vm/x/virtiofsd.sock" }).join(" ");
    expect(args).toContain("-chardev socket,id=volumes,path=/run/b/vm/x/virtiofsd.sock");
    expect(args).toContain(`-device vhost-user-fs-device,chardev=volumes,tag=${VOLUME_SHARE_TAG}`);
  });
});
