/**
 * Builds test/ttrpc/gopeer — containerd's Go ttrpc on the far side of our interop tests and
 * benchmark — offline, in GOPATH mode, from Debian's packaged Go sources.
 *
 * Bookworm packages ttrpc 1.1.1, which predates streaming. The first Debian ttrpc with streams is
 * trixie's golang-github-containerd-ttrpc-dev (1.2.x): `beetroot setup` unpacks it as the `go-ttrpc`
 * prefix set, and it goes first on GOPATH so it shadows the system copy. Everything else it
 * imports (grpc status/codes, protobuf, genproto, logrus, x/sys) builds from bookworm's packages.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beetrootPaths } from "../../config/paths.ts";

const SYSTEM_GOPATH = "/usr/share/gocode";
const TTRPC_DIR = "src/github.com/containerd/ttrpc";

export type GoPeerPrep = { ok: true; binary: string; ttrpcVersion: string } | { ok: false; missing: string };

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[], env?: NodeJS.ProcessEnv, cwd?: string): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env, cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 127) : 0;
      resolve({
        code,
        stdout: String(stdout),
        stderr: String(stderr) || (err && code === 127 ? err.message : ""),
      });
    });
  });
}

/** The checkout's test/ttrpc/gopeer, found from this module (source tree) or the bundle (dist/). */
export function goPeerSourceDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "test", "ttrpc", "gopeer");
    if (existsSync(join(candidate, "main.go"))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

function hasStreaming(gopath: string): boolean {
  return existsSync(join(gopath, TTRPC_DIR, "stream.go"));
}

/** A GOPATH root holding ttrpc >= 1.2: the system's if Debian ever ships it there, else setup's go-ttrpc set. */
async function ttrpcGopath(): Promise<{ gopath: string; version: string } | string> {
  if (hasStreaming(SYSTEM_GOPATH)) return { gopath: SYSTEM_GOPATH, version: "system" };
  const { loadHostDeps } = await import("../../hostdeps/index.ts");
  try {
    const { gopath, version } = loadHostDeps().goTtrpc;
    return hasStreaming(gopath)
      ? { gopath, version }
      : `ttrpc at ${gopath} has no streaming (stream.go missing)`;
  } catch (err) {
    return `containerd's Go ttrpc >= 1.2 (${(err as Error).message})`;
  }
}

/**
 * Returns the gopeer binary, building it if its sources changed; `{ ok: false, missing }` says
 * what this machine lacks (so tests can skip with that message).
 */
export async function prepareGoPeer(log: (line: string) => void = () => {}): Promise<GoPeerPrep> {
  const go = await exec("go", ["version"]);
  if (go.code !== 0) return { ok: false, missing: "the go toolchain (apt package golang-go)" };
  for (const pkg of ["google.golang.org/protobuf/proto", "google.golang.org/grpc/status"]) {
    if (!existsSync(join(SYSTEM_GOPATH, "src", pkg))) {
      return { ok: false, missing: `Debian Go sources for ${pkg} under ${SYSTEM_GOPATH}` };
    }
  }
  const src = goPeerSourceDir();
  if (src === undefined) return { ok: false, missing: "test/ttrpc/gopeer sources (run from a checkout)" };
  const tt = await ttrpcGopath();
  if (typeof tt === "string") return { ok: false, missing: tt };

  const hash = createHash("sha256");
  hash.update(go.stdout).update(tt.version);
  for (const f of ["main.go", "interop.pb.go"]) hash.update(readFileSync(join(src, f)));
  const outDir = join(beetrootPaths().cacheDir, "go", "bin");
  const binary = join(outDir, `gopeer-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(binary)) return { ok: true, binary, ttrpcVersion: tt.version };
  mkdirSync(outDir, { recursive: true });
  log("building test/ttrpc/gopeer");
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? "/root",
    GO111MODULE: "off",
    GOPATH: tt.gopath === SYSTEM_GOPATH ? SYSTEM_GOPATH : `${tt.gopath}:${SYSTEM_GOPATH}`,
    GOCACHE: join(beetrootPaths().cacheDir, "go", "build-cache"),
    GOFLAGS: "",
    GOTOOLCHAIN: "local",
    CGO_ENABLED: "0",
  };
  const tmp = `${binary}.tmp-${process.pid}`;
  const b = await exec("go", ["build", "-o", tmp, "."], env, src);
  if (b.code !== 0) return { ok: false, missing: `a buildable gopeer: go build failed: ${b.stderr.trim()}` };
  renameSync(tmp, binary);
  return { ok: true, binary, ttrpcVersion: tt.version };
}
