// The rest of the dashboard: field errors, webhook and event triggers, redrive,
// secrets, kv, users and tokens, event log and audit, and the keyboard alone.
import { api, expect, login, test, unique } from './helpers.js';

test('an API error is shown next to the field it names', async ({ page }) => {
  await login(page);
  await page.getByLabel('Slug').fill('Not A Slug');
  await page.getByRole('button', { name: 'Create app' }).click();
  const slug = page.getByLabel('Slug');
  await expect(slug).toHaveAttribute('aria-invalid', 'true');
  const describedBy = await slug.getAttribute('aria-describedby');
  await expect(page.locator(`#${describedBy}`)).toContainText('slug');
});

test('webhook and event triggers; the webhook secret is shown once', async ({ page }) => {
  const slug = unique('hook');
  await api('POST', '/api/v1/admin/apps', { slug });
  await api('POST', `/api/v1/admin/apps/${slug}/scripts`, { name: 'recv', source: '"ok"' });
  await login(page);
  await page.goto(`/#/apps/${slug}/triggers`);
  await page.getByRole('button', { name: 'Add webhook trigger' }).click();
  const once = page.getByRole('status').filter({ hasText: 'not shown again' });
  await expect(once).toContainText('/hooks/');
  await expect(once.getByText(/^[0-9a-f]{48}$/)).toBeVisible();
  await expect(page.getByRole('cell', { name: /\/hooks\/.*signed/ })).toBeVisible();

  await page.getByLabel('Event name').fill('order.paid');
  await page.getByRole('button', { name: 'Add event trigger' }).click();
  await expect(page.getByRole('cell', { name: 'on order.paid' })).toBeVisible();
  await page.getByRole('button', { name: 'Disable event trigger' }).click();
  await expect(page.getByRole('button', { name: 'Enable event trigger' })).toBeVisible();
});

test('a dead invocation is redriven from its page', async ({ page }) => {
  const slug = unique('dead');
  await api('POST', '/api/v1/admin/apps', { slug });
  const script = await api('POST', `/api/v1/admin/apps/${slug}/scripts`, {
    name: 'boom',
    source: 'log::warn("about to fail"); throw "boom"',
  });
  const queued = await api('POST', `/api/v1/admin/scripts/${script.id}/invoke?async=true`, { max_attempts: 1 });
  await expect
    .poll(async () => (await api('GET', `/api/v1/admin/invocations/${queued.invocation_id}`).catch(() => ({}))).status, {
      timeout: 15_000,
    })
    .toBe('dead');

  await login(page);
  await page.goto(`/#/apps/${slug}/invocations`);
  await page.getByLabel('Filter by status').selectOption('dead');
  await page.getByRole('link', { name: `Invocation ${queued.invocation_id}` }).click();
  await expect(page.getByRole('region', { name: 'Error' })).toContainText('boom');
  await expect(page.getByRole('region', { name: 'Logs' })).toContainText('about to fail');
  await page.getByRole('button', { name: 'Redrive invocation' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Queued again' })).toBeVisible();
});

test('secrets show names only; kv keys are set as JSON', async ({ page }) => {
  const slug = unique('store');
  await api('POST', '/api/v1/admin/apps', { slug });
  await login(page);
  await page.goto(`/#/apps/${slug}/secrets`);
  await expect(page.getByText('No secrets yet.')).toBeVisible();
  await page.getByLabel('Secret name').fill('STRIPE_KEY');
  await page.getByLabel('Secret value').fill('sk_live_very_secret');
  await page.getByRole('button', { name: 'Save secret' }).click();
  await expect(page.getByRole('cell', { name: 'STRIPE_KEY', exact: true })).toBeVisible();
  await expect(page.getByText('sk_live_very_secret')).toHaveCount(0);

  await page.getByRole('link', { name: 'KV' }).click();
  await page.getByLabel('Key', { exact: true }).fill('counter');
  await page.getByLabel('Value (JSON)').fill('not json');
  await page.getByRole('button', { name: 'Save key' }).click();
  await expect(page.getByRole('alert')).toContainText('not valid JSON');
  await page.getByLabel('Value (JSON)').fill('{"n": 41}');
  await page.getByRole('button', { name: 'Save key' }).click();
  await expect(page.getByRole('cell', { name: '{"n":41}' })).toBeVisible();
  await page.getByRole('button', { name: 'Delete key counter' }).click();
  await expect(page.getByText('No keys.')).toBeVisible();
});

test('users, members and a token shown once', async ({ page }) => {
  const slug = unique('team');
  const username = unique('mel');
  await api('POST', '/api/v1/admin/apps', { slug });
  await login(page);
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('New username').fill(username);
  await page.getByRole('button', { name: 'Create user' }).click();
  await expect(page.getByRole('cell', { name: username, exact: true })).toBeVisible();

  await page.goto(`/#/apps/${slug}/members`);
  await page.getByLabel('User', { exact: true }).selectOption({ label: username });
  await page.getByLabel('App role').selectOption('developer');
  await page.getByRole('button', { name: 'Add member' }).click();
  await expect(page.getByLabel(`Role of ${username}`)).toHaveValue('developer');

  await page.getByRole('link', { name: 'Tokens' }).click();
  await page.getByLabel('Token name').fill('ci');
  await page.getByLabel('scripts:write').check();
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.getByLabel('New token value')).toHaveText(/^pc_/);
  await expect(page.getByRole('cell', { name: 'apps:read, scripts:write' })).toBeVisible();
  await page.getByRole('button', { name: 'Revoke ci' }).click();
  await expect(page.getByRole('button', { name: 'Revoke ci' })).toHaveCount(0);
});

test('the event log and the audit view filter', async ({ page }) => {
  const slug = unique('audit');
  await api('POST', '/api/v1/admin/apps', { slug });
  await login(page);
  await page.getByRole('link', { name: 'Events' }).click();
  await expect(page.getByRole('heading', { name: 'Event log' })).toBeVisible();
  await page.getByLabel('Event type').fill('AppCreated');
  await page.getByLabel('Event type').press('Enter');
  await expect(page.getByRole('cell', { name: 'AppCreated' }).first()).toBeVisible();

  await page.getByRole('link', { name: 'Audit' }).click();
  await expect(page.getByRole('heading', { name: 'Audit' })).toBeVisible();
  await page.getByLabel('App (id or slug)').fill(slug);
  await page.getByLabel('App (id or slug)').press('Enter');
  await expect(page.getByRole('row')).toHaveCount(2);

  await page.getByRole('link', { name: 'Nodes' }).click();
  await expect(page.getByRole('heading', { name: 'Cluster nodes' })).toBeVisible();
  // This node, live from the registry.
  await expect(page.getByRole('table', { name: 'Nodes' })).toBeVisible();
  await expect(page.getByRole('cell', { name: 'up', exact: true })).toBeVisible();
});

test('log in and reach an app with the keyboard alone', async ({ page }) => {
  const slug = unique('keys');
  await api('POST', '/api/v1/admin/apps', { slug });
  await page.goto('/');
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Username')).toBeFocused();
  await page.keyboard.type('owner');
  await page.keyboard.press('Tab');
  await page.keyboard.type('owner-password-for-tests');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('button', { name: 'Log out' })).toBeVisible();
  const link = page.getByRole('link', { name: slug });
  for (let i = 0; i < 40 && !(await link.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press('Tab');
  }
  await expect(link).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { name: `App ${slug}` })).toBeVisible();
});

test('on a phone the diff is unified; a script and then its app are deleted', async ({ page }) => {
  const slug = unique('gone');
  await api('POST', '/api/v1/admin/apps', { slug });
  const script = await api('POST', `/api/v1/admin/apps/${slug}/scripts`, { name: 'old', source: 'let a = 1;\na' });
  await api('PUT', `/api/v1/admin/scripts/${script.id}`, { source: 'let a = 2;\na' });
  await page.setViewportSize({ width: 375, height: 800 });
  await login(page);
  await page.goto(`/#/apps/${slug}/scripts/${script.id}`);
  const unified = page.getByRole('textbox', { name: 'Version 2 compared with Version 1' });
  await expect(unified).toContainText('let a = 2;');
  await expect(page.getByRole('group', { name: 'Diff' }).locator('.cm-deletedChunk')).toContainText('let a = 1;');

  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Delete script old' }).click();
  await expect(page.getByRole('heading', { name: `App ${slug}` })).toBeVisible();
  await expect(page.getByText('No scripts yet.')).toBeVisible();

  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: `Delete app ${slug}` }).click();
  await expect(page.getByRole('heading', { name: 'Apps' })).toBeVisible();
  await expect(page.getByRole('link', { name: slug })).toHaveCount(0);
});

test('a script is edited and saved with the keyboard alone', async ({ page }) => {
  const slug = unique('kbd');
  await api('POST', '/api/v1/admin/apps', { slug });
  const script = await api('POST', `/api/v1/admin/apps/${slug}/scripts`, { name: 'k', source: '1' });
  await login(page);
  await page.goto(`/#/apps/${slug}/scripts/${script.id}`);
  const editor = page.getByRole('textbox', { name: 'Source' });
  await expect(editor).toBeVisible();
  for (let i = 0; i < 40 && !(await editor.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press('Tab');
  }
  await expect(editor).toBeFocused();
  await page.keyboard.press('End');
  await page.keyboard.type(' + 41');
  // Tab leaves the editor (no keyboard trap) and reaches the save button.
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'Save new version' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('status')).toContainText('Saved version 2');
  const saved = await api('GET', `/api/v1/admin/scripts/${script.id}`);
  expect(saved.source).toBe('1 + 41');
});

test('an app is renamed and given a custom domain', async ({ page }) => {
  const slug = unique('named');
  const domain = `${slug}.example.com`;
  await api('POST', '/api/v1/admin/apps', { slug });
  await login(page);
  await page.goto(`/#/apps/${slug}`);
  await page.getByLabel('Display name').fill('The Shop');
  await page.getByRole('button', { name: 'Save name' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Name saved' })).toBeVisible();
  await page.getByLabel('Domain', { exact: true }).fill(domain);
  await page.getByRole('button', { name: 'Add domain' }).click();
  await expect(page.getByRole('list', { name: 'Custom domains' })).toContainText(domain);
  const app = await api('GET', `/api/v1/admin/apps/${slug}`);
  expect(app.name).toBe('The Shop');
  expect(app.domains).toEqual([domain]);
  await page.getByRole('button', { name: `Remove domain ${domain}` }).click();
  await expect(page.getByText('No custom domains')).toBeVisible();
});
