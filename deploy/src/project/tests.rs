//! Reading a folder: what is refused before any plan, and how it is named.

use std::path::Path;

use super::*;

fn folder(manifest: &str, scripts: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(MANIFEST), manifest).expect("manifest");
    std::fs::create_dir(dir.path().join(SCRIPTS_DIR)).expect("scripts");
    for (name, source) in scripts {
        std::fs::write(
            dir.path().join(SCRIPTS_DIR).join(format!("{name}.rhai")),
            source,
        )
        .expect("script");
    }
    dir
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(dir: &Path) -> Result<Project, ProjectError> {
    Project::load(dir, &no_env)
}

#[test]
fn an_unknown_key_names_the_manifest_and_its_line() {
    let dir = folder(
        "app = \"a\"\n\n[[routes]]\npath = \"/\"\nscript = \"x\"\nmethdo = \"GET\"\n",
        &[],
    );
    let e = load(dir.path()).expect_err("refused");
    assert!(e.0.contains("picloud.toml:6: "), "{e}");
    assert!(e.0.contains("methdo"), "{e}");
}

#[test]
fn a_route_to_a_missing_script_or_a_module_is_refused() {
    let dir = folder(
        "app = \"a\"\n[[routes]]\npath = \"/\"\nscript = \"nope\"\n",
        &[("x", "1")],
    );
    let e = load(dir.path()).expect_err("refused");
    assert!(e.0.contains("routes[0].script: no script \"nope\""), "{e}");

    let dir = folder(
        "app = \"a\"\n[scripts.m]\nkind = \"module\"\n[[routes]]\npath = \"/\"\nscript = \"m\"\n",
        &[("m", "fn f() { 1 }")],
    );
    let e = load(dir.path()).expect_err("refused");
    assert!(e.0.contains("is a module"), "{e}");
}

#[test]
fn routes_are_normalised_and_checked_as_the_server_does() {
    let dir = folder(
        "app = \"a\"\n[[routes]]\nmethod = \"post\"\npath = \"/x/\"\nscript = \"s\"\n",
        &[("s", "1")],
    );
    let p = load(dir.path()).expect("loads");
    assert_eq!(
        (p.routes[0].method.as_str(), p.routes[0].path.as_str()),
        ("POST", "/x")
    );

    let dir = folder(
        "app = \"a\"\n[[routes]]\npath = \"no-slash\"\nscript = \"s\"\n",
        &[("s", "1")],
    );
    let e = load(dir.path()).expect_err("refused");
    assert!(e.0.contains("routes[0].path"), "{e}");
}

#[test]
fn a_bad_schedule_a_bad_override_and_a_bad_manifest_are_refused() {
    let cron = "app = \"a\"\n[[triggers.cron]]\nscript = \"s\"\nschedule = \"every day\"\n";
    let e = load(folder(cron, &[("s", "1")]).path()).expect_err("refused");
    assert!(e.0.contains("triggers.cron[0]"), "{e}");

    let sandbox = "app = \"a\"\n[scripts.s.sandbox]\nmax_operashuns = 5\n";
    let e = load(folder(sandbox, &[("s", "1")]).path()).expect_err("refused");
    assert!(e.0.contains("scripts.s.sandbox"), "{e}");

    let permissions = "app = \"a\"\n[scripts.s.permissions]\nkv = \"yes\"\n";
    let e = load(folder(permissions, &[("s", "1")]).path()).expect_err("refused");
    assert!(e.0.contains("scripts.s.permissions"), "{e}");
}

#[test]
fn settings_for_a_script_that_is_not_there_are_refused() {
    let e = load(folder("app = \"a\"\n[scripts.ghost]\nkind = \"module\"\n", &[]).path())
        .expect_err("refused");
    assert!(e.0.contains("scripts/ghost.rhai"), "{e}");
}

#[test]
fn the_slug_domains_and_script_file_names_are_checked_as_the_server_does() {
    let e = load(folder("app = \"hooks\"\n", &[]).path()).expect_err("reserved");
    assert!(e.0.contains("picloud.toml: app: "), "{e}");

    let p = load(folder("app = \"a\"\ndomains = [\"Shop.Example.COM.\"]\n", &[]).path())
        .expect("loads");
    assert_eq!(p.domains, ["shop.example.com"]);

    let e = load(folder("app = \"a\"\n", &[("9lives", "1")]).path()).expect_err("refused");
    assert!(
        e.0.contains("scripts/9lives.rhai: the file name is not a script name"),
        "{e}"
    );
}
