/**
 * The boot parameters the host passes to vminitd on the kernel command line (`beetroot.*`), read
 * from /proc/cmdline. A malformed value is reported and replaced by its default: PID 1 must come up
 * far enough to reach the host (or power off) whatever the command line says.
 */

export interface BootParams {
  /** vsock port on the host (CID 2) that vminitd dials back to. */
  readonly port: number;
  readonly hostname: string | undefined;
  /** Host wall-clock time (ms since the epoch) when it spawned the VM. */
  readonly hostTimeMs: number | undefined;
  /** How long vminitd keeps dialling before it gives up and powers off. */
  readonly dialTimeoutMs: number;
  readonly logLevel: "debug" | "info" | "warn" | "error";
  /** Values that were present but unusable, with the reason; the default was used instead. */
  readonly problems: readonly string[];
}

export const DEFAULT_PORT = 1024;
export const DEFAULT_DIAL_TIMEOUT_MS = 30_000;
const MAX_DIAL_TIMEOUT_MS = 10 * 60_000;

/** Splits a kernel command line the way the kernel does: whitespace separated, double quotes group. */
export function splitCmdline(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inQuote = false;
  let any = false;
  for (const ch of text) {
    if (ch === '"') {
      inQuote = !inQuote;
      any = true;
    } else if (!inQuote && /\s/.test(ch)) {
      if (any) out.push(cur);
      cur = "";
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (any) out.push(cur);
  return out;
}

/** key=value pairs of the command line; the last occurrence of a key wins, as for the kernel. */
export function cmdlineValues(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const word of splitCmdline(text)) {
    const eq = word.indexOf("=");
    if (eq <= 0) values.set(word, "");
    else values.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return values;
}

function integer(raw: string, min: number, max: number): number | string {
  if (!/^\d+$/.test(raw)) return `"${raw}" is not a decimal integer`;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) return `${raw} is outside ${min}..${max}`;
  return n;
}

// RFC 1123 labels, as sethostname(2) accepts up to 64 bytes.
const HOSTNAME =
  /^(?=.{1,64}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

export function parseBootParams(cmdline: string): BootParams {
  const values = cmdlineValues(cmdline);
  const problems: string[] = [];
  const take = (key: string, min: number, max: number): number | undefined => {
    const raw = values.get(key);
    if (raw === undefined) return undefined;
    const n = integer(raw, min, max);
    if (typeof n === "string") {
      problems.push(`${key}: ${n}`);
      return undefined;
    }
    return n;
  };

  const port = take("beetroot.port", 1, 0xffff_fffe) ?? DEFAULT_PORT;
  const hostTimeMs = take("beetroot.time", 1, 8.64e15);
  const dialTimeoutMs = take("beetroot.dial_timeout_ms", 1, MAX_DIAL_TIMEOUT_MS) ?? DEFAULT_DIAL_TIMEOUT_MS;
  let logLevel: BootParams["logLevel"] = "info";
  const level = values.get("beetroot.log_level");
  if (level === "debug" || level === "info" || level === "warn" || level === "error") logLevel = level;
  else if (level !== undefined)
    problems.push(`beetroot.log_level: "${level}" is not debug, info, warn or error`);
  let hostname = values.get("beetroot.hostname");
  if (hostname !== undefined && !HOSTNAME.test(hostname)) {
    problems.push(`beetroot.hostname: "${hostname}" is not a valid host name`);
    hostname = undefined;
  }
  return { port, hostname, hostTimeMs, dialTimeoutMs, logLevel, problems };
}
