// Change counts from an engine summary: what changes, by operation, and what stays.
import { describe, expect, it } from "vitest";
import { renderChanges, summariseChanges } from "../../tools/fleet/changes";

describe("summariseChanges", () => {
  it("counts the operations that change something, in a stable order, and the unchanged ones apart", () => {
    const s = summariseChanges({ same: 140, update: 3, create: 1, read: 2, delete: 1, replace: 0 });
    expect(s.changes).toEqual({ create: 1, update: 3, delete: 1 });
    expect(Object.keys(s.changes)).toEqual(["create", "update", "delete"]);
    expect(s.total).toBe(5);
    expect(s.unchanged).toBe(142);
    expect(renderChanges(s)).toBe("1 create, 3 update, 1 delete");
  });

  it("treats same, read, discard and read-replacement as no change, as the engine does", () => {
    const s = summariseChanges({ same: 10, read: 1, discard: 1, "read-replacement": 1 });
    expect(s).toEqual({ changes: {}, total: 0, unchanged: 13 });
    expect(renderChanges(s)).toBe("none");
  });

  it("accepts an empty or missing summary", () => {
    expect(summariseChanges({})).toEqual({ changes: {}, total: 0, unchanged: 0 });
    expect(summariseChanges(undefined)).toEqual({ changes: {}, total: 0, unchanged: 0 });
  });

  it("lists replacements with the other changes", () => {
    const s = summariseChanges({ "create-replacement": 1, "delete-replaced": 1, replace: 1, same: 2 });
    expect(renderChanges(s)).toBe("1 replace, 1 create-replacement, 1 delete-replaced");
    expect(s.total).toBe(3);
  });
});
