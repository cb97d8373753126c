use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "store {path} is full: the disk has no space left. Free some space and rerun; \
         completed work is kept"
    )]
    DiskFull { path: PathBuf },
    #[error(
        "store {path} has schema version {found}, newer than the {known} this haq knows; \
         upgrade haq or use another store"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no run {0} in the store (see `haq runs`)")]
    NoSuchRun(i64),
    #[error("no artifact {0} in the store")]
    NoSuchArtifact(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> Error {
        let full = matches!(
            &source,
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::DiskFull
        );
        if full {
            Error::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            Error::Sqlite {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
