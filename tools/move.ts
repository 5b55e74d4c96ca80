// `npm run move -- prepare --stack NAME --to NEWADDR` and `npm run move -- finish --stack NAME --from OLDADDR`:
// a relay (hostProvider existing) moved to a new server with nothing lost. prepare copies the keys from the
// stack's server to the new one, which must be fresh; the operator then points the stack at the new server with
// mail off (hostAddress, acceptMail false) and runs pulumi up. finish stops the old server accepting mail, waits
// until Postfix delivered what it held for the relay, stops its mail services and copies the accounts and
// mailboxes to the stack's server, the new one; acceptMail true and pulumi up turn mail on there. Everything
// streams old server -> this machine -> new server; nothing is written to disk here. docs/continuity.md.
import { ConfigError } from "../core/config";
import { PROJECT_ROOT } from "../components/assets";
import { MOVE_USAGE, parseMoveArgs, UsageError, type MoveOptions } from "./state/args";
import { carriedTable, formatSeconds, runCommand } from "./state/report";
import { newManifest, otherServer, stackOptions, withStack, type StackContext } from "./state/stack";
import { TarError } from "./state/tar";
import { copyBetween, stopMail, TransferError } from "./state/transfer";

const out = (lines: readonly string[]) => process.stdout.write(`${lines.join("\n")}\n`);

async function prepare(
  stack: StackContext,
  opts: Extract<MoveOptions, { command: "prepare" }>,
): Promise<number> {
  const { config, plan } = stack;
  const oldServer = stack.ssh;
  if (opts.to === oldServer.host)
    throw new UsageError(`--to ${opts.to} is the stack's server already: name the new server`);
  const newServer = otherServer(oldServer, opts.to, opts.toSshKey, opts.knownHosts);
  out([`move prepare: the keys of ${config.mailDomain} from ${oldServer.host} to ${newServer.host}`]);
  const r = await copyBetween({
    source: oldServer,
    dest: newServer,
    config,
    plan,
    parts: ["keys"],
    manifest: newManifest(config, ["keys"]),
  });
  const q = `--stack ${stack.name}`;
  out([
    "",
    ...carriedTable(r.parts, r.counts),
    `in ${formatSeconds(r.seconds)}`,
    `${newServer.host}: ${r.serverLine ?? ""}`,
    "",
    `${oldServer.host} keeps running and accepting mail. Next, configure ${newServer.host} with mail off:`,
    `  pulumi config set ${q} hostAddress ${newServer.host}`,
    `  pulumi config set ${q} acceptMail false`,
    ...(config.sshHostKey
      ? [
          `  pulumi config set ${q} sshHostKey "$(ssh-keyscan -t ed25519 ${newServer.host} 2>/dev/null | cut -d' ' -f2-)"`,
        ]
      : []),
    `  pulumi up ${q}`,
    `then: npm run move -- finish ${q} --from ${oldServer.host}`,
  ]);
  return 0;
}

async function finish(
  stack: StackContext,
  opts: Extract<MoveOptions, { command: "finish" }>,
): Promise<number> {
  const { config, plan } = stack;
  const newServer = stack.ssh;
  if (opts.from === newServer.host)
    throw new UsageError(
      `the stack still points at ${opts.from}: set hostAddress to the new server and run pulumi up first (move prepare printed the steps)`,
    );
  const oldServer = otherServer(newServer, opts.from, opts.fromSshKey, opts.knownHosts);
  const start = Date.now();
  if ((config as { acceptMail?: boolean }).acceptMail === true)
    out([
      `warning: acceptMail is true: ${newServer.host} may take mail and create accounts while they are copied (set acceptMail false and pulumi up first)`,
    ]);
  out([`move finish: ${config.mailDomain} from ${oldServer.host} to ${newServer.host}`]);
  const stopped = await stopMail({ target: oldServer, config, timeoutSeconds: opts.timeout });
  out([`${oldServer.host}: ${stopped.line}`]);
  if (!stopped.ok)
    throw new TransferError(
      `mail for ${config.mailDomain} is still queued on ${oldServer.host}; nothing was copied. Run finish again, with a longer --timeout, once it is delivered (postqueue -p on ${oldServer.host}).`,
    );
  const r = await copyBetween({
    source: oldServer,
    dest: newServer,
    config,
    plan,
    parts: ["accounts", "mailboxes"],
    manifest: newManifest(config, ["accounts", "mailboxes"]),
  });
  const q = `--stack ${stack.name}`;
  out([
    "",
    ...carriedTable(r.parts, r.counts),
    `copied in ${formatSeconds(r.seconds)}; finish took ${formatSeconds((Date.now() - start) / 1000)}`,
    `${newServer.host}: ${r.serverLine ?? ""}`,
    "",
    `${oldServer.host} accepts no mail and runs no mail service any more. Next, turn mail on at ${newServer.host}:`,
    `  pulumi config set ${q} acceptMail true && pulumi up ${q}`,
  ]);
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const opts = parseMoveArgs(argv, PROJECT_ROOT);
  if (opts === "help") {
    process.stdout.write(MOVE_USAGE);
    return 0;
  }
  return withStack(stackOptions(opts), async (stack) => {
    if (stack.config.hostProvider !== "existing")
      throw new ConfigError(
        `stack ${opts.stack} has hostProvider ${stack.config.hostProvider}: move is for servers you bring (hostProvider existing); for a replaced Hetzner server see docs/continuity.md`,
      );
    return opts.command === "prepare" ? await prepare(stack, opts) : await finish(stack, opts);
  });
}

runCommand("move", () => main(process.argv.slice(2)), [ConfigError, TransferError, TarError]);
