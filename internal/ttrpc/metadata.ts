import type { Metadata, MetadataInit } from "./types.ts";

export function toMetadata(init: MetadataInit | undefined): Metadata {
  if (init === undefined) return new Map();
  if (init instanceof Map) return init;
  const md: Metadata = new Map();
  for (const [key, value] of Object.entries(init)) {
    md.set(key, typeof value === "string" ? [value] : [...value]);
  }
  return md;
}

/** Flattens to the wire's repeated KeyValue, one entry per value, in insertion order. */
export function metadataPairs(md: Metadata): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [key, values] of md) for (const value of values) out.push([key, value]);
  return out;
}

/** Groups repeated keys as containerd/ttrpc's `MD.fromRequest` does (appending in wire order). */
export function metadataFromPairs(pairs: ReadonlyArray<readonly [string, string]>): Metadata {
  const md: Metadata = new Map();
  for (const [key, value] of pairs) {
    const list = md.get(key);
    if (list) list.push(value);
    else md.set(key, [value]);
  }
  return md;
}
