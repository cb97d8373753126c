//! The byte format of a search checkpoint: a JSON header for counters, random-generator
//! state and the best policy, then safetensors data for networks, optimiser moments and
//! the replay buffer. Layout: [`MAGIC`], the header's length as a little-endian u64, the
//! header, the safetensors bytes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::Tensor;

use crate::error::{Error, Result};
use crate::train::{from_safetensors, to_safetensors};

const MAGIC: &[u8; 8] = b"haq-rl1\n";

pub fn pack<H: Serialize>(header: &H, tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(header)
        .map_err(|e| Error::Checkpoint(format!("cannot serialise the header: {e}")))?;
    let mut bytes = MAGIC.to_vec();
    bytes.extend((json.len() as u64).to_le_bytes());
    bytes.extend(json);
    bytes.extend(to_safetensors(tensors)?);
    Ok(bytes)
}

pub fn unpack<H: DeserializeOwned>(bytes: &[u8]) -> Result<(H, Vec<(String, Tensor)>)> {
    let not_ours = || Error::Checkpoint("not a search checkpoint (bad magic or length)".into());
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(not_ours)?;
    let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(not_ours)?;
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| not_ours())?;
    if rest.len() < len {
        return Err(not_ours());
    }
    let (json, tensors) = rest.split_at(len);
    let header = serde_json::from_slice(json)
        .map_err(|e| Error::Checkpoint(format!("unreadable header: {e}")))?;
    Ok((header, from_safetensors(tensors)?))
}

/// The tensors whose names start with `prefix.`, with the prefix removed.
pub fn strip(tensors: &[(String, Tensor)], prefix: &str) -> Vec<(String, Tensor)> {
    tensors
        .iter()
        .filter_map(|(name, t)| {
            let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
            Some((rest.to_string(), t.shallow_clone()))
        })
        .collect()
}

/// `tensors` with `prefix.` prepended to every name.
pub fn prefixed(prefix: &str, tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    tensors
        .into_iter()
        .map(|(name, t)| (format!("{prefix}.{name}"), t))
        .collect()
}

/// Floats in the header as their shortest exact decimal strings: Rust prints and parses
/// them exactly, while serde_json's default float parsing may land one ulp off, and a
/// resumed search must see the very same numbers.
pub mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&x.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// [`exact_f64`] for an optional float.
pub mod exact_f64_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match x {
            Some(x) => s.serialize_some(&x.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}
