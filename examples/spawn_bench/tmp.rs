//! A private temporary directory, removed with everything in it when dropped.

use std::fs::DirBuilder;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::BoxError;

/// A new directory under the temporary directory (`$TMPDIR`, else `/tmp`) that only this
/// user can enter, so nobody can swap a file between its writing and its executions.
/// Removed, with its contents, when dropped (on every return, errors included).
pub struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// Creates `spawn_bench-<what>.<pid>.<k>`; a leftover of an earlier run with the same
    /// pid is skipped, not reused.
    pub fn create(what: &str) -> Result<PrivateDir, BoxError> {
        let tmp = std::env::temp_dir();
        for k in 0..100 {
            let path = tmp.join(format!("spawn_bench-{what}.{}.{k}", std::process::id()));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("creating {}: {e}", path.display()).into()),
            }
        }
        Err(format!("no free directory name in {}", tmp.display()).into())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a new file `name` with `bytes` and `mode` (whatever the umask), closed on
    /// return: a file still open for writing cannot be executed (`ETXTBSY`).
    pub fn write(&self, name: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, BoxError> {
        let path = self.path.join(name);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)?;
            file.write_all(bytes)?;
            file.set_permissions(std::fs::Permissions::from_mode(mode))
        };
        write().map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
