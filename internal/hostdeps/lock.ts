import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A pid lock file: two `beetroot setup` runs at once would unpack into the same prefixes. A lock
 * left by a dead process is taken over; a live holder is waited for, with a note every 10 s.
 */
export async function withLock<T>(
  file: string,
  log: (line: string) => void,
  body: () => Promise<T>,
): Promise<T> {
  mkdirSync(dirname(file), { recursive: true });
  let waitedSince = 0;
  for (;;) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(file, "utf8").trim());
      } catch {
        continue; // removed between open and read: try again
      }
      if (!Number.isInteger(holder) || !alive(holder)) {
        rmSync(file, { force: true });
        continue;
      }
      const now = Date.now();
      if (waitedSince === 0 || now - waitedSince > 10_000) {
        log(`waiting for another beetroot setup (pid ${holder}) to finish (lock ${file})`);
        waitedSince = now;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await body();
  } finally {
    rmSync(file, { force: true });
  }
}
