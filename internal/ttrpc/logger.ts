/**
 * The logging seam. Structurally the same as internal/log's Logger (which this library may not
 * import: it also runs in the guest), so either can be passed in.
 */
export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface TtrpcLogger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const noop = () => {};
export const nullLogger: TtrpcLogger = { debug: noop, info: noop, warn: noop, error: noop };

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
