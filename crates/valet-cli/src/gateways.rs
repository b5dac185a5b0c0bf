//! Where this home's gateways run, so that the command line talks to its own gateway and
//! never to another home's (whatever `--listen` was, and whoever holds the default port).
//!
//! Each `valet serve` writes `gateways/<instance>.json` (where it listens, its pid, a random
//! instance id, the chain) and holds an exclusive lock on `gateways/<instance>.lock` while it
//! runs. The kernel drops the lock when the process ends, even on `kill -9`, so a gateway is
//! running exactly when its lock is held; files left by a killed gateway are stale and removed
//! by the next reader. On SQLite (one process per database) `valet serve` also holds
//! `serve.lock`, and a second one refuses to start.

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The directory of gateway records inside the home.
const DIR: &str = "gateways";
/// The one-gateway lock of a SQLite home.
pub(crate) const SERVE_LOCK: &str = "serve.lock";

/// What a running gateway recorded about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Running {
    /// The address it listens on (as bound: the real port even for `:0`).
    pub(crate) listen: String,
    /// Its process id.
    pub(crate) pid: u32,
    /// A random id of this run (shown in its log).
    pub(crate) instance: String,
    /// The chain id of its node.
    pub(crate) chain_id: u64,
}

impl Running {
    /// The base URL to reach it from this machine (a wildcard address becomes loopback).
    pub(crate) fn url(&self) -> String {
        let addr = self
            .listen
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace("[::]:", "[::1]:");
        format!("http://{addr}")
    }
}

/// The registration of a running gateway: its files are removed when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    _lock: File,
    _serve_lock: Option<File>,
    files: Vec<PathBuf>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
    }
}

/// Takes the home's one-gateway lock (SQLite homes), or says who holds it.
pub(crate) fn lock_sqlite_home(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(SERVE_LOCK);
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            bail!(
                "another `valet serve` is running on this home ({}): a SQLite home has one \
                 gateway; stop it first, or use PostgreSQL (--database-url postgres://…) to run \
                 several",
                if holder.is_empty() {
                    "pid unknown"
                } else {
                    holder
                }
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    write!(file, "pid {}", std::process::id())?;
    Ok(file)
}

/// Records a gateway that has bound its listener. Keep the returned value alive while it serves.
pub(crate) fn register(
    dir: &Path,
    running: &Running,
    serve_lock: Option<File>,
) -> anyhow::Result<Registration> {
    let gateways = dir.join(DIR);
    fs::create_dir_all(&gateways)
        .with_context(|| format!("cannot create {}", gateways.display()))?;
    let json = gateways.join(format!("{}.json", running.instance));
    let lock = gateways.join(format!("{}.lock", running.instance));
    fs::write(&json, serde_json::to_vec(running)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    // Locked under a temporary name, then renamed: a reader never sees an unlocked `.lock` of
    // a live gateway (which it would take for stale and remove).
    let tmp = gateways.join(format!("{}.locking", running.instance));
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.try_lock()
        .map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", tmp.display()))?;
    fs::rename(&tmp, &lock).with_context(|| format!("cannot create {}", lock.display()))?;
    Ok(Registration {
        _lock: file,
        _serve_lock: serve_lock,
        files: vec![lock, json],
    })
}

/// The gateways of this home that are running now (stale records are removed).
pub(crate) fn running(dir: &Path) -> Vec<Running> {
    let Ok(entries) = fs::read_dir(dir.join(DIR)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let lock = entry.path();
        if lock.extension().is_none_or(|e| e != "lock") {
            continue;
        }
        let json = lock.with_extension("json");
        let Ok(file) = File::open(&lock) else {
            continue;
        };
        match file.try_lock_shared() {
            // Nobody holds it: the gateway ended without cleaning up (kill -9, a crash).
            Ok(()) => {
                let _ = fs::remove_file(&lock);
                let _ = fs::remove_file(&json);
            }
            Err(TryLockError::WouldBlock) => {
                if let Some(r) = fs::read(&json)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                {
                    out.push(r);
                }
            }
            Err(TryLockError::Error(_)) => {}
        }
    }
    out
}

/// A new random instance id.
pub(crate) fn instance_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    alloy::primitives::hex::encode(b)
}

/// Whether process `pid` holds the listening socket on `listen` (Linux: `/proc/net/tcp*` and
/// the process's descriptors). `None` when that cannot be told (no `/proc`, no permission):
/// the held lock is then the only proof.
pub(crate) fn listens(pid: u32, listen: &str) -> Option<bool> {
    let addr: std::net::SocketAddr = listen.parse().ok()?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let sockets: Vec<String> = fds
        .flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            t.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let table = match addr {
        std::net::SocketAddr::V4(_) => "/proc/net/tcp",
        std::net::SocketAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = fs::read_to_string(table).ok()?;
    let port = format!("{:04X}", addr.port());
    let ip = match addr {
        std::net::SocketAddr::V4(a) => Some(format!("{:08X}", u32::from_le_bytes(a.ip().octets()))),
        std::net::SocketAddr::V6(_) => None,
    };
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    Some(text.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some((local_ip, local_port)) = f.get(1).and_then(|l| l.split_once(':')) else {
            return false;
        };
        f.get(3) == Some(&"0A")
            && local_port == port
            && ip.as_deref().is_none_or(|ip| ip == local_ip)
            && f.get(9)
                .is_some_and(|inode| sockets.iter().any(|s| s == inode))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_listens_where_it_bound_and_nowhere_else() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let me = std::process::id();
        assert_eq!(listens(me, &addr), Some(true));
        drop(listener);
        assert_eq!(listens(me, &addr), Some(false));
        assert_eq!(listens(me, "not an address"), None);
    }
}
