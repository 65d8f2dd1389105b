//! `picloud config show`: the effective settings as a TOML file would hold them,
//! secrets masked, each followed by where it came from.

use std::fmt::Write;

use super::layers::{Setting, Settings};

const MASK: &str = "********";

/// `value` of `key` as it may be shown: the bootstrap token and the master key
/// hidden whole, a password in the database URL (user info or `password=`
/// parameter) hidden.
pub fn mask(key: &str, value: &str) -> String {
    match key {
        "bootstrap_token" | "master_key" => MASK.to_owned(),
        "database" => mask_url(value),
        _ => value.to_owned(),
    }
}

fn mask_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                out = format!("{scheme}://{user}:{MASK}{}", &rest[at..]);
            }
        }
    }
    if let Some((base, query)) = out.clone().split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                    format!("{name}={MASK}")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}?{}", query.join("&"));
    }
    out
}

/// The settings as TOML lines: `key = value  # source`, unset settings as a
/// comment, the sandbox tables last.
pub fn render(settings: &Settings) -> String {
    let mut out = String::from(
        "# The settings `picloud serve` runs with (secrets masked), each with its source.\n",
    );
    let (tables, top): (Vec<&Setting>, Vec<&Setting>) = settings
        .origins
        .iter()
        .partition(|s| s.key.starts_with("sandbox."));
    for setting in top {
        line(&mut out, &setting.key, setting);
    }
    let mut table = "";
    for setting in tables {
        let Some((name, knob)) = setting.key.rsplit_once('.') else {
            continue;
        };
        if name != table {
            table = name;
            let _ = writeln!(out, "\n[{name}]");
        }
        line(&mut out, knob, setting);
    }
    out
}

fn line(out: &mut String, name: &str, setting: &Setting) {
    let entry = match &setting.value {
        None => format!("# {name} (unset)"),
        Some(value) => {
            let shown = mask(&setting.key, value);
            if shown.parse::<u64>().is_ok() {
                format!("{name} = {shown}")
            } else {
                format!("{name} = {}", toml_string(&shown))
            }
        }
    };
    let _ = writeln!(out, "{entry:<48} # {}", setting.source);
}

fn toml_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn secrets_are_masked() {
        assert_eq!(mask("bootstrap_token", "abcdefabcdefabcdef"), "********");
        assert_eq!(mask("master_key", "KioqKio="), "********");
        assert_eq!(
            mask("database", "postgres://picloud:s3cret@db:5432/picloud"),
            "postgres://picloud:********@db:5432/picloud"
        );
        assert_eq!(
            mask("database", "postgres://db/picloud?user=p&password=s3cret"),
            "postgres://db/picloud?user=p&password=********"
        );
        assert_eq!(
            mask("database", "postgres://picloud@db/picloud"),
            "postgres://picloud@db/picloud"
        );
        assert_eq!(mask("listen", "127.0.0.1:8080"), "127.0.0.1:8080");
    }
}
