//! The in-memory catalog: every app (with its scripts, routes and domains) and every
//! user, folded from the log. It serves the hot path (slug/domain → app → route →
//! script version, no database round trip) and the admin API's reads of apps,
//! scripts and routes, which are bounded by what people create and so fit in memory.
//!
//! It is a projection with a position: writers wait for `wait_for(position)` after
//! an append so a client reads its own writes. Each app entry is immutable and
//! swapped whole (`Arc`), so readers never lock against the projector.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use picloud_events::RecordedEvent;
use picloud_events::domain::{App, AppEvent, ScriptKind, User, UserEvent, decode};
use picloud_sandbox::{ModuleSource, ScriptSource};
use tokio::sync::watch;

use crate::routing::{MethodMatch, RouteEntry, RoutePattern, RouteTable, parse_method};

/// One app as the hot path needs it, rebuilt on every change to the app.
pub struct AppEntry {
    pub app: App,
    /// Route table whose targets are script ids.
    pub routes: Arc<RouteTable<String>>,
    pub modules: Arc<AppModules>,
}

/// The module scripts of one app at their live versions.
#[derive(Default)]
pub struct AppModules {
    by_name: HashMap<String, ScriptSource>,
}

impl ModuleSource for AppModules {
    fn module(&self, name: &str) -> Option<ScriptSource> {
        self.by_name.get(name).cloned()
    }
}

impl AppEntry {
    fn build(app: App) -> AppEntry {
        let mut entries: Vec<RouteEntry<String>> = Vec::with_capacity(app.routes.len());
        for route in app.routes.values() {
            // Routes were validated when added; a pattern that no longer parses (an
            // older, looser rule) is skipped rather than taking the app down.
            let (Ok(method), Ok(pattern)) = (
                parse_method(&route.method),
                RoutePattern::parse(&route.path),
            ) else {
                tracing::warn!(route = %route.id, "skipping a route that no longer parses");
                continue;
            };
            entries.push(RouteEntry {
                id: route.id.clone(),
                method,
                pattern,
                target: route.script_id.clone(),
                seq: route.seq,
            });
        }
        let mut modules = AppModules::default();
        for script in app.scripts.values() {
            if script.kind != ScriptKind::Module {
                continue;
            }
            if let Some(live) = script.live() {
                modules.by_name.insert(
                    script.name.clone(),
                    ScriptSource {
                        id: script.id.clone(),
                        version: live.version,
                        name: script.name.clone(),
                        source: live.source.clone(),
                        permissions: None,
                    },
                );
            }
        }
        AppEntry {
            app,
            routes: Arc::new(RouteTable::new(entries)),
            modules: Arc::new(modules),
        }
    }
}

/// The whole catalog, for a snapshot (postcard bytes in the store).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CatalogSnapshot {
    pub apps: Vec<App>,
    pub users: Vec<User>,
}

/// Who a bearer token belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenOwner {
    pub user_id: String,
    pub token_id: String,
}

pub struct Catalog {
    position: watch::Sender<i64>,
    /// Someone waits for a position (`wait_for`): the follower reads at once
    /// instead of letting commits gather (see `projector::follow_catalog`).
    pub(crate) awaited: tokio::sync::Notify,
    apps: DashMap<String, Arc<AppEntry>>,
    slugs: DashMap<String, String>,
    domains: DashMap<String, String>,
    scripts: DashMap<String, String>,
    /// Trigger id → app id.
    triggers: DashMap<String, String>,
    users: DashMap<String, Arc<User>>,
    /// Username → user id, for live users (login).
    usernames: DashMap<String, String>,
    tokens: DashMap<String, TokenOwner>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new()
    }
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog {
            position: watch::channel(0).0,
            awaited: tokio::sync::Notify::new(),
            apps: DashMap::new(),
            slugs: DashMap::new(),
            domains: DashMap::new(),
            scripts: DashMap::new(),
            triggers: DashMap::new(),
            users: DashMap::new(),
            usernames: DashMap::new(),
            tokens: DashMap::new(),
        }
    }

    /// The position of the last event applied.
    pub fn position(&self) -> i64 {
        *self.position.borrow()
    }

    /// Wait until the catalog has applied `position` (read-your-writes). False on timeout.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> bool {
        let mut rx = self.position.subscribe();
        if *rx.borrow() >= position {
            return true;
        }
        self.awaited.notify_one();
        let reached = rx.wait_for(|p| *p >= position);
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }

    /// Apply a page of the log read up to `reached` (`Store::read_selected` with
    /// `STREAMS`), in position order, and move the position to `reached`: the
    /// events of other streams in between change nothing here. Events at or before
    /// the current position are skipped, so a re-delivered page changes nothing.
    pub fn apply_all(&self, events: &[RecordedEvent], reached: i64) {
        let mut last = self.position();
        for event in events {
            if event.position <= last {
                continue;
            }
            self.apply(event);
            last = event.position;
        }
        last = last.max(reached);
        self.position.send_if_modified(|p| {
            if last > *p {
                *p = last;
                true
            } else {
                false
            }
        });
    }

    /// The streams the catalog folds (`apply`): it reads only these, so a prefix
    /// `apply` matches must be listed here.
    pub const STREAMS: &'static [&'static str] = &["app-", "user-"];

    fn apply(&self, event: &RecordedEvent) {
        let stream = event.stream.as_str();
        if let Some(app_id) = stream.strip_prefix("app-") {
            if let Some(app_event) = decode::<AppEvent>(event) {
                self.apply_app(app_id, event.version, &app_event);
            }
        } else if let Some(user_id) = stream.strip_prefix("user-")
            && let Some(user_event) = decode::<UserEvent>(event)
        {
            self.apply_user(user_id, &user_event);
        }
    }

    fn apply_app(&self, app_id: &str, version: u64, event: &AppEvent) {
        let mut state = self.apps.get(app_id).map(|e| e.app.clone());
        let before = state.clone();
        App::apply(&mut state, version, event);
        let Some(app) = state else {
            return;
        };
        // Keep the secondary indexes in step with the change.
        if let Some(old) = &before {
            for domain in old.domains.difference(&app.domains) {
                self.domains.remove(domain);
            }
            for script_id in old.scripts.keys() {
                if !app.scripts.contains_key(script_id) {
                    self.scripts.remove(script_id);
                }
            }
            for trigger_id in old.triggers.keys() {
                if !app.triggers.contains_key(trigger_id) {
                    self.triggers.remove(trigger_id);
                }
            }
        }
        if app.deleted {
            self.slugs.remove(&app.slug);
            self.apps.remove(app_id);
            return;
        }
        self.install_app(app);
    }

    /// Index an app under its id, slug, domains and scripts.
    fn install_app(&self, app: App) {
        self.slugs.insert(app.slug.clone(), app.id.clone());
        for domain in &app.domains {
            self.domains.insert(domain.clone(), app.id.clone());
        }
        for script_id in app.scripts.keys() {
            self.scripts.insert(script_id.clone(), app.id.clone());
        }
        for trigger_id in app.triggers.keys() {
            self.triggers.insert(trigger_id.clone(), app.id.clone());
        }
        self.apps
            .insert(app.id.clone(), Arc::new(AppEntry::build(app)));
    }

    /// Index a user and their live tokens.
    fn install_user(&self, user: User) {
        for token in user.tokens.values() {
            if token.revoked {
                self.tokens.remove(&token.hash);
            } else {
                self.tokens.insert(
                    token.hash.clone(),
                    TokenOwner {
                        user_id: user.id.clone(),
                        token_id: token.id.clone(),
                    },
                );
            }
        }
        if user.deleted {
            self.usernames
                .remove_if(&user.username, |_, id| *id == user.id);
        } else {
            self.usernames
                .insert(user.username.clone(), user.id.clone());
        }
        self.users.insert(user.id.clone(), Arc::new(user));
    }

    /// Everything the catalog holds, at its position. Call it from the task that
    /// applies events, so the state and the position agree.
    pub fn snapshot(&self) -> (i64, CatalogSnapshot) {
        let mut apps: Vec<App> = self.apps.iter().map(|e| e.app.clone()).collect();
        apps.sort_by(|a, b| a.id.cmp(&b.id));
        let mut users: Vec<User> = self.users.iter().map(|u| (**u).clone()).collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        (self.position(), CatalogSnapshot { apps, users })
    }

    /// Take over the whole state of `fresh` (a catalog rebuilt from the log): every
    /// entry is replaced or removed one by one, so readers never see an empty catalog.
    /// Call it from the task that applies events.
    pub fn reload(&self, fresh: &Catalog) {
        sync(&self.apps, &fresh.apps);
        sync(&self.slugs, &fresh.slugs);
        sync(&self.domains, &fresh.domains);
        sync(&self.scripts, &fresh.scripts);
        sync(&self.triggers, &fresh.triggers);
        sync(&self.users, &fresh.users);
        sync(&self.usernames, &fresh.usernames);
        sync(&self.tokens, &fresh.tokens);
        let position = fresh.position().max(self.position());
        self.position.send_replace(position);
    }

    /// Load a snapshot into an empty catalog; events after `position` follow.
    pub fn restore(&self, position: i64, snapshot: CatalogSnapshot) {
        for app in snapshot.apps {
            self.install_app(app);
        }
        for user in snapshot.users {
            self.install_user(user);
        }
        self.position.send_replace(position);
    }

    fn apply_user(&self, user_id: &str, event: &UserEvent) {
        let mut state = self.users.get(user_id).map(|u| (**u).clone());
        User::apply(&mut state, event);
        if let Some(user) = state {
            self.install_user(user);
        }
    }

    pub fn app(&self, app_id: &str) -> Option<Arc<AppEntry>> {
        self.apps.get(app_id).map(|e| e.clone())
    }

    /// An app by id or by slug (the admin API accepts either).
    pub fn find_app(&self, id_or_slug: &str) -> Option<Arc<AppEntry>> {
        self.app(id_or_slug).or_else(|| {
            let id = self.slugs.get(id_or_slug)?.clone();
            self.app(&id)
        })
    }

    pub fn app_by_slug(&self, slug: &str) -> Option<Arc<AppEntry>> {
        let id = self.slugs.get(slug)?.clone();
        self.app(&id)
    }

    pub fn app_by_domain(&self, domain: &str) -> Option<Arc<AppEntry>> {
        let id = self.domains.get(domain)?.clone();
        self.app(&id)
    }

    /// Apps sorted by creation time, then id.
    pub fn apps(&self) -> Vec<Arc<AppEntry>> {
        let mut apps: Vec<Arc<AppEntry>> = self.apps.iter().map(|e| e.value().clone()).collect();
        apps.sort_by(|a, b| (a.app.created_at, &a.app.id).cmp(&(b.app.created_at, &b.app.id)));
        apps
    }

    /// The app that owns a script.
    pub fn app_of_script(&self, script_id: &str) -> Option<Arc<AppEntry>> {
        let id = self.scripts.get(script_id)?.clone();
        self.app(&id)
    }

    /// The app that owns a trigger.
    pub fn app_of_trigger(&self, trigger_id: &str) -> Option<Arc<AppEntry>> {
        let id = self.triggers.get(trigger_id)?.clone();
        self.app(&id)
    }

    /// Changes whenever the catalog applies events (its position).
    pub fn changes(&self) -> watch::Receiver<i64> {
        self.position.subscribe()
    }

    /// The app that owns a route.
    pub fn app_of_route(&self, route_id: &str) -> Option<Arc<AppEntry>> {
        self.apps
            .iter()
            .find(|e| e.app.routes.contains_key(route_id))
            .map(|e| e.value().clone())
    }

    pub fn user(&self, user_id: &str) -> Option<Arc<User>> {
        self.users.get(user_id).map(|u| u.clone())
    }

    pub fn token_owner(&self, token_hash: &str) -> Option<TokenOwner> {
        self.tokens.get(token_hash).map(|t| t.clone())
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// A live (not deleted) user by username.
    pub fn user_by_name(&self, username: &str) -> Option<Arc<User>> {
        let id = self.usernames.get(username)?.clone();
        self.user(&id).filter(|u| !u.deleted)
    }

    /// Users that are not deleted, by creation time then id.
    pub fn users(&self) -> Vec<Arc<User>> {
        let mut users: Vec<Arc<User>> = self
            .users
            .iter()
            .filter(|u| !u.deleted)
            .map(|u| u.value().clone())
            .collect();
        users.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        users
    }

    /// Ids of the owners that may act (not disabled, not deleted).
    pub fn active_owner_ids(&self) -> std::collections::BTreeSet<String> {
        self.users
            .iter()
            .filter(|u| u.role == picloud_events::domain::Role::Owner && u.is_active())
            .map(|u| u.id.clone())
            .collect()
    }
}

/// Make `dst` hold exactly what `src` holds.
fn sync<K, V>(dst: &DashMap<K, V>, src: &DashMap<K, V>)
where
    K: Eq + std::hash::Hash + Clone,
    V: Clone,
{
    for entry in src.iter() {
        dst.insert(entry.key().clone(), entry.value().clone());
    }
    dst.retain(|key, _| src.contains_key(key));
}

/// `MethodMatch` as the API shows it.
pub fn method_label(method: &MethodMatch) -> &str {
    match method {
        MethodMatch::Any => "*",
        MethodMatch::Only(m) => m,
    }
}
