// `npm run restore -- --stack NAME --in FILE --key-file KEYFILE [--parts keys,accounts,mailboxes] [--force]`:
// a backup decrypted as it streams into the restore script on the stack's server, which places nothing unless
// every chunk authenticated. `npm run restore -- dkim-key --in FILE --key-file KEYFILE` prints the backup's DKIM
// private key for `pulumi config set --secret dkimPrivateKey` (never to a terminal). docs/continuity.md.
import { existsSync } from "node:fs";
import { ConfigError } from "../core/config";
import { PROJECT_ROOT } from "../components/assets";
import { parseRestoreArgs, RESTORE_USAGE, UsageError } from "./state/args";
import { BackupError, KeyFileError, readKeyFile } from "./state/crypto";
import { TarError } from "./state/tar";
import { carriedTable, formatSeconds, runCommand } from "./state/report";
import { stackOptions, withStack } from "./state/stack";
import { dkimKeyFromFile, restoreFromFile, TransferError } from "./state/transfer";

async function main(argv: readonly string[]): Promise<number> {
  const opts = parseRestoreArgs(argv, PROJECT_ROOT);
  if (opts === "help") {
    process.stdout.write(RESTORE_USAGE);
    return 0;
  }
  if (!existsSync(opts.in)) throw new UsageError(`--in ${opts.in}: no such file`);
  if (opts.command === "dkim-key") {
    if (process.stdout.isTTY)
      throw new UsageError(
        "dkim-key prints a private key and will not print it on a terminal: pipe it, as in " +
          "npm run --silent restore -- dkim-key --in FILE --key-file KEYFILE | pulumi config set --secret dkimPrivateKey",
      );
    const pem = await dkimKeyFromFile(opts.in, readKeyFile(opts.keyFile));
    process.stdout.write(pem.endsWith("\n") ? pem : `${pem}\n`);
    return 0;
  }
  const passphrase = readKeyFile(opts.keyFile);
  return withStack(stackOptions(opts), async ({ config, ssh, plan }) => {
    process.stdout.write(`restore: ${opts.in} onto ${config.mailDomain} at ${ssh.user}@${ssh.host}\n`);
    const r = await restoreFromFile({
      dest: ssh,
      config,
      plan,
      path: opts.in,
      passphrase,
      ...(opts.parts ? { parts: opts.parts } : {}),
      force: opts.force,
    });
    const lines = [
      `backup of ${r.manifest!.created} (${r.manifest!.tool}), restored: ${r.parts.join(", ")}`,
      "",
      ...carriedTable(r.parts, r.counts),
      `in ${formatSeconds(r.seconds)}`,
      `server: ${r.serverLine ?? ""}`,
    ];
    if (r.parts.includes("keys"))
      lines.push("next: pulumi up (the deploy keeps the restored DKIM key, ACME account and certificates)");
    process.stdout.write(`${lines.join("\n")}\n`);
    return 0;
  });
}

runCommand("restore", () => main(process.argv.slice(2)), [
  ConfigError,
  KeyFileError,
  TransferError,
  BackupError,
  TarError,
]);
