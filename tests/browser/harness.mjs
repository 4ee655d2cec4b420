// Shared by the Playwright tests and the browser benchmark: a tiny static
// server for the BUILT package (pkg/dist) and the test pages, and Debian's
// Chromium driven by playwright-core (never a downloaded browser).
import { createServer } from "node:http";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, normalize, extname, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SERVED = ["pkg/dist/", "tests/browser/pages/"];
/** Where /pkg/dist/ is served from: the built package, or another build of
 *  it (WAYMARK_DIST=/some/dir, same layout: web/index.js, web/waymark_bg.wasm). */
export const DIST = process.env.WAYMARK_DIST || join(ROOT, "pkg", "dist");
const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Serves pkg/dist and the test pages on 127.0.0.1; resolves to { url, close }. */
export async function serve() {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "");
    if (!SERVED.some((p) => path.startsWith(p))) {
      res.writeHead(404).end();
      return;
    }
    try {
      const file = path.startsWith("pkg/dist/") ? join(DIST, path.slice("pkg/dist/".length)) : join(ROOT, path);
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(path)] || "application/octet-stream", "cache-control": "no-store" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(ok)) };
}

/** Chromium with a fresh user-data-dir (a persistent context, so IndexedDB
 * outlives pages, reloads and renderer crashes). */
export async function launch() {
  const dir = await mkdtemp(join(tmpdir(), "waymark-chromium-"));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  return {
    context,
    async close() {
      await context.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A page with the built package loaded (`window.waymark`). */
export async function harnessPage(context, url) {
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("[page error]", e.message));
  await page.goto(`${url}/tests/browser/pages/idb.html`);
  await page.waitForFunction(() => window.ready === true || window.loadError, null, { timeout: 30_000 });
  const err = await page.evaluate(() => window.loadError);
  if (err) throw new Error(`the package did not load: ${err}`);
  return page;
}
