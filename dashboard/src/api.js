// The one way the dashboard talks to the server: the public admin API, same origin,
// with the session cookie; every write carries the CSRF token from `picloud_csrf`.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
    this.body = body || {};
  }
}

export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)picloud_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : '';
}

let unauthorized = () => {};
/** Called on any 401: the session is gone, so the app shows the login page. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** A request to `path` (absolute, or relative to `/api/v1/admin/`). */
export async function request(method, path, body) {
  const url = path.startsWith('/') ? path : `/api/v1/admin/${path}`;
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken();
  const res = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!res.ok) {
    if (res.status === 401 && !url.endsWith('/auth/login')) unauthorized();
    throw new ApiError(res.status, data);
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body ?? {});
export const put = (path, body) => request('PUT', path, body ?? {});
export const patch = (path, body) => request('PATCH', path, body ?? {});
export const del = (path) => request('DELETE', path);

/** `a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
