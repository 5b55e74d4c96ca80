// Languages of the web pages: which ones a build shows (config `languages`, "ALL" = every folder under
// src/locales/) and each language's interface strings, read from src/locales/<CODE>/language.json.

export interface LanguageStrings {
  /** Tab label, in the language itself ("Русский"). */
  readonly name: string;
  /** BCP 47 tag for lang attributes ("ru"). */
  readonly lang: string;
  /** Menu label and page title per page name ("index", "info", ...); unlisted pages use their file name. */
  readonly pageTitles: Readonly<Record<string, string>>;
  /** Shown in a language's tab when the page has no translation into it. */
  readonly missingTranslation: string;
  /** Accessible name of the tab row and of the menu. */
  readonly languageTabs: string;
  readonly menu: string;
}

/** For a language without language.json: its code as the tab name and an English notice. */
export function fallbackStrings(code: string): LanguageStrings {
  return {
    name: code,
    lang: code.toLowerCase(),
    pageTitles: { index: "home" },
    missingTranslation:
      "This page has not been translated into this language. Please contact the relay's administrator.",
    languageTabs: "Language",
    menu: "Pages",
  };
}

/** The languages to show, in tab order: "ALL" is every language present, sorted; otherwise the config order. */
export function selectLanguages(requested: readonly string[], present: readonly string[]): string[] {
  const wanted = requested.map((code) => code.toUpperCase());
  if (wanted.includes("ALL")) {
    if (present.length === 0)
      throw new Error("languages: ALL, but the web page folder has no src/locales/<CODE>/ folder");
    return [...present].sort();
  }
  return [...new Set(wanted)];
}

const LANG_TAG = /^[a-z]{2,3}(-[a-z0-9]{2,8})*$/i;

/** Parses and checks one language.json; errors name the file and the field. */
export function parseLanguageFile(file: string, text: string): LanguageStrings {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data))
    throw new Error(`${file}: must be a JSON object`);
  const record = data as Record<string, unknown>;
  const field = (name: keyof LanguageStrings): string => {
    const value = record[name];
    if (typeof value !== "string" || value.trim() === "")
      throw new Error(`${file}: "${name}" must be a non-empty string`);
    return value;
  };
  const lang = field("lang");
  if (!LANG_TAG.test(lang))
    throw new Error(`${file}: "lang" is "${lang}", not a language tag like "en" or "pt-BR"`);
  const titles = record.pageTitles;
  if (typeof titles !== "object" || titles === null || Array.isArray(titles)) {
    throw new Error(`${file}: "pageTitles" must be an object mapping page names to titles`);
  }
  for (const [page, title] of Object.entries(titles)) {
    if (typeof title !== "string") throw new Error(`${file}: "pageTitles.${page}" must be a string`);
  }
  return {
    name: field("name"),
    lang,
    pageTitles: titles as Record<string, string>,
    missingTranslation: field("missingTranslation"),
    languageTabs: field("languageTabs"),
    menu: field("menu"),
  };
}
