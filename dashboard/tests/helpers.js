// Shared by the browser tests: the server's address and token, API calls made
// outside the browser (setup only), logging in through the page, and a fixture that
// fails any test during which the page reported a Content-Security-Policy violation.
import { test as base, expect } from '@playwright/test';

export const BASE = process.env.PICLOUD_URL || 'http://127.0.0.1:8080';
export const TOKEN = process.env.PICLOUD_TOKEN || '';
export const OWNER_PASSWORD = 'owner-password-for-tests';

export async function api(method, path, body, token = TOKEN) {
  const res = await fetch(BASE + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
}

export async function login(page, username = 'owner', password = OWNER_PASSWORD) {
  await page.goto('/');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
}

export const test = base.extend({
  cspViolations: [
    async ({ page }, use) => {
      const violations = [];
      page.on('console', (msg) => {
        if (/Content.Security.Policy/i.test(msg.text())) violations.push(msg.text());
      });
      await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
          console.error(`Content-Security-Policy violation: ${e.violatedDirective} ${e.blockedURI}`);
        });
      });
      await use(violations);
      expect(violations, 'no Content-Security-Policy violations').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
