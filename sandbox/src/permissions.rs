//! A script's permissions manifest: what its SDK calls may reach.
//!
//! ```json
//! {"http": {"allow_hosts": ["api.github.com", "*.example.com"]},
//!  "secrets": ["GH_TOKEN"], "kv": true}
//! ```
//!
//! A script without a manifest has the app's defaults: every SDK service. A
//! script with one has exactly what it grants, nothing else: a section it leaves
//! out is denied (`{"kv": true}` is a script that may use kv and neither http nor
//! secrets). `events::emit` and `invoke::later` stay within the app and are not
//! narrowed. A call outside the manifest throws `<module>: permission_denied: …`
//! naming the permission.

use std::sync::Arc;

use serde_json::Value;

/// Most entries in `http.allow_hosts` or `secrets`.
pub const MAX_ENTRIES: usize = 100;

/// A parsed, valid manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    /// `None`: no outbound HTTP at all.
    pub allow_hosts: Option<Arc<[String]>>,
    /// Secret names the script may read.
    pub secrets: Vec<String>,
    pub kv: bool,
}

/// Why a manifest is refused: the path of the offending field and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PermissionsError {
    pub path: String,
    pub message: String,
}

fn refuse(path: impl Into<String>, message: impl Into<String>) -> PermissionsError {
    PermissionsError {
        path: path.into(),
        message: message.into(),
    }
}

impl Permissions {
    /// Parse and check a manifest.
    pub fn parse(value: &Value) -> Result<Permissions, PermissionsError> {
        let Value::Object(map) = value else {
            return Err(refuse("permissions", "must be a JSON object"));
        };
        let mut permissions = Permissions::default();
        for (key, value) in map {
            match key.as_str() {
                "http" => permissions.allow_hosts = Some(parse_http(value)?),
                "secrets" => permissions.secrets = parse_secrets(value)?,
                "kv" => {
                    permissions.kv = value
                        .as_bool()
                        .ok_or_else(|| refuse("permissions.kv", "must be true or false"))?;
                }
                other => {
                    return Err(refuse(
                        format!("permissions.{other}"),
                        "unknown permission (known: http, secrets, kv)",
                    ));
                }
            }
        }
        Ok(permissions)
    }

    /// Whether the script may read the secret `name`.
    pub fn allows_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name || s == "*")
    }
}

fn parse_http(value: &Value) -> Result<Arc<[String]>, PermissionsError> {
    let Value::Object(map) = value else {
        return Err(refuse("permissions.http", "must be a JSON object"));
    };
    if let Some(other) = map.keys().find(|k| k.as_str() != "allow_hosts") {
        return Err(refuse(
            format!("permissions.http.{other}"),
            "unknown key (known: allow_hosts)",
        ));
    }
    let Some(hosts) = map.get("allow_hosts") else {
        return Ok(Arc::from(Vec::new()));
    };
    let list = string_list(hosts, "permissions.http.allow_hosts")?;
    for (i, host) in list.iter().enumerate() {
        if !valid_host_pattern(host) {
            return Err(refuse(
                format!("permissions.http.allow_hosts[{i}]"),
                "a host name, an address, *.domain or *",
            ));
        }
    }
    Ok(Arc::from(list))
}

fn parse_secrets(value: &Value) -> Result<Vec<String>, PermissionsError> {
    let list = string_list(value, "permissions.secrets")?;
    for (i, name) in list.iter().enumerate() {
        if !(name == "*" || valid_secret_name(name)) {
            return Err(refuse(
                format!("permissions.secrets[{i}]"),
                "a secret name (A-Z a-z 0-9 _ - ., starting with a letter or _) or *",
            ));
        }
    }
    Ok(list)
}

fn string_list(value: &Value, path: &str) -> Result<Vec<String>, PermissionsError> {
    let Value::Array(items) = value else {
        return Err(refuse(path, "must be an array of strings"));
    };
    if items.len() > MAX_ENTRIES {
        return Err(refuse(path, format!("at most {MAX_ENTRIES} entries")));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| refuse(format!("{path}[{i}]"), "must be a string"))
        })
        .collect()
}

/// A secret's name: 1 to 64 of `A-Z a-z 0-9 _ - .`, starting with a letter or `_`.
pub fn valid_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn valid_host_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if pattern.starts_with('[') && pattern.ends_with(']') {
        return pattern[1..pattern.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    }
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_full_manifest_parses() {
        let p = Permissions::parse(&json!({
            "http": {"allow_hosts": ["api.github.com", "*.example.com", "127.0.0.2", "[::1]"]},
            "secrets": ["GH_TOKEN"],
            "kv": true
        }))
        .expect("valid");
        assert_eq!(p.allow_hosts.as_deref().map(<[String]>::len), Some(4));
        assert!(p.allows_secret("GH_TOKEN"));
        assert!(!p.allows_secret("OTHER"));
        assert!(p.kv);
    }

    #[test]
    fn what_a_manifest_leaves_out_is_denied() {
        let p = Permissions::parse(&json!({"kv": true})).expect("valid");
        assert_eq!(p.allow_hosts, None);
        assert!(!p.allows_secret("X"));
        let p = Permissions::parse(&json!({})).expect("valid");
        assert!(!p.kv);
    }

    #[test]
    fn bad_manifests_name_the_field() {
        let cases = [
            (json!([]), "permissions"),
            (json!({"net": true}), "permissions.net"),
            (json!({"kv": "yes"}), "permissions.kv"),
            (json!({"http": []}), "permissions.http"),
            (json!({"http": {"hosts": []}}), "permissions.http.hosts"),
            (
                json!({"http": {"allow_hosts": ["ok.com", "bad host"]}}),
                "permissions.http.allow_hosts[1]",
            ),
            (
                json!({"http": {"allow_hosts": "a.com"}}),
                "permissions.http.allow_hosts",
            ),
            (json!({"secrets": ["OK", 3]}), "permissions.secrets[1]"),
            (json!({"secrets": ["1BAD"]}), "permissions.secrets[0]"),
        ];
        for (manifest, path) in cases {
            let err = Permissions::parse(&manifest).expect_err("refused");
            assert_eq!(err.path, path, "{manifest}");
        }
    }
}
