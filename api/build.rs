//! Embeds the dashboard's built files (`dashboard/dist/`, committed) in the binary:
//! writes `$OUT_DIR/dashboard_files.rs`, a table of `(path, include_bytes!(…))`
//! sorted by path. A missing `dist/` gives an empty table (the dashboard then
//! answers 404), so the API still builds without it.

use std::fs;
use std::path::{Path, PathBuf};

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path));
        }
    }
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dist = Path::new(&manifest).join("../dashboard/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    let mut table = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        let absolute = path.canonicalize().unwrap_or_else(|_| path.clone());
        table.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    table.push_str("];\n");
    let out = std::env::var("OUT_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    if let Err(e) = fs::write(out.join("dashboard_files.rs"), table) {
        panic!("cannot write dashboard_files.rs: {e}");
    }
}
