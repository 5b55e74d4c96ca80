// buildWebsite on the project's pages: values filled in, languages and tabs, invite modes, QR codes,
// warnings, escaping and determinism.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildWebsite } from "../../core/website/build";
import { decodeQr, DOMAIN, editedSources, relayConfig, text, wwwSources } from "./helpers";

const build = (...lines: string[]) => buildWebsite(relayConfig(...lines), wwwSources());
const page = (files: Map<string, Uint8Array>, name: string) => text(files.get(`${name}.html`));
/** What a browser shows for numeric character references. */
const decodeEntities = (html: string) =>
  html.replace(/&#(\d+);/g, (_, code) => String.fromCodePoint(Number(code)));
const QR_FILE = `qr-chatmail-invite-${DOMAIN}.png`;

describe("buildWebsite", () => {
  it("builds home, info and privacy pages plus the stylesheet, logo, robots.txt and QR code", () => {
    const { files, warnings } = build();
    expect([...files.keys()]).toEqual([
      "index.html",
      "info.html",
      "logo.svg",
      "main.css",
      "privacy.html",
      QR_FILE,
      "robots.txt",
    ]);
    expect(warnings).toEqual([]);
    expect(files.get("main.css")).toEqual(wwwSources().get("src/main.css"));
  });

  it("fills the relay's limits and deletion periods into the info page", () => {
    const info = page(
      build(
        "max_user_send_per_minute = 42",
        "max_mailbox_size = 2G",
        "max_message_size = 52428800",
        "delete_mails_after = 21",
        "delete_large_after = 1",
        "delete_inactive_users_after = 100",
      ).files,
      "info",
    );
    expect(info).toContain("You can send up to 42 messages\nper minute.");
    expect(info).toContain("up to 50&nbsp;MB.");
    expect(info).toContain("up to 2048&nbsp;MB of messages");
    expect(info).toContain("deleted from the server 21 days\nafter they arrive");
    expect(info).toContain("deleted after\n1 day.");
    expect(info).toContain("not logged in for 100\ndays is deleted");
  });

  it.each([
    [
      ["username_min_length = 9", "username_max_length = 9", "password_min_length = 9"],
      "exactly nine characters",
      "at least nine characters",
    ],
    [
      ["username_min_length = 6", "username_max_length = 12", "password_min_length = 20"],
      "six to twelve characters",
      "at least 20 characters",
    ],
  ])("writes the address and password lengths in English words (%j)", (lines, address, password) => {
    const info = page(build(...lines).files, "info");
    expect(info).toContain(address);
    expect(info).toContain(password);
  });

  it.each([
    [1, "через 1 день"],
    [3, "через 3 дня"],
    [11, "через 11 дней"],
    [21, "через 21 день"],
    [25, "через 25 дней"],
  ])("puts Russian nouns into the right form for %i days", (days, phrase) => {
    const info = page(build("languages = RU", `delete_mails_after = ${days}`).files, "info");
    expect(info.replace(/\s+/g, " ")).toContain(`Сообщения удаляются с сервера ${phrase} после получения`);
  });

  it("fills the privacy contacts into the privacy page, keeping the postal address's lines", () => {
    const privacy = page(
      build(
        "privacy_mail = privacy@example.org",
        "privacy_postal = Example Chat e.V.\n    Hauptstraße 1\n    10115 Berlin",
        "privacy_pdo = Data Protection Officer Erika Muster",
        "privacy_supervisor = Berliner Beauftragte für Datenschutz",
      ).files,
      "privacy",
    );
    expect(privacy).toContain("Example Chat e.V.<br>Hauptstraße 1<br>10115 Berlin");
    expect(privacy).toContain('<a href="mailto:privacy@example.org">privacy@example.org</a>');
    expect(privacy).toContain("<address>Data Protection Officer Erika Muster</address>");
    expect(privacy).toContain("The authority responsible for us is: Berliner Beauftragte für Datenschutz.");
    expect(privacy).toContain("deleted after 3 days at the\nlatest");
  });

  it("says that no contact details are published when the privacy options are empty", () => {
    const privacy = page(build().files, "privacy");
    expect(privacy).toContain("The operator of this relay has not published contact details yet.");
    expect(privacy).not.toContain("mailto:");
  });

  it("shows configured text as typed instead of interpreting it as HTML or Markdown", () => {
    const privacy = page(
      build(
        "privacy_pdo = <script>alert(1)</script> *Erika* _Muster_",
        "privacy_mail = data_protection@example.org",
      ).files,
      "privacy",
    );
    expect(privacy).not.toContain("<script>");
    expect(privacy).not.toMatch(/<(em|strong)>Erika/);
    expect(decodeEntities(privacy)).toContain(
      "<address><script>alert(1)</script> *Erika* _Muster_</address>",
    );
    expect(privacy).toContain('href="mailto:data&#95;protection@example.org"');
  });

  describe("without invite tokens", () => {
    const { files, invites } = build("languages = EN RU");

    it("shows the get-a-profile button and the QR code on the home page in every language", () => {
      const home = page(files, "index");
      expect(
        home.match(new RegExp(`<a class="cta-button" href="DCACCOUNT:https://${DOMAIN}/new">`, "g")),
      ).toHaveLength(2);
      expect(home.match(new RegExp(`<img src="${QR_FILE}"`, "g"))).toHaveLength(2);
      expect(home).not.toContain("invite-only");
    });

    it("publishes a QR code PNG that decodes to exactly DCACCOUNT:https://DOMAIN/new", () => {
      expect(decodeQr(files.get(QR_FILE)!)).toBe(`DCACCOUNT:https://${DOMAIN}/new`);
    });

    it("makes no printable invites", () => {
      expect(invites).toEqual([]);
    });
  });

  describe("with invite tokens", () => {
    const tokens = ["Sentinel1Token", "second.token-2"];
    const { files, invites } = build("languages = EN RU", `invite_token = ${tokens.join(" ")}`);

    it("shows neither button nor QR code and says an invite from the admin is needed, in every language", () => {
      const home = page(files, "index");
      expect(home).not.toMatch(/cta-button|DCACCOUNT|<img src="qr-/i);
      expect(files.has(QR_FILE)).toBe(false);
      expect(home).toContain("This relay is invite-only.");
      expect(home).toContain("Регистрация на этом сервере — только по приглашениям.");
    });

    it("leaves out the choose-your-own-address instructions, which would need a token", () => {
      expect(page(files, "info")).not.toContain("Choosing your own address");
    });

    it("makes one printable invite per token whose QR code decodes to exactly its link", () => {
      expect(invites.map((i) => [i.token, i.link])).toEqual(
        tokens.map((t) => [t, `dcaccount:https://${DOMAIN}/new?${t}`]),
      );
      for (const invite of invites) expect(decodeQr(invite.png)).toBe(invite.link);
    });

    it("never puts an invite token into the web root", () => {
      for (const [path, bytes] of files) {
        for (const token of tokens)
          expect(Buffer.from(bytes).includes(token), `${path} contains ${token}`).toBe(false);
      }
    });
  });

  describe("languages", () => {
    it("shows one language without tabs, with that language on <html lang>", () => {
      const home = page(build("languages = RU").files, "index");
      expect(home).toMatch(/^<!DOCTYPE html>\n<html lang="ru">/);
      expect(home).not.toContain('class="tabs"');
      expect(home).toContain('<div lang="ru">');
      expect(home).toContain('<a href="privacy.html">Конфиденциальность</a>');
    });

    it("shows a tab per language in the configured order, the first one checked, each with its lang", () => {
      const home = page(build("languages = RU EN").files, "index");
      expect(home).toContain('<html lang="ru">');
      const tabs = [
        ...home.matchAll(
          /<input type="radio" name="language" id="([^"]+)"( checked)?>\n<label for="\1" lang="(\w+)">([^<]+)<\/label>\n<div class="tab-panel" lang="(\w+)">/g,
        ),
      ];
      expect(tabs.map((m) => [m[1], Boolean(m[2]), m[3], m[4], m[5]])).toEqual([
        ["language-ru", true, "ru", "Русский", "ru"],
        ["language-en", false, "en", "English", "en"],
      ]);
    });

    it("shows every language present, sorted, for ALL", () => {
      const home = page(build("languages = ALL").files, "index");
      expect([...home.matchAll(/<label for="[^"]+" lang="(\w+)">/g)].map((m) => m[1])).toEqual(["en", "ru"]);
    });

    it("shows a notice in the tab of a missing translation and warns about it", () => {
      const sources = editedSources({ "src/locales/RU/privacy.md": undefined });
      const { files, warnings } = buildWebsite(relayConfig("languages = EN RU"), sources);
      expect(warnings).toEqual([
        "src/locales/RU/privacy.md is missing: the RU part of privacy.html says it is not translated",
      ]);
      const privacy = page(files, "privacy");
      expect(privacy).toContain(
        '<div class="tab-panel" lang="ru">\n<p class="missing-translation">Эта страница ещё не переведена на русский язык.',
      );
      expect(page(files, "info")).not.toContain("missing-translation");
    });

    it("labels a language without a folder by its code, explains in English, and warns", () => {
      const config = { ...relayConfig(), languages: ["EN", "DE"] };
      const { files, warnings } = buildWebsite(config, wwwSources());
      expect(warnings).toContain("languages: DE has no folder src/locales/DE/ in the web page folder");
      expect(warnings).toContain(
        "src/locales/DE/index.md is missing: the DE part of index.html says it is not translated",
      );
      expect(page(files, "index")).toContain(
        '<label for="language-de" lang="de">DE</label>\n<div class="tab-panel" lang="en">\n<p class="missing-translation">This page has not been translated',
      );
    });
  });

  it.each([
    [true, 1],
    [false, 0],
  ])("shows the development notice only when isDevelopmentInstance is %s", (on, count) => {
    const home = page(build(`is_development_instance = ${on}`, "languages = EN RU").files, "index");
    expect(home.match(/class="experimental"/g) ?? []).toHaveLength(count * 2);
  });

  it("gives identical bytes for the same config and sources", () => {
    fc.assert(
      fc.property(
        fc.record({
          languages: fc.constantFrom("EN", "RU", "EN RU", "RU EN", "ALL"),
          tokens: fc.array(fc.stringMatching(/^[A-Za-z0-9._~-]{9,20}$/), { maxLength: 2 }),
          days: fc.integer({ min: 1, max: 400 }),
        }),
        ({ languages, tokens, days }) => {
          const lines = [
            `languages = ${languages}`,
            `invite_token = ${tokens.join(" ")}`,
            `delete_mails_after = ${days}`,
          ];
          const [a, b] = [build(...lines), build(...lines)];
          expect([...b.files]).toEqual([...a.files]);
          expect(b.invites).toEqual(a.invites);
        },
      ),
      { numRuns: 15 },
    );
  });

  it("publishes a folder without src/page-layout.html as it is, with a warning", () => {
    const sources = new Map([["index.html", new TextEncoder().encode("<p>hello</p>")]]);
    const { files, warnings } = buildWebsite(relayConfig(), sources);
    expect([...files.keys()]).toEqual(["index.html"]);
    expect(warnings[0]).toContain("published as it is");
  });

  it("names the file when a page uses an unknown value", () => {
    const sources = editedSources({ "src/locales/EN/info.md": "# {{ maxMailboxSise }}" });
    expect(() => buildWebsite(relayConfig(), sources)).toThrow(
      "src/locales/EN/info.md line 1: {{ maxMailboxSise }} has no value; check the name",
    );
  });

  it.each([
    ["{", /src\/locales\/EN\/language\.json: not valid JSON/],
    ['{"name": "English"}', /src\/locales\/EN\/language\.json: "lang" must be a non-empty string/],
  ])("names the file and field of a broken language.json (%s)", (json, error) => {
    expect(() =>
      buildWebsite(relayConfig(), editedSources({ "src/locales/EN/language.json": json })),
    ).toThrow(error);
  });
});
