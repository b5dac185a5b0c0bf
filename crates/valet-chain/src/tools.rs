//! Finding files under the pinned npm tools directory, `tools/node_modules`.

use std::path::{Path, PathBuf};

/// Environment variable naming a `node_modules` directory to use instead of the workspace's
/// `tools/node_modules` (for a `valet` binary installed away from its source tree).
pub const NODE_MODULES_ENV: &str = "VALET_NODE_MODULES";

/// The directories searched, in order: `$VALET_NODE_MODULES`, then `tools/node_modules` in
/// the crate's source tree (known at compile time) and in every ancestor of the running
/// executable and of the current directory.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os(NODE_MODULES_ENV) {
        out.push(PathBuf::from(dir));
    }
    let mut roots: Vec<PathBuf> = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Ok(exe) = std::env::current_exe() {
        roots.push(exe);
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    for root in &roots {
        for dir in root.ancestors() {
            let tools = dir.join("tools").join("node_modules");
            if !out.contains(&tools) {
                out.push(tools);
            }
        }
    }
    out
}

/// The first existing `<node_modules>/<relative>`, if any.
pub(crate) fn find(relative: &Path) -> Option<PathBuf> {
    candidates()
        .into_iter()
        .map(|dir| dir.join(relative))
        .find(|path| path.is_file())
}

/// The npm platform suffix of the foundry binary packages (`@foundry-rs/anvil-<platform>`).
pub(crate) const FOUNDRY_PLATFORM: &str = if cfg!(all(target_os = "linux", target_arch = "x86_64"))
{
    "linux-amd64"
} else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
    "linux-arm64"
} else if cfg!(all(target_os = "macos", target_arch = "x86_64")) {
    "darwin-amd64"
} else if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
    "darwin-arm64"
} else {
    "win32-amd64"
};
