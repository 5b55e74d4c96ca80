// lastlogin: the dict behind Dovecot's last_login plugin (docs/daemons.md, 'Last login'; upstream: chatmail/relay
// 1.12.0, chatmaild/src/chatmaild/lastlogin.py). At each login Dovecot sets `shared/last-login/<addr>` to the
// unix time; we keep it as the mtime of <addr>/password with day precision (touched at most once a day), which
// is what the expiry job reads to delete inactive accounts.
import { NOT_FOUND } from "../dictproxy/protocol";
import { startDictServer } from "../dictproxy/server";
import { accountFor, InvalidAddressError, setLastLogin } from "../doveauth/user";
import { createLogger, type Logger } from "../dictproxy/log";
import { LASTLOGIN_SOCKET } from "../../core/server";
import type { DaemonConfig } from "../config";
import type { Service } from "../service";

export interface LastloginOptions {
  socketPath?: string;
  log?: Logger;
  socketMode?: number;
}

const KEY_PREFIX = "shared/last-login/";

export async function startLastlogin(config: DaemonConfig, opts: LastloginOptions = {}): Promise<Service> {
  const log = opts.log ?? createLogger("lastlogin");
  const domainSuffix = `@${config.mailDomain}`;
  return startDictServer({
    socketPath: opts.socketPath ?? LASTLOGIN_SOCKET,
    socketMode: opts.socketMode,
    log,
    handlers: {
      // The plugin only writes; a read of the record is answered "not found".
      lookup: () => NOT_FOUND,
      async set(_tx, key, value) {
        if (!key.startsWith(KEY_PREFIX)) return false;
        // The address comes from the key, not from the transaction's user (upstream behaviour).
        const addr = key.slice(KEY_PREFIX.length);
        if (!/^\d{1,12}$/.test(value)) {
          log.warn(`last-login value for ${JSON.stringify(addr)} is not a unix time`);
          return false;
        }
        if (!addr.endsWith(domainSuffix)) {
          log.warn(`last-login for foreign address ${JSON.stringify(addr)} ignored`);
          return true;
        }
        try {
          await setLastLogin(accountFor(config.mailboxesDir, addr), Number(value), log);
        } catch (err) {
          if (err instanceof InvalidAddressError) {
            log.warn(err.message);
            return false;
          }
          throw err;
        }
        return true;
      },
    },
  });
}
