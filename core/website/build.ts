// Builds the relay's web root from a web page folder (see www/README.md for its layout): one HTML page per
// Markdown page, with a language tab per selected language, plus the static files and the home page QR code.
// Pure and deterministic: no file or network access, same config and sources => same bytes.
import { fallbackStrings, parseLanguageFile, selectLanguages, type LanguageStrings } from "./languages";
import { qrPng } from "./qr";
import { createRenderer } from "./render";
import type { PrintableInvite, WebsiteBuild, WebsiteConfig, WebsiteSources } from "./types";
import { escapeHtml, inviteLink, newAccountLink, newAccountQrImage, pageValues } from "./values";

const SOURCE_ROOT = "src/";
const LAYOUT = "src/page-layout.html";
const LOCALES = "src/locales/";
const LANGUAGE_FILE = "language.json";
const HOME = "index";

interface Locale {
  readonly strings: LanguageStrings | undefined;
  /** Markdown path per page name. */
  readonly pages: ReadonlyMap<string, string>;
}

/** One language's part of a page, as the layout gets it (strings already HTML-escaped). */
interface Section {
  readonly id: string;
  readonly label: string;
  readonly labelLang: string;
  /** Language of the content: the notice of a missing translation may be in another language than the tab. */
  readonly lang: string;
  readonly html: string;
  readonly missingTranslation: boolean;
}

export function buildWebsite(config: WebsiteConfig, sources: WebsiteSources): WebsiteBuild {
  const warnings: string[] = [];
  const invites: PrintableInvite[] = config.inviteTokens.map((token) => {
    const link = inviteLink(config.mailDomain, token);
    return { token, link, png: qrPng(link) };
  });
  if (!sources.has(LAYOUT)) {
    // cmdeploy's convention: a folder without page sources is a finished site and is published as it is.
    warnings.push(
      `www: the web page folder has no ${LAYOUT}, so it is published as it is, without building pages`,
    );
    return { files: sorted(sources), invites, warnings };
  }

  const texts = new Map<string, string>();
  for (const [path, bytes] of sources) {
    if (path === LAYOUT || (path.startsWith(LOCALES) && /\.(md|json)$/.test(path)))
      texts.set(path, utf8(path, bytes));
  }
  const locales = readLocales(texts);
  const languages = selectLanguages(config.languages, [...locales.keys()]);
  const pages = [...new Set([...locales.values()].flatMap((l) => [...l.pages.keys()]))].sort(homeFirst);
  if (pages.length === 0)
    throw new Error(`www: no pages; expected Markdown files like ${LOCALES}EN/index.md`);
  for (const code of languages) {
    if (!locales.has(code))
      warnings.push(`languages: ${code} has no folder ${LOCALES}${code}/ in the web page folder`);
    else if (!locales.get(code)?.strings)
      warnings.push(`${LOCALES}${code}/${LANGUAGE_FILE} is missing: the ${code} tab is labelled "${code}"`);
  }

  const render = createRenderer(texts);
  const values = pageValues(config);
  const interfaceStrings = locales.get(languages[0])?.strings ?? fallbackStrings(languages[0]);
  const files = new Map<string, Uint8Array>();
  for (const page of pages) {
    const sections = languages.map((code): Section => {
      const locale = locales.get(code);
      const strings = locale?.strings ?? fallbackStrings(code);
      const base = {
        id: code.toLowerCase().replace(/[^a-z0-9-]/g, "-"),
        label: escapeHtml(strings.name),
        labelLang: strings.lang,
      };
      const markdown = locale?.pages.get(page);
      if (markdown === undefined) {
        warnings.push(
          `${LOCALES}${code}/${page}.md is missing: the ${code} part of ${page}.html says it is not translated`,
        );
        const lang = locale?.strings ? strings.lang : "en";
        return { ...base, lang, html: escapeHtml(strings.missingTranslation), missingTranslation: true };
      }
      const html = render.markdown(markdown, { ...values, language: code, page });
      return { ...base, lang: strings.lang, html, missingTranslation: false };
    });
    const menu = pages.map((p) => ({
      href: `${p}.html`,
      label: escapeHtml(title(interfaceStrings, p)),
      current: p === page,
    }));
    const html = render.template(LAYOUT, {
      lang: interfaceStrings.lang,
      page,
      title: escapeHtml(title(interfaceStrings, page)),
      mailDomain: escapeHtml(config.mailDomain),
      menuLabel: escapeHtml(interfaceStrings.menu),
      languageTabsLabel: escapeHtml(interfaceStrings.languageTabs),
      menu,
      sections,
    });
    files.set(`${page}.html`, new TextEncoder().encode(html));
  }

  for (const [path, bytes] of sources) {
    if (path.startsWith(SOURCE_ROOT) && path !== LAYOUT && !path.startsWith(LOCALES))
      files.set(path.slice(SOURCE_ROOT.length), bytes);
  }
  // An invite-only relay keeps the tokenless QR code off its site: it would only lead to a refusal.
  if (config.inviteTokens.length === 0)
    files.set(newAccountQrImage(config.mailDomain), qrPng(newAccountLink(config.mailDomain)));
  return { files: sorted(files), invites, warnings };
}

/** Locale folders by upper-case code: their language.json and their Markdown pages. */
function readLocales(texts: ReadonlyMap<string, string>): Map<string, Locale> {
  type Found = { strings?: LanguageStrings; pages: Map<string, string> };
  const found = new Map<string, Found>();
  for (const [path, text] of [...texts].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const match = /^src\/locales\/([^/]+)\/([^/]+)$/.exec(path);
    if (!match) continue;
    const [, folder, file] = match;
    const code = folder.toUpperCase();
    const locale: Found = found.get(code) ?? { pages: new Map() };
    found.set(code, locale);
    if (file === LANGUAGE_FILE) locale.strings = parseLanguageFile(path, text);
    else if (file.endsWith(".md")) locale.pages.set(file.slice(0, -3), path);
  }
  return new Map([...found].map(([code, l]) => [code, { strings: l.strings, pages: l.pages }]));
}

const title = (strings: LanguageStrings, page: string) => strings.pageTitles[page] ?? page;

const homeFirst = (a: string, b: string) => (a === HOME ? -1 : b === HOME ? 1 : a < b ? -1 : a > b ? 1 : 0);

function utf8(path: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new Error(`${path}: not UTF-8 text; save it as UTF-8`);
  }
}

function sorted(files: ReadonlyMap<string, Uint8Array>): Map<string, Uint8Array> {
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
