// `npm run build:daemons`: writes the daemon bundle to dist/daemons/chatmaild.js, the same bytes the plan ships
// (bundleDaemons() in components/assets.ts builds it), to look at or to copy to a server by hand.
import { join } from "node:path";
import { PROJECT_ROOT, writeDaemonBundle } from "../components/assets";

try {
  console.log(`built ${writeDaemonBundle(join(PROJECT_ROOT, "dist", "daemons", "chatmaild.js"))}`);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
