// The screenshot gallery (run on demand: `npm run screenshots` against a running
// server, PICLOUD_URL and PICLOUD_TOKEN set): every page at 1280 and 375 px wide,
// written to ../docs/screenshots/<page>-<desktop|phone>.png.
import { api, expect, login, test, unique } from './helpers.js';

const OUT = new URL('../../docs/screenshots/', import.meta.url).pathname;

test('every page at desktop and phone width', async ({ page }) => {
  const slug = unique('shop');
  const app = await api('POST', '/api/v1/admin/apps', { slug, name: 'Shop' });
  const script = await api('POST', `/api/v1/admin/apps/${slug}/scripts`, {
    name: 'orders',
    source: '// list orders\nlet id = ctx.params.id;\nlog::info(`order ${id}`);\n#{ id: id, state: "paid" }\n',
  });
  await api('PUT', `/api/v1/admin/scripts/${script.id}`, {
    source: '// one order, with its total\nlet id = ctx.params.id;\nlog::info(`order ${id}`);\n#{ id: id, state: "paid", total: 42 }\n',
  });
  await api('POST', `/api/v1/admin/apps/${app.id}/routes`, { method: 'GET', path: '/orders/:id', script_id: script.id });
  await api('POST', `/api/v1/admin/apps/${slug}/triggers/cron`, { script_id: script.id, schedule: '0 0 6 * * *', timezone: 'Europe/Berlin' });
  await api('POST', `/api/v1/admin/apps/${slug}/triggers/webhook`, { script_id: script.id, secret: 'whsec_example' });
  await api('POST', `/api/v1/admin/apps/${slug}/triggers/event`, { script_id: script.id, event: 'order.paid' });
  await api('PUT', `/api/v1/admin/apps/${slug}/secrets/STRIPE_KEY`, { value: 'sk_test' });
  await api('PUT', `/api/v1/admin/apps/${slug}/kv/orders:count`, { value: { n: 41 } });
  const user = await api('POST', '/api/v1/admin/users', { username: unique('mel'), role: 'member' });
  await api('POST', `/api/v1/admin/apps/${slug}/members`, { user_id: user.id, role: 'developer' });
  await api('POST', '/api/v1/admin/tokens', { name: 'ci', scopes: ['scripts:write'] });
  for (const id of [7, 8, 9]) await fetch(`${process.env.PICLOUD_URL}/${slug}/orders/${id}`);
  // Records are written a moment after the answer.
  let inv;
  await expect
    .poll(async () => {
      inv = (await api('GET', `/api/v1/admin/apps/${slug}/invocations`)).invocations[0]?.id;
      return inv;
    })
    .toBeTruthy();

  const pages = [
    ['apps', '/'],
    ['app-scripts', `/apps/${slug}`],
    ['script-editor', `/apps/${slug}/scripts/${script.id}`],
    ['routes', `/apps/${slug}/routes`],
    ['triggers', `/apps/${slug}/triggers`],
    ['invocations', `/apps/${slug}/invocations`],
    ['invocation', `/apps/${slug}/invocations/${inv}`],
    ['secrets', `/apps/${slug}/secrets`],
    ['kv', `/apps/${slug}/kv`],
    ['members', `/apps/${slug}/members`],
    ['users', '/users'],
    ['tokens', '/tokens'],
    ['events', '/events'],
    ['audit', '/audit'],
    ['nodes', '/nodes'],
  ];
  for (const [width, kind] of [
    [1280, 'desktop'],
    [375, 'phone'],
  ]) {
    await page.setViewportSize({ width, height: width > 400 ? 800 : 812 });
    await page.context().clearCookies();
    await page.goto('/');
    await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
    await page.screenshot({ path: `${OUT}login-${kind}.png` });
    await login(page);
    for (const [name, path] of pages) {
      await page.goto(`/#${path}`);
      await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
      await expect(page.getByRole('status').filter({ hasText: /Loading/ })).toHaveCount(0);
      if (name === 'routes') {
        await page.getByLabel('Request path').fill('/orders/7');
        await page.getByRole('button', { name: 'Send request' }).click();
        await expect(page.getByRole('region', { name: 'Response' })).toContainText('Status 200');
      }
      if (name === 'triggers') {
        await expect(page.getByRole('list', { name: 'Next fire times' }).getByRole('listitem')).toHaveCount(5);
      }
      if (name === 'script-editor') {
        await expect(page.getByRole('group', { name: 'Diff' })).toBeVisible();
      }
      await page.screenshot({ path: `${OUT}${name}-${kind}.png`, fullPage: name === 'script-editor' || name === 'routes' || name === 'triggers' });
    }
  }
});
