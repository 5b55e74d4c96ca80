// The helpers behind the page values: English number words, plural forms, safe text.
import { describe, expect, it } from "vitest";
import { escapeHtml, pageText, plural, words } from "../../core/website/values";

describe("words", () => {
  it.each([
    [0, "zero"],
    [9, "nine"],
    [12, "twelve"],
    [13, "13"],
    [64, "64"],
  ])("writes %i as %s", (n, expected) => expect(words(n)).toBe(expected));
});

describe("plural", () => {
  it.each([
    [1, "day"],
    [0, "days"],
    [2, "days"],
    [21, "days"],
  ])("picks the English form for %i", (n, form) => expect(plural(n, "day", "days")).toBe(form));

  it.each([
    [1, "день"],
    [21, "день"],
    [101, "день"],
    [2, "дня"],
    [4, "дня"],
    [22, "дня"],
    [5, "дней"],
    [11, "дней"],
    [12, "дней"],
    [14, "дней"],
    [20, "дней"],
    [111, "дней"],
  ])("picks the Russian form for %i", (n, form) => expect(plural(n, "день", "дня", "дней")).toBe(form));

  it("rejects a call with the wrong number of forms", () => {
    expect(() => plural(1, "day")).toThrow(
      "plural: needs 2 forms (one, other) or 3 forms (one, few, many), got 1",
    );
  });
});

describe("pageText", () => {
  it("keeps letters, digits, spaces and address punctuation", () => {
    expect(pageText("Grüße, Straße 1 — privacy@chat.example.org")).toBe(
      "Grüße, Straße 1 &#8212; privacy@chat.example.org",
    );
    expect(pageText("Иван Петров, ул. Ленина 5")).toBe("Иван Петров, ул. Ленина 5");
  });

  it("turns Markdown and HTML syntax into character references and line breaks into <br>", () => {
    expect(pageText("a_b *c* <d>\n  e & f")).toBe("a&#95;b &#42;c&#42; &#60;d&#62;<br>e &#38; f");
  });
});

describe("escapeHtml", () => {
  it("escapes the five HTML special characters", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;");
  });
});
