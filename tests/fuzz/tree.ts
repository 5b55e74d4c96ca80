// What the daemons may leave on disk. Outside the mailboxes dir the temp tree must not change its paths at all
// (the bundle, chatmail.ini, the log and the sockets are there before the first input). Inside, the layout of
// docs/daemons.md, 'Accounts on disk': one directory per local address (<addr>@<domain>) and the notification
// queue, each holding regular files only; no symlink, nothing deeper, so no name from a request could have
// steered a write elsewhere.
import { lstatSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { PENDING_NOTIFICATIONS_DIR } from "../../core/server";

/** Every path under `root` except those inside `mailboxesDir`, relative and sorted. */
export function pathsOutside(root: string, mailboxesDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (path === mailboxesDir) continue;
      out.push(relative(root, path));
      if (lstatSync(path).isDirectory()) walk(path);
    }
  };
  walk(root);
  return out.sort();
}

/** Paths in the mailboxes dir that break its layout, each with the reason. */
export function mailboxLayoutProblems(mailboxesDir: string, domain: string): string[] {
  const problems: string[] = [];
  for (const name of readdirSync(mailboxesDir)) {
    const path = join(mailboxesDir, name);
    const st = lstatSync(path);
    if (!st.isDirectory()) {
      problems.push(`${JSON.stringify(name)}: not a directory`);
      continue;
    }
    if (name !== PENDING_NOTIFICATIONS_DIR && !name.endsWith(`@${domain}`)) {
      problems.push(`${JSON.stringify(name)}: neither a local address nor the notification queue`);
    }
    for (const inner of readdirSync(path)) {
      if (!lstatSync(join(path, inner)).isFile())
        problems.push(`${JSON.stringify(`${name}/${inner}`)}: not a regular file`);
    }
  }
  return problems;
}
