import { describe, expect, it } from "vitest";
import { clientKey, CreationLimiter } from "../../daemons/doveauth/creationlimit";

function limiter(perMinute: number, perClient: number) {
  const clock = { ms: 5_000_000 };
  const l = new CreationLimiter(
    { accountCreationsPerMinute: perMinute, accountCreationsPerMinutePerClient: perClient },
    () => clock.ms,
  );
  return { l, clock };
}

describe("CreationLimiter", () => {
  it("allows a minute's worth per client at once, then refuses until one refills", () => {
    const { l, clock } = limiter(1000, 3);
    for (let i = 0; i < 3; i++) expect(l.take("192.0.2.1")).toBeUndefined();
    expect(l.take("192.0.2.1")).toBe(
      "more than 3 new accounts a minute from 192.0.2.1 (accountCreationsPerMinutePerClient)",
    );
    expect(l.take("192.0.2.2")).toBeUndefined();
    clock.ms += 19_999;
    expect(l.take("192.0.2.1")).toBeDefined();
    clock.ms += 1;
    expect(l.take("192.0.2.1")).toBeUndefined();
    expect(l.take("192.0.2.1")).toBeDefined();
  });

  it("limits the total over every client and clients without address, and refills evenly", () => {
    const { l, clock } = limiter(2, 100);
    expect(l.take("192.0.2.1")).toBeUndefined();
    expect(l.take(undefined)).toBeUndefined();
    expect(l.take("192.0.2.3")).toBe("more than 2 new accounts a minute (accountCreationsPerMinute)");
    clock.ms += 30_000;
    expect(l.take("192.0.2.3")).toBeUndefined();
    expect(l.take(undefined)).toBeDefined();
    clock.ms += 3_600_000; // a long pause gives back one minute's worth, no more
    expect(l.take(undefined)).toBeUndefined();
    expect(l.take(undefined)).toBeUndefined();
    expect(l.take(undefined)).toBeDefined();
  });

  it("takes nothing from a client when the total refuses", () => {
    const { l, clock } = limiter(1, 2);
    expect(l.take("192.0.2.1")).toBeUndefined();
    expect(l.take("192.0.2.1")).toContain("(accountCreationsPerMinute)");
    clock.ms += 60_000;
    expect(l.take("192.0.2.1")).toBeUndefined();
  });

  it("drops client buckets that have refilled, so the map stays small", () => {
    const { l, clock } = limiter(100_000, 1);
    for (let i = 0; i < 1000; i++) l.take(`10.0.${i >> 8}.${i & 255}`);
    clock.ms += 60_000;
    for (let i = 0; i < 100; i++) l.take(`10.1.${i >> 8}.${i & 255}`);
    expect(l.clientCount).toBeLessThanOrEqual(1100);
    for (let i = 0; i < 10; i++) l.take(`10.2.0.${i}`);
    expect(l.clientCount).toBeLessThanOrEqual(110);
  });
});

describe("clientKey", () => {
  it.each([
    ["192.0.2.7", "192.0.2.7"],
    ["::ffff:192.0.2.7", "192.0.2.7"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::9", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["127.0.0.1", undefined],
    ["::1", undefined],
    ["", undefined],
    [undefined, undefined],
    ["not-an-ip", undefined],
  ])("counts %j as %j", (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});
