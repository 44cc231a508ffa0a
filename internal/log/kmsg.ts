import { constants, openSync, writeSync } from "node:fs";
import type { Level, OrphanSink } from "./logger.ts";

/** syslog priorities, which /dev/kmsg takes as a `<N>` prefix. */
const PRIORITY: Record<Level, number> = { error: 3, warn: 4, info: 6, debug: 7 };

/** Bytes: the kernel refuses longer records (LOG_LINE_MAX); a long line is cut rather than lost. */
const RECORD_MAX = 900;
const ELLIPSIS = Buffer.from("…");

/** The record as UTF-8, at most RECORD_MAX bytes, never ending inside a character. */
function recordBytes(record: string): Buffer {
  const bytes = Buffer.from(record);
  if (bytes.length <= RECORD_MAX) return bytes;
  let end = RECORD_MAX - ELLIPSIS.length;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return Buffer.concat([bytes.subarray(0, end), ELLIPSIS]);
}

/**
 * An OrphanSink writing to the kernel log (`dmesg`, `journalctl -k`): where a shim's warnings and
 * errors go once containerd stopped reading its `log` FIFO — the teardown that follows the last
 * Delete, a SIGTERM after containerd went away — so a failed release is still on record. Opened on
 * first use; a host without it (no root, no /dev/kmsg) loses those lines as before.
 */
export function kmsgSink(tag: string, path = "/dev/kmsg"): OrphanSink {
  let fd: number | null | undefined;
  return (level, line) => {
    if (fd === undefined) {
      try {
        fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_APPEND);
      } catch {
        fd = null;
      }
    }
    if (fd === null) return;
    const record = `<${PRIORITY[level]}>${tag}: ${line.trimEnd()}`;
    try {
      writeSync(fd, Buffer.concat([recordBytes(record), Buffer.from("\n")]));
    } catch {
      // Rate-limited or gone: the line is lost, the shim goes on.
    }
  };
}
