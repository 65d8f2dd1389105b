//! The shipped operations files: the systemd unit stays hardened.

mod common;

use std::process::Command;

/// `systemd-analyze security` rates the unit 1.2 (OK); a change that loosens it
/// past 1.5 fails here.
#[test]
fn the_systemd_unit_exposure_stays_low() {
    let unit = common::repo_root().join("ops/systemd/picloud.service");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=15", "--no-pager"])
        .arg(&unit)
        .current_dir(dir.path())
        .output();
    let Ok(out) = out else {
        if common::missing("systemd-analyze") {
            return;
        }
        unreachable!();
    };
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exposure above 1.5:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("Overall exposure level"), "{report}");
}
