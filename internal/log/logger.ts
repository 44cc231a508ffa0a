import { writeSync } from "node:fs";

export type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export type Fields = Record<string, string | number | boolean | undefined | null>;

/**
 * A structured logger in logrus' text format (`time=… level=… msg=… key=value`), which is what
 * containerd itself writes and what it copies verbatim from a shim's `log` FIFO. Writes are
 * synchronous on a file descriptor: a shim may be killed at any moment and a SEA cannot run
 * worker-thread transports, so nothing is buffered.
 */
export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  with(fields: Fields): Logger;
}

function quote(value: string): string {
  return /^[A-Za-z0-9_.:/@+-]+$/.test(value) ? value : JSON.stringify(value);
}

export function formatLine(level: Level, msg: string, fields: Fields, now = new Date()): string {
  let line = `time=${quote(now.toISOString())} level=${level} msg=${quote(msg)}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    line += ` ${key}=${quote(String(value))}`;
  }
  return `${line}\n`;
}

/** Where warnings and errors go once the fd's reader is gone for good (EPIPE). */
export type OrphanSink = (level: Level, line: string) => void;

interface LoggerOptions {
  fd: number | null;
  level?: Level;
  fields?: Fields;
  /** Takes warn and error lines after a write found no reader (EPIPE); loggers made by with() share it. */
  orphaned?: OrphanSink;
}

export function createLogger(opts: LoggerOptions): Logger {
  return makeLogger(opts, { readerGone: false });
}

function makeLogger(opts: LoggerOptions, state: { readerGone: boolean }): Logger {
  const min = order[opts.level ?? "info"];
  const base = opts.fields ?? {};
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (opts.fd === null || order[level] < min) return;
    const line = formatLine(level, msg, { ...base, ...fields });
    if (!state.readerGone) {
      try {
        writeSync(opts.fd, line);
        return;
      } catch (err) {
        // A reader that went away (containerd restarted, FIFO closed) must not take the shim down.
        // EAGAIN (a full pipe) drops this line only; EPIPE means nobody will read again.
        if ((err as NodeJS.ErrnoException).code !== "EPIPE") return;
        state.readerGone = true;
      }
    }
    if (order[level] >= order.warn) opts.orphaned?.(level, line);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    with: (fields) => makeLogger({ ...opts, fields: { ...base, ...fields } }, state),
  };
}

/** A logger that drops everything: for `start`, where nothing may reach stdout or stderr. */
export const silentLogger: Logger = createLogger({ fd: null });
