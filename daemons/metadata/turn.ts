// TURN credentials for Delta Chat calls (docs/relay.md, 'TURN'), in the TURN REST scheme coturn checks with
// `use-auth-secret`: the username is the expiry time in Unix seconds, the password base64(HMAC-SHA1(secret,
// username)). Only the server knows the secret, so only the metadata daemon, answering logged-in IMAP users,
// can hand out credentials, and each stops working at its expiry.
import { createHmac } from "node:crypto";

/**
 * How long credentials stay valid: as long as chatmail/relay 1.12.0's chatmail-turn gives them, because Delta
 * Chat fetches them when it connects and refreshes them only when they are close to expiry.
 */
export const TURN_CREDENTIAL_LIFETIME_S = 5 * 24 * 3600;

export interface TurnCredentials {
  readonly username: string;
  readonly password: string;
}

/** Credentials valid until `nowS + lifetimeS`. */
export function turnCredentials(
  secret: string,
  nowS = Math.floor(Date.now() / 1000),
  lifetimeS = TURN_CREDENTIAL_LIFETIME_S,
): TurnCredentials {
  const username = String(nowS + lifetimeS);
  return { username, password: createHmac("sha1", secret).update(username).digest("base64") };
}
