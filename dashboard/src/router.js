// Hash routing (`/#/apps/x`): the server only ever serves `/`, so no client route
// can clash with an app's slug at `/{slug}/…`.
import { useEffect, useState } from 'preact/hooks';

export function currentPath() {
  const h = window.location.hash.replace(/^#/, '');
  return h.startsWith('/') ? h : '/';
}

export function useHashPath() {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const on = () => setPath(currentPath());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return path;
}

export function navigate(path) {
  window.location.hash = path;
}

/** Matches `/apps/:slug/scripts/:id` against a path; returns params or null. */
export function match(pattern, path) {
  const p = pattern.split('/');
  const s = path.split('?')[0].split('/');
  if (p.length !== s.length) return null;
  const params = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(':')) params[p[i].slice(1)] = decodeURIComponent(s[i]);
    else if (p[i] !== s[i]) return null;
  }
  return params;
}
