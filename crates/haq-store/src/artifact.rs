//! Content-addressed artifacts: blobs named by their blake3 digest, stored once however
//! many runs refer to them, and written and read in chunks so a large model never has to
//! sit in memory whole.

use std::fmt;
use std::io::{self, Read};

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{now, Store};

/// A blob is split into rows of this size.
const CHUNK: usize = 1 << 20;

/// The blake3 digest of an artifact's bytes, in hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(pub String);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Digest {
    /// The first 12 hex digits, for display.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

/// What `haq gc` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcStats {
    pub artifacts: u64,
    pub bytes: u64,
}

impl Store {
    /// Stores `bytes` and returns their digest; storing the same bytes twice keeps one copy.
    pub fn put_bytes(&self, bytes: &[u8], media_type: &str) -> Result<Digest> {
        self.put_reader(bytes, media_type)
    }

    /// Streams `reader` into the store chunk by chunk, in one transaction.
    pub fn put_reader(&self, mut reader: impl Read, media_type: &str) -> Result<Digest> {
        self.write_with(|tx| {
            let sql = |e| self.err(e);
            tx.execute(
                "INSERT INTO artifacts (digest, size, media_type, created_at) VALUES (NULL, 0, ?1, ?2)",
                params![media_type, now()],
            )
            .map_err(sql)?;
            let id = tx.last_insert_rowid();
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; CHUNK];
            let (mut seq, mut size) = (0i64, 0u64);
            loop {
                let n = read_full(&mut reader, &mut buf).map_err(|e| Error::io(self.path(), e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                tx.execute(
                    "INSERT INTO artifact_chunks (artifact_id, seq, data) VALUES (?1, ?2, ?3)",
                    params![id, seq, &buf[..n]],
                )
                .map_err(sql)?;
                seq += 1;
                size += n as u64;
            }
            let digest = Digest(hasher.finalize().to_hex().to_string());
            let existing: Option<i64> = tx
                .query_row("SELECT id FROM artifacts WHERE digest = ?1", [&digest.0], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            if existing.is_some() {
                tx.execute("DELETE FROM artifacts WHERE id = ?1", [id]).map_err(sql)?;
            } else {
                tx.execute(
                    "UPDATE artifacts SET digest = ?1, size = ?2 WHERE id = ?3",
                    params![digest.0, size as i64, id],
                )
                .map_err(sql)?;
            }
            Ok(digest)
        })
    }

    /// The whole artifact in memory.
    pub fn get_bytes(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_artifact(digest)?
            .read_to_end(&mut out)
            .map_err(|e| Error::io(self.path(), e))?;
        Ok(out)
    }

    /// A reader over the artifact that loads one chunk at a time.
    pub fn open_artifact(&self, digest: &Digest) -> Result<ArtifactReader<'_>> {
        let (id, size) = self.artifact_id(digest)?;
        Ok(ArtifactReader {
            store: self,
            id,
            next_seq: 0,
            buf: Vec::new(),
            pos: 0,
            size,
        })
    }

    /// Size in bytes, or an error if the artifact is not stored.
    pub fn artifact_size(&self, digest: &Digest) -> Result<u64> {
        Ok(self.artifact_id(digest)?.1)
    }

    /// The media type the artifact was stored with.
    pub fn artifact_media_type(&self, digest: &Digest) -> Result<String> {
        self.conn
            .query_row(
                "SELECT media_type FROM artifacts WHERE digest = ?1",
                [&digest.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or_else(|| Error::NoSuchArtifact(digest.0.clone()))
    }

    fn artifact_id(&self, digest: &Digest) -> Result<(i64, u64)> {
        self.conn
            .query_row(
                "SELECT id, size FROM artifacts WHERE digest = ?1",
                [&digest.0],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or_else(|| Error::NoSuchArtifact(digest.0.clone()))
    }

    /// Deletes every artifact no run input, output or checkpoint refers to.
    pub fn gc(&self) -> Result<GcStats> {
        self.write(|tx| {
            let unreferenced = "FROM artifacts WHERE digest IS NULL OR digest NOT IN (
                   SELECT digest FROM run_inputs UNION SELECT digest FROM run_outputs
                   UNION SELECT digest FROM checkpoints)";
            let (count, bytes): (i64, i64) = tx.query_row(
                &format!("SELECT count(*), coalesce(sum(size), 0) {unreferenced}"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            tx.execute(&format!("DELETE {unreferenced}"), [])?;
            Ok(GcStats {
                artifacts: count as u64,
                bytes: bytes as u64,
            })
        })
    }

    /// Gives the file's free pages back to the file system (after `gc`).
    pub fn vacuum(&self) -> Result<()> {
        self.conn.execute_batch("VACUUM").map_err(|e| self.err(e))
    }
}

/// Reads as much as fits in `buf` unless the reader ends first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Streams an artifact out of the store.
pub struct ArtifactReader<'a> {
    store: &'a Store,
    id: i64,
    next_seq: i64,
    buf: Vec<u8>,
    pos: usize,
    size: u64,
}

impl ArtifactReader<'_> {
    /// The artifact's total size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for ArtifactReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            let chunk: Option<Vec<u8>> = self
                .store
                .conn
                .query_row(
                    "SELECT data FROM artifact_chunks WHERE artifact_id = ?1 AND seq = ?2",
                    params![self.id, self.next_seq],
                    |r| r.get(0),
                )
                .optional()
                .map_err(io::Error::other)?;
            match chunk {
                Some(data) => {
                    self.buf = data;
                    self.pos = 0;
                    self.next_seq += 1;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
