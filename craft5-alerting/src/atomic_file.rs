//! Small state files replaced whole, crash-safe: write a temporary file,
//! fsync it, rename it over the old one, fsync the directory. Every file
//! craft 5 keeps beside its rules — alert state, silences, acknowledgements,
//! escalations, a compacted outbox — is written this way, so a crash leaves
//! the old version or the new one, never half of either. Docs: chapter 5,
//! "Delivery guarantees".

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` so that a crash leaves the old file or the
/// new one, never half of either: write `<path>.tmp`, fsync it, rename it
/// over `path`, fsync the directory. Shared by every small state file of
/// the crate (alert state, silences, a compacted outbox).
///
/// # Errors
/// The step that failed and why; the previous file is then intact.
pub(crate) fn write_atomically(
    path: &Path,
    bytes: &[u8],
) -> Result<(), (&'static str, std::io::Error)> {
    let mut temp_name = path.as_os_str().to_owned();
    temp_name.push(".tmp");
    let temp = PathBuf::from(temp_name);
    let mut out = File::create(&temp).map_err(|e| ("create the temporary file", e))?;
    out.write_all(bytes)
        .map_err(|e| ("write the temporary file", e))?;
    out.sync_all()
        .map_err(|e| ("fsync the temporary file", e))?;
    drop(out);
    fs::rename(&temp, path).map_err(|e| ("rename the temporary file", e))?;
    sync_directory(path).map_err(|e| ("fsync the directory", e))?;
    Ok(())
}

/// Makes a rename in the file's directory durable. Directories cannot be
/// opened for syncing on Windows; there the rename is as durable as the
/// file system makes it.
pub(crate) fn sync_directory(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let directory = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(directory)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}
