// Who may create an address at first login: the checks of docs/daemons.md, 'Account creation at first login',
// in their order (is_allowed_to_create in chatmail/relay 1.12.0, chatmaild/src/chatmaild/doveauth.py, plus the
// invite tokens of upstream's unreleased PR #600, and passwordMaxLength), first failure wins. Pure; the caller says whether the
// nocreate file exists. Returns the log line for a refusal, and the reason the metrics count it under.
import type { DaemonConfig } from "../config";
import type { RefusalReason } from "../metrics/relay";

export type CreationConfig = Pick<
  DaemonConfig,
  "inviteTokens" | "passwordMinLength" | "passwordMaxLength" | "usernameMinLength" | "usernameMaxLength"
>;

/**
 * Local parts Delta Chat generates and Dovecot's auth_username_chars allow (VALID_LOCALPART_RE in chatmail/relay
 * 1.12.0, chatmaild/src/chatmaild/doveauth.py).
 */
const LOCALPART_CHARS = /^[a-z0-9._-]+$/;

/** The log line of the first check that refuses, or undefined when the address may be created. */
export function creationRefusal(
  config: CreationConfig,
  addr: string,
  password: string,
  nocreate: { exists: boolean; path: string },
): string | undefined {
  return creationCheck(config, addr, password, nocreate)?.message;
}

/** The first check that refuses: its log line and its reason (chatmail_account_creation_refusals_total). */
export function creationCheck(
  config: CreationConfig,
  addr: string,
  password: string,
  nocreate: { exists: boolean; path: string },
): { reason: RefusalReason; message: string } | undefined {
  const refusal = firstRefusal(config, addr, password, nocreate);
  if (refusal === undefined) return undefined;
  return typeof refusal === "string" ? { reason: "invalid", message: refusal } : refusal;
}

/** The first refusal: a bare log line is a name or password that can never be created ("invalid"). */
function firstRefusal(
  config: CreationConfig,
  addr: string,
  password: string,
  nocreate: { exists: boolean; path: string },
): string | { reason: RefusalReason; message: string } | undefined {
  // The operator's kill switch beats everything, invite tokens included.
  if (nocreate.exists)
    return {
      reason: "nocreate",
      message: `blocked account creation because ${JSON.stringify(nocreate.path)} exists.`,
    };
  let passwordLength = [...password].length;
  if (config.inviteTokens.length > 0) {
    // The token is a prefix of the password; the first configured token that matches counts, and its length
    // does not count towards the minimum.
    const token = config.inviteTokens.find((t) => t !== "" && password.startsWith(t));
    if (token === undefined)
      return {
        reason: "invite",
        message: "blocked account creation because password didn't contain invite token(s).",
      };
    passwordLength -= [...token].length;
  }
  if (passwordLength < config.passwordMinLength) {
    return `Password needs to be at least ${config.passwordMinLength} characters long`;
  }
  // Hashing cost grows with the length; a longer password would only be a way to load the server.
  if (passwordLength > config.passwordMaxLength) {
    return `Password may be at most ${config.passwordMaxLength} characters long (passwordMaxLength)`;
  }
  const parts = addr.split("@");
  if (parts.length !== 2) return `user ${JSON.stringify(addr)} is not a proper e-mail address`;
  const localpart = parts[0];
  if (localpart.length > config.usernameMaxLength || localpart.length < config.usernameMinLength) {
    return `localpart ${localpart} has to be between ${config.usernameMinLength} and ${config.usernameMaxLength} chars long`;
  }
  if (!LOCALPART_CHARS.test(localpart))
    return `localpart ${JSON.stringify(localpart)} contains invalid characters`;
  return undefined;
}
