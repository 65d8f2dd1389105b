// The dashboard's shell: who is logged in, the navigation, and which page the hash
// names. Each page lives in its own file under pages/.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { get, onUnauthorized, post } from './api.js';
import { match, navigate, useHashPath } from './router.js';
import { Loading } from './ui.jsx';
import { Login } from './pages/Login.jsx';
import { Apps } from './pages/Apps.jsx';
import { AppScripts } from './pages/AppScripts.jsx';
import { Script } from './pages/Script.jsx';
import { Routes } from './pages/Routes.jsx';
import { Triggers } from './pages/Triggers.jsx';
import { Invocations } from './pages/Invocations.jsx';
import { Invocation } from './pages/Invocation.jsx';
import { Secrets } from './pages/Secrets.jsx';
import { Kv } from './pages/Kv.jsx';
import { Members } from './pages/Members.jsx';
import { Users } from './pages/Users.jsx';
import { Tokens } from './pages/Tokens.jsx';
import { Events } from './pages/Events.jsx';
import { Audit } from './pages/Audit.jsx';
import { Nodes } from './pages/Nodes.jsx';

const pages = [
  ['/', Apps],
  ['/apps/:slug', AppScripts],
  ['/apps/:slug/scripts/:id', Script],
  ['/apps/:slug/routes', Routes],
  ['/apps/:slug/triggers', Triggers],
  ['/apps/:slug/invocations', Invocations],
  ['/apps/:slug/invocations/:id', Invocation],
  ['/apps/:slug/secrets', Secrets],
  ['/apps/:slug/kv', Kv],
  ['/apps/:slug/members', Members],
  ['/users', Users],
  ['/tokens', Tokens],
  ['/events', Events],
  ['/audit', Audit],
  ['/nodes', Nodes],
];

function Nav({ me, path, onLogout }) {
  const admin = me.role === 'owner' || me.role === 'admin';
  const links = [
    ['#/', 'Apps'],
    ...(admin ? [['#/users', 'Users']] : []),
    ['#/tokens', 'Tokens'],
    ...(admin
      ? [
          ['#/events', 'Events'],
          ['#/audit', 'Audit'],
          ['#/nodes', 'Nodes'],
        ]
      : []),
  ];
  const current = (href) => {
    const p = href.slice(1);
    return p === '/' ? path === '/' || path.startsWith('/apps') : path.startsWith(p);
  };
  return (
    <header class="top">
      <a class="brand" href="#/">
        PiCloud
      </a>
      <nav aria-label="Main">
        <ul>
          {links.map(([href, text]) => (
            <li key={href}>
              <a href={href} aria-current={current(href) ? 'page' : undefined}>
                {text}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <span class="who">
        {me.username} <span class="role">({me.role})</span>
      </span>
      <button type="button" class="secondary" onClick={onLogout}>
        Log out
      </button>
    </header>
  );
}

function NotFound() {
  return (
    <main>
      <h1>Not found</h1>
      <p>
        No page here. <a href="#/">Back to the apps</a>
      </p>
    </main>
  );
}

function App() {
  const path = useHashPath();
  const [me, setMe] = useState(undefined);

  const loadMe = () =>
    get('me').then(
      (m) => setMe(m),
      () => setMe(null),
    );
  useEffect(() => {
    onUnauthorized(() => setMe(null));
    loadMe();
  }, []);

  if (me === undefined) return <Loading />;
  if (me === null) return <Login onLogin={loadMe} />;

  const logout = async () => {
    try {
      await post('/api/v1/auth/logout');
    } finally {
      setMe(null);
      navigate('/');
    }
  };
  let page = <NotFound />;
  for (const [pattern, Page] of pages) {
    const params = match(pattern, path);
    if (params) {
      page = <Page key={path} {...params} me={me} />;
      break;
    }
  }
  return (
    <div class="shell">
      <a class="skip" href="#content" onClick={(e) => {
        e.preventDefault();
        document.getElementById('content')?.focus();
      }}>
        Skip to content
      </a>
      <Nav me={me} path={path} onLogout={logout} />
      <div id="content" tabIndex={-1}>
        {page}
      </div>
    </div>
  );
}

render(<App />, document.getElementById('root'));
