// The built pages in a real headless Chromium (Debian's chromium, driven by playwright-core) with JavaScript
// turned off, served from a loopback web server: tabs, links, console errors, and screenshots for people to
// look at in test-artifacts/website/.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWebsite } from "../../core/website/build";
import { DOMAIN, editedSources, relayConfig, serveSites, wwwSources, type SiteServer } from "./helpers";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const ARTIFACTS = path.resolve(__dirname, "..", "..", "test-artifacts", "website");
const VIEWPORTS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 900 } };
const PAGES = ["index", "info", "privacy"];
const PRIVACY = [
  "privacy_mail = privacy@example.org",
  "privacy_postal = Example Chat e.V.\n    Hauptstraße 1\n    10115 Berlin",
  "privacy_supervisor = Berliner Beauftragte für Datenschutz und Informationsfreiheit",
];

/**
 * Sites by URL prefix: open registration in EN+RU, invite-only in EN+RU, Russian only, and a development
 * instance whose Russian privacy page is missing (notice boxes).
 */
const SITES = {
  open: buildWebsite(relayConfig("languages = EN RU", ...PRIVACY), wwwSources()).files,
  invite: buildWebsite(
    relayConfig("languages = EN RU", "invite_token = Sentinel1234", ...PRIVACY),
    wwwSources(),
  ).files,
  ru: buildWebsite(relayConfig("languages = RU", ...PRIVACY), wwwSources()).files,
  dev: buildWebsite(
    relayConfig("languages = EN RU", "is_development_instance = true"),
    editedSources({ "src/locales/RU/privacy.md": undefined }),
  ).files,
};
const SITE_NAMES = Object.keys(SITES) as (keyof typeof SITES)[];

let server: SiteServer;
let context: BrowserContext;
let profileDir: string;
const problems: string[] = [];

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/debian-packages)`);
  server = await serveSites(SITES);
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "website-chromium-"));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    // The pages must work without JavaScript, language tabs included.
    javaScriptEnabled: false,
    viewport: VIEWPORTS.desktop,
  });
  context.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning")
      problems.push(`console ${m.type()}: ${m.text()} (${m.page()?.url()})`);
  });
  context.on("weberror", (e) => problems.push(`page error: ${e.error().message}`));
  // A request cut off because the test moved on to the next page (ERR_ABORTED) is no fault of the site;
  // a missing file shows as an error status, any other failure as a failed request.
  context.on("requestfailed", (r) => {
    const error = r.failure()?.errorText ?? "";
    if (!error.includes("ERR_ABORTED")) problems.push(`request failed: ${r.url()} ${error}`);
  });
  context.on("response", (r) => {
    if (r.status() >= 400) problems.push(`missing: ${r.url()} answered ${r.status()}`);
  });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
});

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
});

async function open(site: keyof typeof SITES, page: string): Promise<Page> {
  const tab = context.pages()[0] ?? (await context.newPage());
  await tab.setViewportSize(VIEWPORTS.desktop);
  await tab.goto(`${server.url}/${site}/${page}.html`);
  return tab;
}

const visibleHeading = (page: Page) => page.locator("main h1:visible").innerText();

describe("the built website in Chromium", () => {
  it("switches the language with the tabs, without JavaScript", async () => {
    const page = await open("open", "index");
    expect(await page.locator("html").getAttribute("lang")).toBe("en");
    expect(await page.locator(".tabs > label").allInnerTexts()).toEqual(["English", "Русский"]);
    expect(await page.locator(".tab-panel:visible").getAttribute("lang")).toBe("en");
    expect(await visibleHeading(page)).toBe("Chat with anyone, privately");

    await page.getByText("Русский", { exact: true }).click();
    expect(await page.locator(".tab-panel:visible").getAttribute("lang")).toBe("ru");
    expect(await visibleHeading(page)).toBe("Общайтесь с кем угодно — без посторонних глаз");
    expect(await page.locator(".tab-panel:visible .cta-button").innerText()).toBe(
      `Создать профиль на ${DOMAIN}`,
    );

    await page.getByText("English", { exact: true }).click();
    expect(await visibleHeading(page)).toBe("Chat with anyone, privately");
  });

  it("shows a single language without tabs and with that language's lang", async () => {
    const page = await open("ru", "info");
    expect(await page.locator("html").getAttribute("lang")).toBe("ru");
    expect(await page.locator(".tabs").count()).toBe(0);
    expect(await visibleHeading(page)).toBe(`О сервере ${DOMAIN}`);
    expect(await page.locator("nav a").allInnerTexts()).toEqual([
      "Главная",
      "О сервере",
      "Конфиденциальность",
    ]);
  });

  it("follows every menu link to its page and marks it as the current one", async () => {
    // Every page has the same menu (the build tests check that), so a walk through all pages uses each link.
    for (const site of SITE_NAMES) {
      const page = await open(site, "index");
      for (const to of [...PAGES.slice(1), PAGES[0]]) {
        await page.locator(`nav a[href="${to}.html"]`).click();
        expect(page.url()).toBe(`${server.url}/${site}/${to}.html`);
        expect(await page.locator('nav a[aria-current="page"]').getAttribute("href")).toBe(`${to}.html`);
      }
      await page.locator(".brand").click();
      expect(page.url()).toBe(`${server.url}/${site}/index.html`);
    }
  });

  it("has only links that work: local ones resolve, outside ones use https, profile links the DCACCOUNT link", async () => {
    for (const site of SITE_NAMES) {
      for (const name of PAGES) {
        const page = await open(site, name);
        for (const href of await page
          .locator("a[href]")
          .evaluateAll((as) => as.map((a) => a.getAttribute("href") ?? ""))) {
          if (href.startsWith("DCACCOUNT:")) expect(href).toBe(`DCACCOUNT:https://${DOMAIN}/new`);
          else if (/^(https|mailto):/.test(href)) continue;
          else {
            const response = await context.request.get(new URL(href, page.url()).href);
            expect(response.status(), `${site}/${name}.html links to ${href}`).toBe(200);
          }
        }
      }
    }
  });

  it("shows the profile button and a loaded QR code only when registration is open", async () => {
    const openHome = await open("open", "index");
    await expect
      .poll(() =>
        openHome.locator(".tab-panel:visible .qr img").evaluate((img: HTMLImageElement) => img.naturalWidth),
      )
      .toBeGreaterThan(0);
    expect(await openHome.locator(".tab-panel:visible .cta-button").getAttribute("href")).toBe(
      `DCACCOUNT:https://${DOMAIN}/new`,
    );

    const inviteHome = await open("invite", "index");
    expect(await inviteHome.locator(".cta-button, .qr").count()).toBe(0);
    expect(await inviteHome.locator(".tab-panel:visible .notice").innerText()).toContain("invite-only");
  });

  it("shows the development notice and, in a tab without translation, the notice saying so", async () => {
    const home = await open("dev", "index");
    expect(await home.locator(".tab-panel:visible .experimental").innerText()).toContain(
      "temporary development service",
    );
    const privacy = await open("dev", "privacy");
    await privacy.getByText("Русский", { exact: true }).click();
    expect(await privacy.locator(".tab-panel:visible").innerText()).toBe(
      "Эта страница ещё не переведена на русский язык. Пожалуйста, обратитесь к администратору сервера.",
    );
  });

  it("writes a screenshot of each page at phone and desktop width", async () => {
    const written: string[] = [];
    for (const site of SITE_NAMES) {
      for (const name of PAGES) {
        for (const [width, viewport] of Object.entries(VIEWPORTS)) {
          const page = await open(site, name);
          await page.setViewportSize(viewport);
          const shots = [{ suffix: "", select: undefined as string | undefined }];
          if (site === "open" || site === "dev") shots.push({ suffix: "-ru-tab", select: "Русский" });
          for (const shot of shots) {
            if (shot.select) await page.getByText(shot.select, { exact: true }).click();
            const file = path.join(ARTIFACTS, `${site}-${name}${shot.suffix}-${width}.png`);
            await page.screenshot({ path: file, fullPage: true });
            written.push(file);
          }
        }
      }
    }
    // Dark mode, as phones in night mode show it.
    for (const name of PAGES) {
      const page = await open("open", name);
      await page.setViewportSize(VIEWPORTS.phone);
      await page.emulateMedia({ colorScheme: "dark" });
      const file = path.join(ARTIFACTS, `open-${name}-dark-phone.png`);
      await page.screenshot({ path: file, fullPage: true });
      await page.emulateMedia({ colorScheme: "light" });
      written.push(file);
    }
    for (const file of written) expect(fs.statSync(file).size, file).toBeGreaterThan(10_000);
  });

  it("loaded every page without console errors, page errors or missing files", () => {
    expect(problems).toEqual([]);
    expect(server.notFound).toEqual([]);
  });
});
