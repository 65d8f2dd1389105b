// Before the browser tests: give the bootstrap owner a password (with the bootstrap
// token), so the tests can log in through the page like a person.
import { OWNER_PASSWORD, api } from './helpers.js';

export default async function globalSetup() {
  const me = await api('GET', '/api/v1/admin/me');
  await api('PATCH', `/api/v1/admin/users/${me.id}`, { password: OWNER_PASSWORD });
}
