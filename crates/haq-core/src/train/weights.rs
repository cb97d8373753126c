//! Named tensors (model weights, optimiser state) as safetensors bytes, the form the
//! store keeps artifacts in, and copying them into a `VarStore` by name.
//!
//! The safetensors format: an 8-byte little-endian header length, a JSON header mapping
//! each name to its dtype, shape and byte range, then the raw little-endian data.

use std::borrow::Cow;

use safetensors::tensor::{Dtype, SafeTensors, View};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// A contiguous CPU tensor seen as safetensors data.
struct TensorData {
    dtype: Dtype,
    shape: Vec<usize>,
    tensor: Tensor,
}

impl View for &TensorData {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let mut bytes = vec![0u8; self.data_len()];
        self.tensor.copy_data_u8(&mut bytes, self.tensor.numel());
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.tensor.numel() * self.tensor.kind().elt_size_in_bytes()
    }
}

fn dtype(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        other => {
            return Err(Error::weights(format!(
                "cannot store tensors of kind {other:?}"
            )))
        }
    })
}

fn kind(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        other => {
            return Err(Error::weights(format!(
                "cannot load tensors of dtype {other:?}"
            )))
        }
    })
}

/// Serialises named tensors (from any device) to safetensors bytes. Names must be unique.
pub fn to_safetensors(tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let data = tensors
        .iter()
        .map(|(name, t)| {
            let tensor = t.detach().to_device(tch::Device::Cpu).contiguous();
            let shape = tensor.size().iter().map(|&d| d as usize).collect();
            Ok((
                name.as_str(),
                TensorData {
                    dtype: dtype(tensor.kind())?,
                    shape,
                    tensor,
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    if data.len()
        != tensors
            .iter()
            .map(|(n, _)| n)
            .collect::<std::collections::HashSet<_>>()
            .len()
    {
        return Err(Error::weights("two tensors share a name".into()));
    }
    safetensors::tensor::serialize(data.iter().map(|(name, t)| (*name, t)), &None)
        .map_err(|e| Error::weights(format!("cannot serialise: {e}")))
}

/// Parses safetensors bytes into CPU tensors, in name order.
pub fn from_safetensors(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::weights(format!("not safetensors data: {e}")))?;
    let mut tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let tensor = Tensor::f_from_data_size(view.data(), &shape, kind(view.dtype())?)?;
            Ok((name, tensor))
        })
        .collect::<Result<Vec<_>>>()?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tensors)
}

/// Every variable of `vs` (trainable or not, e.g. batch-norm running statistics), sorted
/// by name.
pub fn var_store_tensors(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut tensors: Vec<_> = vs.variables().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

/// Copies `tensors` into the variables of `vs` by name. Every variable must be given,
/// with its shape; extra names are an error too, except torchvision's batch-norm
/// `num_batches_tracked` counters, which only matter when a batch norm has no momentum.
pub fn load_var_store(vs: &VarStore, tensors: &[(String, Tensor)]) -> Result<()> {
    let mut variables = vs.variables();
    if let Some((name, _)) = tensors
        .iter()
        .find(|(name, _)| !variables.contains_key(name) && !name.ends_with(".num_batches_tracked"))
    {
        return Err(Error::weights(format!(
            "`{name}` names no variable of this model; is it another architecture?"
        )));
    }
    let mut names: Vec<&String> = variables.keys().collect();
    names.sort();
    if let Some(missing) = names
        .into_iter()
        .find(|name| !tensors.iter().any(|(n, _)| n == *name))
    {
        return Err(Error::weights(format!(
            "`{missing}` is missing; is it another architecture?"
        )));
    }
    for (name, tensor) in tensors {
        if let Some(var) = variables.get(name) {
            if var.size() != tensor.size() {
                return Err(Error::weights(format!(
                    "`{name}` has shape {:?}, the model's {:?}",
                    tensor.size(),
                    var.size()
                )));
            }
        }
    }
    tch::no_grad(|| {
        for (name, tensor) in tensors {
            if let Some(var) = variables.get_mut(name) {
                var.f_copy_(tensor)?;
            }
        }
        Ok(())
    })
}
