// Headless chromium for the browser tests (console.test.mjs, admin-ui.test.mjs): Debian's
// chromium driven by playwright-core, never a downloaded browser. scripts/test installs it.
import { resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { REPO_ROOT } from './harness.mjs';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** Where the tests write their screenshots (git-ignored). */
export const SHOTS = process.env.SB_SCREENSHOTS ?? resolve(REPO_ROOT, 'target', 'e2e-screenshots');

export async function launchBrowser() {
  mkdirSync(SHOTS, { recursive: true });
  try {
    return await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  } catch (e) {
    throw new Error(`cannot start ${CHROMIUM} (scripts/test installs Debian's chromium; set CHROMIUM to another binary): ${e.message}`);
  }
}
