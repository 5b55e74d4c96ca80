// A reference for `npm run bench -- auth`: this repo's dict server (daemons/dictproxy) with a lookup handler that
// answers a constant, so the bench can tell the cost of the protocol code from doveauth's own work per lookup.
// Bundled and started by reference.ts: node constant-dict.js <socket> <reply value>.
import { createLogger } from "../../daemons/dictproxy/log";
import { found } from "../../daemons/dictproxy/protocol";
import { startDictServer } from "../../daemons/dictproxy/server";

const [socketPath, value] = process.argv.slice(2);
const answer = found(value);
void startDictServer({
  socketPath,
  log: createLogger("constant-dict"),
  handlers: { lookup: () => answer },
}).then(() => process.stdout.write("ready\n"));
