import { constants, openSync, statSync } from "node:fs";

/**
 * Opens the bundle's `log` FIFO, which containerd created and reads (it copies every line to its
 * own log). Non-blocking so a missing reader can never wedge the shim: with a reader, O_WRONLY;
 * without one yet (containerd restarting), O_RDWR keeps the pipe open so lines wait in it for the
 * next reader. Returns null when there is no FIFO (a shim started by hand): the shim then logs
 * nowhere, because stdout and stderr are /dev/null by design.
 */
export function openLogFifo(path: string): number | null {
  try {
    if (!statSync(path).isFIFO()) return openSync(path, constants.O_WRONLY | constants.O_APPEND);
  } catch {
    return null;
  }
  try {
    return openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENXIO") return null;
    try {
      return openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    } catch {
      return null;
    }
  }
}
