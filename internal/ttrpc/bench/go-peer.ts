/**
 * Builds test/ttrpc/gopeer — containerd's Go ttrpc on the far side of our interop tests and
 * benchmark — offline, in GOPATH mode, from Debian's packaged Go sources.
 *
 * Bookworm packages ttrpc 1.1.1, which predates streaming. The first Debian ttrpc with streams is
 * trixie's golang-github-containerd-ttrpc-dev (1.2.x): it is fetched with the project's private-apt
 * machinery (internal/hostdeps, mirror derived from the machine's apt sources), unpacked under
 * `<cacheDir>/go/`, and put first on GOPATH so it shadows the system copy. Everything else it
 * imports (grpc status/codes, protobuf, genproto, logrus, x/sys) builds from bookworm's packages.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beetrootPaths } from "../../config/paths.ts";

const SYSTEM_GOPATH = "/usr/share/gocode";
const TTRPC_PACKAGE = "golang-github-containerd-ttrpc-dev";
const TTRPC_SUITE = "trixie";
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

/** A GOPATH root holding ttrpc >= 1.2 (system first, then our cache, else fetched from trixie). */
async function ttrpcGopath(
  log: (line: string) => void,
): Promise<{ gopath: string; version: string } | string> {
  if (hasStreaming(SYSTEM_GOPATH)) return { gopath: SYSTEM_GOPATH, version: "system" };
  const base = join(beetrootPaths().cacheDir, "go");
  const versionFile = join(base, "ttrpc", "VERSION");
  const gopath = join(base, "ttrpc", "usr", "share", "gocode");
  if (existsSync(versionFile) && hasStreaming(gopath)) {
    return { gopath, version: readFileSync(versionFile, "utf8").trim() };
  }
  // Lazily imported: only needed on the first run on a machine.
  const { readOsRelease, findDebianMirror } = await import("../../hostdeps/host-system.ts");
  const { createPrivateApt } = await import("../../hostdeps/private-apt.ts");
  const arch = (await exec("dpkg", ["--print-architecture"])).stdout.trim() || "amd64";
  let apt: ReturnType<typeof createPrivateApt>;
  try {
    apt = createPrivateApt({
      cacheDir: beetrootPaths().cacheDir,
      mirror: findDebianMirror(readOsRelease()),
      suite: TTRPC_SUITE,
      arch,
    });
    if (apt.listsAgeHours() === undefined) {
      log(`fetching the ${TTRPC_SUITE} package lists (private apt config)`);
      await apt.update(log);
    }
  } catch (err) {
    return `${TTRPC_PACKAGE} from ${TTRPC_SUITE}: ${(err as Error).message}`;
  }
  const show = await exec("apt-cache", [
    "-c",
    join(apt.dir, "apt.conf"),
    "show",
    "--no-all-versions",
    TTRPC_PACKAGE,
  ]);
  const version = /^Version: (\S+)$/m.exec(show.stdout)?.[1];
  if (show.code !== 0 || version === undefined) {
    return `${TTRPC_PACKAGE} not found in ${TTRPC_SUITE} lists: ${show.stderr.trim()}`;
  }
  const debs = join(base, "debs");
  try {
    log(`downloading ${TTRPC_PACKAGE}=${version} from ${TTRPC_SUITE}`);
    await apt.download([{ name: TTRPC_PACKAGE, version }], debs, log);
  } catch (err) {
    return `${TTRPC_PACKAGE}=${version}: ${(err as Error).message}`;
  }
  const deb = join(debs, `${TTRPC_PACKAGE}_${version.replace(/^\d+:/, "")}_all.deb`);
  const staging = join(base, `ttrpc.tmp-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  const x = await exec("dpkg-deb", ["-x", deb, staging]);
  if (x.code !== 0) return `unpacking ${deb}: ${x.stderr.trim()}`;
  await exec("sh", ["-c", `printf '%s\\n' "$1" > "$2/VERSION"`, "sh", version, staging]);
  await exec("rm", ["-rf", join(base, "ttrpc")]);
  renameSync(staging, join(base, "ttrpc"));
  if (!hasStreaming(gopath))
    return `${TTRPC_PACKAGE}=${version} has no streaming support (stream.go missing)`;
  return { gopath, version };
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
  const tt = await ttrpcGopath(log);
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
