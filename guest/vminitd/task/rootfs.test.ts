import { describe, expect, it } from "vitest";
import {
  mountRootfs,
  planRootfs,
  type RootfsMountInput,
  type RootfsOps,
  substituteTemplates,
} from "./rootfs.ts";

const dir = "/run/beetroot/containers/c1";
const m = (type: string, opts: Partial<RootfsMountInput> = {}): RootfsMountInput => ({
  type,
  diskSerial: "",
  options: [],
  source: "",
  ...opts,
});

/** What internal/storage/translator.ts emits for an image with `n` layers on tmpfs. */
function shimMounts(n: number): RootfsMountInput[] {
  const out: RootfsMountInput[] = [];
  for (let i = 0; i < n; i++) out.push(m("erofs", { diskSerial: `br-${i}`, options: ["ro"] }));
  out.push(m("tmpfs", { source: "tmpfs", options: ["mode=0755", "size=1048576"] }));
  out.push(
    m("format/mkdir/overlay", {
      source: "overlay",
      options: [
        `X-containerd.mkdir.path={{ mount ${n} }}/upper:0755`,
        `X-containerd.mkdir.path={{ mount ${n} }}/work:0755`,
        `lowerdir=${n === 1 ? "{{ mount 0 }}" : `{{ overlay ${n - 1} 0 }}`}`,
        `upperdir={{ mount ${n} }}/upper`,
        `workdir={{ mount ${n} }}/work`,
      ],
    }),
  );
  return out;
}

describe("planRootfs", () => {
  it("plans the shim's layered overlay: layers top first, upper on the tmpfs", () => {
    const plan = planRootfs(shimMounts(3), dir);
    expect(plan.rootfs).toBe(`${dir}/rootfs`);
    expect(plan.steps.map((s) => [s.target, s.fstype, s.diskSerial ?? s.source, s.flags, s.data])).toEqual([
      [`${dir}/mounts/0`, "erofs", "br-0", 1, ""],
      [`${dir}/mounts/1`, "erofs", "br-1", 1, ""],
      [`${dir}/mounts/2`, "erofs", "br-2", 1, ""],
      [`${dir}/mounts/3`, "tmpfs", "tmpfs", 0, "mode=0755,size=1048576"],
      [
        `${dir}/rootfs`,
        "overlay",
        "overlay",
        0,
        `lowerdir=${dir}/mounts/2:${dir}/mounts/1:${dir}/mounts/0,upperdir=${dir}/mounts/3/upper,workdir=${dir}/mounts/3/work`,
      ],
    ]);
    expect(plan.steps[4]?.mkdirs).toEqual([
      { path: `${dir}/mounts/3/upper`, mode: 0o755 },
      { path: `${dir}/mounts/3/work`, mode: 0o755 },
    ]);
  });

  it("takes a single layer as {{ mount 0 }}", () => {
    const plan = planRootfs(shimMounts(1), dir);
    expect(plan.steps[2]?.data).toBe(
      `lowerdir=${dir}/mounts/0,upperdir=${dir}/mounts/1/upper,workdir=${dir}/mounts/1/work`,
    );
  });

  it("parses mkdir modes and owners", () => {
    const plan = planRootfs(
      [
        m("tmpfs", { source: "tmpfs" }),
        m("format/mkdir/overlay", {
          options: ["X-containerd.mkdir.path={{ mount 0 }}/u:0700:1000:1000", "lowerdir={{ mount 0 }}/u"],
        }),
      ],
      dir,
    );
    expect(plan.steps[1]?.mkdirs).toEqual([{ path: `${dir}/mounts/0/u`, mode: 0o700, uid: 1000, gid: 1000 }]);
  });

  it("refuses what would escape or is unknown, naming the mount", () => {
    expect(() => planRootfs([], dir)).toThrow("no rootfs mounts");
    expect(() => planRootfs([m("bind", { source: "/etc" })], dir)).toThrow(
      'rootfs mount 0 (bind): unsupported filesystem type "bind"',
    );
    expect(() => planRootfs([m("erofs")], dir)).toThrow(/needs a disk serial/);
    expect(() => planRootfs([m("overlay", { options: ["lowerdir=/var/lib/containerd/x"] })], dir)).toThrow(
      /lowerdir "\/var\/lib\/containerd\/x" is not inside an earlier mount/,
    );
    expect(() =>
      planRootfs(
        [
          m("tmpfs"),
          m("format/mkdir/overlay", {
            options: ["X-containerd.mkdir.path=/etc/x", "lowerdir={{ mount 0 }}"],
          }),
        ],
        dir,
      ),
    ).toThrow(/mkdir.path "\/etc\/x" is outside/);
    expect(() =>
      planRootfs(
        [m("tmpfs"), m("mkdir/overlay", { options: ["X-containerd.mkdir.path={{ mount 0 }}/../../../x"] })],
        dir,
      ),
    ).toThrow(/templates in options of a mount without the format\/ prefix/);
    expect(() => planRootfs([m("format/overlay", { options: ["lowerdir={{ mount 0 }}"] })], dir)).toThrow(
      /refers to mount 0, not an earlier one/,
    );
    expect(() =>
      planRootfs([m("tmpfs"), m("format/overlay", { options: ["lowerdir={{ exec rm }}"] })], dir),
    ).toThrow(/unsupported template/);
    expect(() => planRootfs([m("loop/erofs", { diskSerial: "a" })], dir)).toThrow(
      /unsupported transform "loop\/"/,
    );
  });
});

describe("substituteTemplates", () => {
  it("expands overlay ranges in either direction", () => {
    const t = ["/a", "/b", "/c"];
    expect(substituteTemplates("{{ overlay 0 2 }}", t, 3, "x")).toBe("/a:/b:/c");
    expect(substituteTemplates("{{overlay 2 0}}", t, 3, "x")).toBe("/c:/b:/a");
  });
});

describe("mountRootfs", () => {
  it("mounts in order and unwinds on failure", () => {
    const calls: string[] = [];
    let failAt = "";
    const ops: RootfsOps = {
      resolveDisk: (s) => `/dev/vd-${s}`,
      mkdirp: () => {},
      chown: () => {},
      mount: (src, target, fstype) => {
        if (target === failAt) throw new Error("EINVAL");
        calls.push(`mount ${fstype} ${src} ${target}`);
      },
      unmount: (t) => calls.push(`umount ${t}`),
    };
    const plan = planRootfs(shimMounts(1), dir);
    expect(mountRootfs(plan, ops)).toEqual([`${dir}/mounts/0`, `${dir}/mounts/1`, `${dir}/rootfs`]);
    expect(calls[0]).toBe(`mount erofs /dev/vd-br-0 ${dir}/mounts/0`);
    calls.length = 0;
    failAt = `${dir}/rootfs`;
    expect(() => mountRootfs(plan, ops)).toThrow("EINVAL");
    expect(calls.slice(-2)).toEqual([`umount ${dir}/mounts/1`, `umount ${dir}/mounts/0`]);
  });
});
