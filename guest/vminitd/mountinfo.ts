/** /proc/self/mountinfo: what is mounted where, in mount order. */

export interface MountEntry {
  readonly id: number;
  readonly parentId: number;
  readonly mountPoint: string;
  readonly fstype: string;
  readonly source: string;
  readonly options: string;
}

/** Undoes the kernel's octal escaping of space, tab, newline and backslash (`\040`). */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    if (dash < 6 || fields.length < dash + 3)
      throw new Error(`malformed mountinfo line: ${JSON.stringify(line)}`);
    out.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      mountPoint: unescapeOctal(fields[4] ?? ""),
      options: fields[5] ?? "",
      fstype: fields[dash + 1] ?? "",
      source: unescapeOctal(fields[dash + 2] ?? ""),
    });
  }
  return out;
}
