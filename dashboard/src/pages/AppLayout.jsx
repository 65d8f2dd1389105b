// The frame of every page about one app: its name and the app's sections.
const tabs = [
  ['', 'Scripts'],
  ['/routes', 'Routes'],
  ['/triggers', 'Triggers'],
  ['/invocations', 'Invocations'],
  ['/secrets', 'Secrets'],
  ['/kv', 'KV'],
  ['/members', 'Members'],
];

export function AppLayout({ slug, tab, title, children }) {
  const base = `#/apps/${encodeURIComponent(slug)}`;
  return (
    <main>
      <p class="crumbs">
        <a href="#/">Apps</a> / <a href={base}>{slug}</a>
      </p>
      <h1>{title}</h1>
      <nav aria-label="App sections" class="tabs">
        <ul>
          {tabs.map(([suffix, text]) => (
            <li key={suffix}>
              <a href={base + suffix} aria-current={tab === text ? 'page' : undefined}>
                {text}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      {children}
    </main>
  );
}
