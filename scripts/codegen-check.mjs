// Fails when api/gen is not what `npm run codegen` produces from api/proto: generated code is
// committed, so a proto edit without regeneration (or a hand edit of api/gen) must not land.
import { execFileSync } from "node:child_process";

execFileSync("npm", ["run", "--silent", "codegen"], { stdio: "inherit" });
const status = execFileSync("git", ["status", "--porcelain", "--", "api/gen"], { encoding: "utf8" });
if (status.trim() !== "") {
  process.stderr.write(
    `api/gen is out of date with api/proto; run \`npm run codegen\` and commit:\n${status}`,
  );
  process.exit(1);
}
process.stdout.write("codegen: api/gen is up to date\n");
