// Drives a modscope HTML report in headless Chromium (playwright-core) with the network
// blocked, and prints what it saw as one JSON object for the Rust test to judge.
// Usage: node check-report.js CHROMIUM REPORT.html OPTIONS_JSON
"use strict";
const { chromium } = require("playwright-core");

async function main() {
  const [exe, file, optsText] = process.argv.slice(2);
  const opts = JSON.parse(optsText || "{}");
  const browser = await chromium.launch({
    executablePath: exe,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const out = { errors: [], blocked: [] };
  try {
    const context = await browser.newContext({
      viewport: { width: opts.width || 1400, height: opts.height || 900 },
      colorScheme: opts.dark ? "dark" : "light",
      offline: true,
    });
    // Anything but the report file itself is refused and remembered.
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("file:")) return route.continue();
      out.blocked.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
    page.on("pageerror", (e) => out.errors.push(String(e)));
    const started = Date.now();
    await page.goto("file://" + file + (opts.hash || ""), { waitUntil: "load" });
    await page.waitForSelector("html[data-ready='1']", { timeout: 10000 });
    out.wallMs = Date.now() - started;
    out.readyMs = await page.evaluate(() => window.modscopeReport.readyAt);
    out.entries = await page.evaluate(() => window.modscopeReport.model.rows.length);
    out.rows = await page.evaluate(() => +document.getElementById("wf").dataset.rows);
    out.domRows = await page.$$eval("#wf .row", (e) => e.length);
    // Cumulative layout shift while loading (the page draws before its first paint).
    out.layoutShift = await page.evaluate(() => new Promise((resolve) => {
      let total = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (!e.hadRecentInput) total += e.value;
      }).observe({ type: "layout-shift", buffered: true });
      setTimeout(() => resolve(total), 200);
    }));

    if (opts.interact) {
      // Hovering a bar shows its phase times.
      await page.hover("#wf .row .bar");
      out.tooltip = await page.evaluate(() => {
        const t = document.getElementById("tip");
        return t.style.display === "block" ? t.textContent : null;
      });
      // Failed only, then click the first failed row.
      await page.check("#f-failed");
      const failed = await page.$("#wf .row.failed");
      if (failed) {
        out.failedIndex = +(await failed.getAttribute("data-i"));
        await failed.click();
        await page.waitForSelector("#details.on");
        out.failedDetails = await page.textContent("#details");
      }
      await page.keyboard.press("Escape");
      await page.uncheck("#f-failed");
      // kind=zip leaves exactly the zip rows.
      const hasZip = await page.$$eval("#f-kind option", (o) => o.some((x) => x.value === "zip"));
      if (hasZip) await page.selectOption("#f-kind", "zip");
      out.zipRows = await page.evaluate(() => +document.getElementById("wf").dataset.rows);
      out.zipKinds = await page.evaluate(() => {
        const m = window.modscopeReport.model;
        return window.modscopeReport.shown().map((i) => m.rows[i].k);
      });
      out.zipDomKinds = await page.$$eval("#wf .row", (e) => e.map((r) => r.dataset.kind));
      out.hash = await page.evaluate(() => location.hash);
      // The fragment alone restores the filter.
      await page.goto("about:blank");
      await page.goto("file://" + file + out.hash, { waitUntil: "load" });
      await page.waitForSelector("html[data-ready='1']");
      out.zipRowsFromHash = await page.evaluate(() => +document.getElementById("wf").dataset.rows);
      // Keyboard: focus the list, move down twice, open details with Enter.
      await page.selectOption("#f-kind", "");
      await page.focus("#wf");
      await page.keyboard.press("Home");
      await page.keyboard.press("ArrowDown");
      await page.keyboard.press("Enter");
      out.keyboardDetails = await page.evaluate(() => {
        const d = document.getElementById("details");
        return d.classList.contains("on") ? d.dataset.entry : null;
      });
      await page.keyboard.press("Escape");
      for (const view of ["connections", "go", "waterfall"]) {
        await page.click("#tab-" + view);
        out["view_" + view] = await page.$$eval("#view-" + view + " .vlist .row", (e) => e.length);
      }
      // Scrolling through the whole list keeps the DOM small.
      out.scrollDomMax = await page.evaluate(async () => {
        const el = document.getElementById("wf");
        let most = 0;
        for (let i = 0; i < 20; i++) {
          el.scrollTop = (el.scrollHeight * i) / 20;
          await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          most = Math.max(most, el.querySelectorAll(".row").length);
        }
        el.scrollTop = 0;
        return most;
      });
    }
    if (opts.screenshot) {
      if (opts.select != null) {
        await page.evaluate((i) => window.modscopeReport.select(i, false), opts.select);
      }
      if (opts.view) await page.click("#tab-" + opts.view);
      await page.waitForTimeout(100);
      await page.screenshot({ path: opts.screenshot });
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + "\n"); process.exit(1); });
