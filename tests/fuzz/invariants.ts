// What must hold after fuzz input. After each input, compared with the state just before it (so that fast-check
// shrinks to the input that broke something, not to any input that came after it): the process is alive, the
// daemon that got the input still answers its valid request, it holds no more connections than before, no path
// appeared or went away outside the mailboxes dir, and no new break of the mailboxes dir's layout. After each
// property, against the state at the start: every daemon answers, nothing died in between, no connection is
// held, the tree is as it was, and the resident-memory high-water mark stayed under RSS_CEILING_MIB.
import { expect } from "vitest";
import { heldTcp, heldUnix, untilReleased } from "./held";
import type { Health } from "./health";
import { DOMAIN, type Relay } from "./relay";
import { mailboxLayoutProblems, pathsOutside } from "./tree";

/**
 * The ceiling for the process's peak resident memory (VmHWM) over a whole fuzz file. The relay's budget is
 * 100 MB for all daemons together on a 1 GB server (daemons/main.ts); fuzz input may add transient buffers (64 KiB
 * dict lines, MB-sized SMTP lines), but nothing that should cost another 50 MiB.
 */
export const RSS_CEILING_MIB = 150;

export type Daemon = "doveauth" | "metadata" | "lastlogin" | "outgoing" | "incoming";

/** What afterInput compares with: the state before the input. */
export interface Before {
  held: number;
  outside: string[];
  layoutProblems: string[];
}

export class Invariants {
  private readonly outside: string[];

  constructor(
    private readonly relay: Relay,
    private readonly health: Health,
  ) {
    this.outside = pathsOutside(relay.root, relay.mailboxesDir);
  }

  beforeInput(daemon: Daemon): Before {
    return {
      held: this.held(daemon),
      outside: pathsOutside(this.relay.root, this.relay.mailboxesDir),
      layoutProblems: mailboxLayoutProblems(this.relay.mailboxesDir, DOMAIN),
    };
  }

  async afterInput(daemon: Daemon, before: Before): Promise<void> {
    expect(this.relay.alive(), `chatmaild is alive; log tail:\n${this.relay.logTail()}`).toBe(true);
    await this.answers(daemon);
    const added = await untilReleased(() => this.held(daemon) - before.held);
    expect(
      added,
      `connections ${daemon} holds after the session ended, more than before it`,
    ).toBeLessThanOrEqual(0);
    expect(pathsOutside(this.relay.root, this.relay.mailboxesDir), "paths outside the mailboxes dir").toEqual(
      before.outside,
    );
    const problems = mailboxLayoutProblems(this.relay.mailboxesDir, DOMAIN);
    expect(
      problems.filter((p) => !before.layoutProblems.includes(p)),
      "new breaks of the mailboxes dir layout",
    ).toEqual([]);
  }

  async afterProperty(): Promise<void> {
    expect(this.relay.unexpectedExits, "chatmaild deaths during the property").toEqual([]);
    expect(this.relay.alive()).toBe(true);
    await this.health.all();
    for (const d of ["doveauth", "metadata", "lastlogin", "outgoing", "incoming"] as const)
      expect(await untilReleased(() => this.held(d)), `connections ${d} still holds`).toBe(0);
    this.checkTree();
    const { rssKiB, hwmKiB } = this.relay.memory();
    console.log(
      `chatmaild memory: VmRSS ${(rssKiB / 1024).toFixed(1)} MiB, VmHWM ${(hwmKiB / 1024).toFixed(1)} MiB`,
    );
    expect(hwmKiB / 1024, "peak resident memory (VmHWM), MiB").toBeLessThan(RSS_CEILING_MIB);
  }

  private async answers(daemon: Daemon): Promise<void> {
    if (daemon === "outgoing" || daemon === "incoming") return this.health.filtermail(daemon);
    return this.health[daemon]();
  }

  private held(daemon: Daemon): number {
    if (daemon === "outgoing" || daemon === "incoming") return heldTcp([this.relay.ports[daemon]]);
    return heldUnix([this.relay.sockets[daemon]]);
  }

  private checkTree(): void {
    expect(pathsOutside(this.relay.root, this.relay.mailboxesDir), "paths outside the mailboxes dir").toEqual(
      this.outside,
    );
    expect(mailboxLayoutProblems(this.relay.mailboxesDir, DOMAIN), "mailboxes dir layout").toEqual([]);
  }
}
