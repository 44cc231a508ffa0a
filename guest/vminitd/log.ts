/**
 * vminitd's log: one logfmt line per event (`time=… level=… msg=… key=value`, the format containerd
 * and the host side use) written synchronously to the console, so the lines survive a crash or a
 * power-off that follows immediately. The guest cannot import the host's logger (only api/ and
 * internal/ttrpc/ cross the guest line), hence this small twin.
 */

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, string | number | boolean | bigint | undefined | null>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  with(fields: Fields): Logger;
}

const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

function quote(value: string): string {
  return /^[A-Za-z0-9_.:/@+,-]+$/.test(value) ? value : JSON.stringify(value);
}

export function formatLine(level: Level, msg: string, fields: Fields, now: Date): string {
  let line = `time=${now.toISOString()} level=${level} msg=${quote(msg)}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    line += ` ${key}=${quote(String(value))}`;
  }
  return `${line}\n`;
}

export interface LoggerOptions {
  readonly write: (line: string) => void;
  readonly level?: Level;
  readonly fields?: Fields;
  readonly now?: () => Date;
}

export function createLogger(opts: LoggerOptions): Logger {
  const min = order[opts.level ?? "info"];
  const base = opts.fields ?? {};
  const now = opts.now ?? (() => new Date());
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (order[level] < min) return;
    try {
      opts.write(formatLine(level, msg, { ...base, ...fields }, now()));
    } catch {
      // A console that cannot be written must not take PID 1 down.
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    with: (fields) => createLogger({ ...opts, fields: { ...base, ...fields } }),
  };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
