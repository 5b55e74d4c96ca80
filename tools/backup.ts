// `npm run backup -- --stack NAME --out FILE --key-file KEYFILE [--mailboxes]`: the relay's state, streamed from
// its server over SSH and encrypted into FILE with the passphrase in KEYFILE. Keys and accounts always, the
// mailboxes with --mailboxes. docs/continuity.md describes what is in it, the file format and how to restore it.
import { rmSync } from "node:fs";
import { ConfigError } from "../core/config";
import type { Part } from "../core/state";
import { PROJECT_ROOT } from "../components/assets";
import { BACKUP_USAGE, parseBackupArgs } from "./state/args";
import { BackupError, KeyFileError, readKeyFile } from "./state/crypto";
import { TarError } from "./state/tar";
import { carriedTable, formatBytes, formatSeconds, runCommand } from "./state/report";
import { newManifest, stackOptions, withStack } from "./state/stack";
import { backupToFile, TransferError } from "./state/transfer";

async function main(argv: readonly string[]): Promise<number> {
  const opts = parseBackupArgs(argv, PROJECT_ROOT);
  if (opts === "help") {
    process.stdout.write(BACKUP_USAGE);
    return 0;
  }
  const passphrase = readKeyFile(opts.keyFile);
  const parts: Part[] = opts.mailboxes ? ["keys", "accounts", "mailboxes"] : ["keys", "accounts"];
  const removeTemporary = () => rmSync(`${opts.out}.tmp`, { force: true });
  return withStack(
    stackOptions(opts),
    async ({ config, ssh }) => {
      process.stdout.write(
        `backup: ${config.mailDomain} from ${ssh.user}@${ssh.host}: ${parts.join(", ")}\n`,
      );
      const r = await backupToFile({
        source: ssh,
        config,
        parts,
        manifest: newManifest(config, parts),
        out: opts.out,
        passphrase,
      });
      process.stdout.write(
        [
          "",
          ...carriedTable(r.parts, r.counts),
          `written to ${opts.out} (${formatBytes(r.fileBytes)} encrypted, mode 0600) in ${formatSeconds(r.seconds)}`,
          "",
        ].join("\n"),
      );
      return 0;
    },
    removeTemporary,
  );
}

runCommand("backup", () => main(process.argv.slice(2)), [
  ConfigError,
  KeyFileError,
  TransferError,
  BackupError,
  TarError,
]);
