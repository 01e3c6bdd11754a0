//! Puts the commit the binary is built from into `SLUICE_COMMIT` for `sluice --version`: `git rev-parse --short
//! HEAD`, or "unknown" where there is no git or no checkout (a tarball build must not fail for it).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SLUICE_COMMIT={commit}");
    // Build again when HEAD moves: HEAD itself (a checkout), the branch it names (a commit) and packed refs.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) {
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
    }
    if let (Some(common), Some(branch)) = (
        git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        for path in [common.join(&branch), common.join("packed-refs")] {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
