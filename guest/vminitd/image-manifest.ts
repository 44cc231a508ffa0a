/**
 * /usr/lib/beetroot/image.json: what the guest image was built from, written by guest/build and
 * read by vminitd for System.Info (no process needs to run to answer it).
 */
export interface ImageManifest {
  readonly fingerprint: string;
  readonly bunVersion: string;
  /** Debian package versions of what the image carries. */
  readonly crunVersion: string;
  readonly libcVersion: string;
}

export function parseImageManifest(text: string): ImageManifest {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`image manifest is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const m = v as Record<string, unknown>;
  for (const key of ["fingerprint", "bunVersion", "crunVersion", "libcVersion"]) {
    if (typeof m?.[key] !== "string") throw new Error(`image manifest lacks the string field "${key}"`);
  }
  return m as unknown as ImageManifest;
}
