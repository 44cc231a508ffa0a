import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { type TarEntry, tar } from "./tar.ts";

/**
 * OCI image-layout archives built locally (no registry on these machines), for `ctr image import`.
 * The base image is Debian's busybox-static with every applet linked into /bin.
 */
export const BUSYBOX_STATIC = "/bin/busybox";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Blob {
  readonly digest: string;
  readonly size: number;
  readonly data: Buffer;
}

function blob(data: Buffer | string): Blob {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  return { digest: `sha256:${sha256(buf)}`, size: buf.length, data: buf };
}

export interface ImageSpec {
  /** Full reference, e.g. `docker.io/beetroot/busybox:test`. */
  readonly name: string;
  /** Bottom layer first. */
  readonly layers: readonly (readonly TarEntry[])[];
  readonly cmd?: readonly string[];
  readonly env?: readonly string[];
}

export function ociArchive(spec: ImageSpec): Buffer {
  const layerBlobs = spec.layers.map((entries) => blob(tar(entries)));
  const config = blob(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: {
        Env: spec.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Cmd: spec.cmd ?? ["/bin/sh"],
      },
      rootfs: { type: "layers", diff_ids: layerBlobs.map((l) => l.digest) },
      history: layerBlobs.map((_, i) => ({ created_by: `beetroot test layer ${i}` })),
    }),
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: config.digest,
        size: config.size,
      },
      layers: layerBlobs.map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: l.digest,
        size: l.size,
      })),
    }),
  );
  const tag = spec.name.slice(spec.name.lastIndexOf(":") + 1);
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: manifest.digest,
        size: manifest.size,
        annotations: { "io.containerd.image.name": spec.name, "org.opencontainers.image.ref.name": tag },
      },
    ],
  });
  const blobs = new Map<string, Blob>();
  for (const b of [...layerBlobs, config, manifest]) blobs.set(b.digest, b);
  const entries: TarEntry[] = [
    { type: "file", path: "oci-layout", data: JSON.stringify({ imageLayoutVersion: "1.0.0" }) },
    { type: "file", path: "index.json", data: index },
    { type: "dir", path: "blobs" },
    { type: "dir", path: "blobs/sha256" },
    ...[...blobs.values()].map(
      (b): TarEntry => ({
        type: "file",
        path: `blobs/sha256/${b.digest.slice("sha256:".length)}`,
        data: b.data,
      }),
    ),
  ];
  return tar(entries);
}

/** A root filesystem layer with busybox and a symlink per applet in /bin. */
export function busyboxLayer(busybox = BUSYBOX_STATIC): TarEntry[] {
  const applets = execFileSync(busybox, ["--list"])
    .toString()
    .split("\n")
    .filter((a) => a !== "" && a !== "busybox");
  const entries: TarEntry[] = ["bin", "dev", "etc", "proc", "sys", "tmp", "root", "var"].map((d) => ({
    type: "dir",
    path: d,
    mode: d === "tmp" ? 0o1777 : 0o755,
  }));
  entries.push({ type: "file", path: "bin/busybox", data: readFileSync(busybox), mode: 0o755 });
  for (const a of applets) entries.push({ type: "symlink", path: `bin/${a}`, target: "busybox" });
  entries.push({ type: "file", path: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n" });
  entries.push({ type: "file", path: "etc/group", data: "root:x:0:\n" });
  return entries;
}

/** busybox plus `extraLayers` small layers on top (each adds /layers/N; the last one deletes /layers/0). */
export function busyboxImage(name: string, extraLayers = 0): Buffer {
  const layers: TarEntry[][] = [busyboxLayer()];
  for (let i = 0; i < extraLayers; i++) {
    const layer: TarEntry[] = [
      { type: "dir", path: "layers" },
      { type: "file", path: `layers/${i}`, data: `layer ${i}\n` },
    ];
    if (i === extraLayers - 1 && i > 0) layer.push({ type: "whiteout", path: "layers/0" });
    layers.push(layer);
  }
  return ociArchive({ name, layers });
}
