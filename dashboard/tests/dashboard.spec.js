// The dashboard end to end, in a real browser, found by role and label.
import { OWNER_PASSWORD, api, expect, login, test, unique } from './helpers.js';

async function createApp(page, slug) {
  await page.goto('/#/');
  await page.getByLabel('Slug').fill(slug);
  await page.getByRole('button', { name: 'Create app' }).click();
  await expect(page.getByRole('heading', { name: `App ${slug}` })).toBeVisible();
}

async function createScript(page, name) {
  await page.getByLabel('Script name').fill(name);
  await page.getByRole('button', { name: 'Create script' }).click();
  await expect(page.getByRole('heading', { name: `Script ${name}` })).toBeVisible();
}

async function setSource(page, source) {
  const editor = page.getByRole('textbox', { name: 'Source' });
  await editor.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await editor.fill(source);
}

test('a wrong password is refused with a message', async ({ page }) => {
  await page.goto('/');
  await page.getByLabel('Username').fill('owner');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toContainText('invalid username or password');
  await expect(page.getByRole('button', { name: 'Log out' })).toHaveCount(0);
});

test('the owner logs in, sees the apps and logs out', async ({ page }) => {
  await login(page);
  await expect(page.getByRole('heading', { name: 'Apps' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Users' })).toBeVisible();
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
});

test('create an app, a script and a route, then call it from the page', async ({ page }) => {
  const slug = unique('web');
  await login(page);
  await createApp(page, slug);
  await createScript(page, 'greet');
  await setSource(page, '#{ hello: ctx.params.name, method: ctx.request.method }');
  await page.getByRole('button', { name: 'Save new version' }).click();
  await expect(page.getByRole('status')).toContainText('Saved version 2');

  await page.getByRole('link', { name: 'Routes' }).click();
  await page.getByLabel('Path pattern').fill('/hi/:name');
  await page.getByRole('button', { name: 'Add route' }).click();
  await expect(page.getByRole('cell', { name: '/hi/:name', exact: true })).toBeVisible();

  await page.getByLabel('Request method').selectOption('POST');
  await page.getByLabel('Request path').fill('/hi/ada');
  await page.getByLabel('Request body').fill('{"x":1}');
  await page.getByRole('button', { name: 'Send request' }).click();
  const response = page.getByRole('region', { name: 'Response' });
  await expect(response).toContainText('Status 404');

  await page.getByLabel('Request method').selectOption('GET');
  await page.getByRole('button', { name: 'Send request' }).click();
  await expect(response).toContainText('Status 200');
  await expect(response.getByLabel('Response body')).toContainText('"hello":"ada"');
  await expect(response).toContainText(/\d+ ms/);
  await response.getByText(/Headers/).click();
  await expect(response).toContainText('x-request-id');
});

test('a save that does not compile is marked at its line; diff and roll back', async ({ page }) => {
  const slug = unique('edit');
  await login(page);
  await createApp(page, slug);
  await createScript(page, 'calc');

  await setSource(page, 'let a = 1;\nlet b = 2;\nlet c = ;\na + b');
  await page.getByRole('button', { name: 'Save new version' }).click();
  await expect(page.getByRole('alert')).toContainText('Line 3');
  await expect(page.locator('.cm-lint-marker-error')).toHaveCount(1);

  await setSource(page, 'let a = 1;\nlet b = 2;\na + b');
  await page.getByRole('button', { name: 'Save new version' }).click();
  await expect(page.getByRole('status')).toContainText('Saved version 2');
  await expect(page.getByRole('alert')).toHaveCount(0);

  await setSource(page, 'let a = 1;\nlet b = 40;\na + b + 1');
  await page.getByRole('button', { name: 'Save new version' }).click();
  await expect(page.getByRole('status')).toContainText('Saved version 3');

  // Side by side: version 2 left, version 3 right.
  await page.getByLabel('Left version').selectOption('2');
  await page.getByLabel('Right version').selectOption('3');
  const diff = page.getByRole('group', { name: 'Diff' });
  await expect(diff.getByRole('textbox', { name: 'Version 2' })).toContainText('let b = 2;');
  await expect(diff.getByRole('textbox', { name: 'Version 3' })).toContainText('let b = 40;');
  await expect(diff.locator('.cm-changedLine').first()).toBeVisible();

  await page.getByRole('button', { name: 'Roll back to version 2' }).click();
  await expect(page.getByRole('status')).toContainText('version 2 is live');
  await expect(page.getByRole('textbox', { name: 'Source' })).toContainText('let b = 2;');
  await expect(page.getByText('live version 2 of 3')).toBeVisible();
});

test('a cron trigger previews its next five fire times as you type', async ({ page }) => {
  const slug = unique('cron');
  await login(page);
  await createApp(page, slug);
  await createScript(page, 'tick');
  await page.getByRole('link', { name: 'Triggers' }).click();

  const schedule = page.getByLabel('Schedule');
  await schedule.fill('not a schedule');
  await expect(page.locator('.card', { has: schedule }).getByRole('alert')).toBeVisible();

  await schedule.fill('0 30 9 * * *');
  await page.getByLabel('Time zone').selectOption('Europe/Berlin');
  const fires = page.getByRole('list', { name: 'Next fire times' });
  await expect(fires.getByRole('listitem')).toHaveCount(5);
  await expect(fires.getByRole('listitem').first()).toContainText(/T09:30:00\+0[12]:00/);

  await page.getByRole('button', { name: 'Add cron trigger' }).click();
  await expect(page.getByRole('cell', { name: /0 30 9 \* \* \* \(Europe\/Berlin\)/ })).toBeVisible();
});

test('a new invocation appears live without a reload', async ({ page }) => {
  const slug = unique('live');
  const app = await api('POST', '/api/v1/admin/apps', { slug });
  const script = await api('POST', `/api/v1/admin/apps/${slug}/scripts`, {
    name: 'ping',
    source: 'log::info("pinged"); "pong"',
  });
  await api('POST', `/api/v1/admin/apps/${app.id}/routes`, { method: 'GET', path: '/ping', script_id: script.id });

  await login(page);
  await page.goto(`/#/apps/${slug}/invocations`);
  await expect(page.getByText('No invocations yet')).toBeVisible();
  await expect(page.getByRole('status').filter({ hasText: 'Live updates' })).toContainText('live');

  const res = await fetch(`${process.env.PICLOUD_URL}/${slug}/ping`);
  expect(res.status).toBe(200);

  const row = page.getByRole('row').filter({ hasText: 'ping' });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('succeeded');
  await expect(page.getByRole('list', { name: 'Live log' })).toContainText('pinged');
  await row.getByRole('link').click();
  await expect(page.getByRole('heading', { name: 'Invocation' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Logs' })).toContainText('pinged');
});

test('a member sees only their own app', async ({ page }) => {
  const mine = unique('mine');
  const theirs = unique('theirs');
  const username = unique('member');
  const password = 'member-password-123';
  await api('POST', '/api/v1/admin/apps', { slug: mine });
  await api('POST', '/api/v1/admin/apps', { slug: theirs });
  const user = await api('POST', '/api/v1/admin/users', { username, role: 'member', password });
  await api('POST', `/api/v1/admin/apps/${mine}/members`, { user_id: user.id, role: 'developer' });

  await login(page, username, password);
  await expect(page.getByRole('link', { name: mine })).toBeVisible();
  await expect(page.getByRole('link', { name: theirs })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await expect(page.getByRole('heading', { name: 'New app' })).toHaveCount(0);

  await page.goto(`/#/apps/${theirs}`);
  await expect(page.getByRole('alert')).toContainText(/not found|unknown|no app/i);
  expect(OWNER_PASSWORD).not.toBe(password);
});

/** Controls on the page without a visible label or accessible name. */
async function unnamedControls(page) {
  return page.evaluate(() => {
    const bad = [];
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (el.type === 'hidden') continue;
      if ((el.labels && el.labels.length > 0) || el.getAttribute('aria-label')) continue;
      bad.push(el.outerHTML.slice(0, 80));
    }
    for (const el of document.querySelectorAll('button, a[href], [role="textbox"]')) {
      const name = el.getAttribute('aria-label') || el.textContent.trim();
      if (!name) bad.push(el.outerHTML.slice(0, 80));
    }
    return bad;
  });
}

test('every page fits a 375 px phone screen and names every control', async ({ page }) => {
  const slug = unique('phone');
  await api('POST', '/api/v1/admin/apps', { slug });
  const script = await api('POST', `/api/v1/admin/apps/${slug}/scripts`, { name: 'p', source: '"ok"' });
  await api('PUT', `/api/v1/admin/scripts/${script.id}`, { source: '"ok!"' });
  const pages = ['/', `/apps/${slug}`, `/apps/${slug}/scripts/${script.id}`, `/apps/${slug}/routes`,
    `/apps/${slug}/triggers`, `/apps/${slug}/invocations`, `/apps/${slug}/secrets`, `/apps/${slug}/kv`,
    `/apps/${slug}/members`, '/users', '/tokens', '/events', '/audit', '/nodes'];
  await login(page);
  for (const width of [375, 1280]) {
    await page.setViewportSize({ width, height: 800 });
    for (const path of pages) {
      await page.goto(`/#${path}`);
      await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
      await expect(page.getByRole('status').filter({ hasText: /Loading/ })).toHaveCount(0);
      const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(scroll, `page ${path} is ${scroll} px wide at ${width}`).toBeLessThanOrEqual(width);
      expect(await unnamedControls(page), `unnamed controls on ${path}`).toEqual([]);
    }
  }
});
