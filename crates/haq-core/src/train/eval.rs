//! Top-1 / top-5 accuracy of a model over a dataset.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::Network;
use crate::data::Dataset;
use crate::error::Result;

/// Accuracies in percent and the mean cross-entropy loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub top1: f64,
    pub top5: f64,
    pub loss: f64,
}

/// Evaluates `model` in eval mode, without gradients, over all of `data` in batches; a
/// batch that cannot be read is an error.
pub fn evaluate(
    model: &(impl Network + ?Sized),
    data: &Dataset,
    batch_size: usize,
    device: Device,
) -> Result<Accuracy> {
    let k = data.num_classes.min(5) as i64;
    let (mut top1, mut top5, mut loss) = (0i64, 0i64, 0f64);
    tch::no_grad(|| -> Result<()> {
        for batch in data.eval_batches(batch_size) {
            let batch = batch?;
            let labels = batch.labels.to_device(device);
            let logits = model.logits(&batch.images.to_device(device), false);
            loss += logits
                .cross_entropy_loss::<Tensor>(&labels, None, tch::Reduction::Sum, -100, 0.0)
                .double_value(&[]);
            let (_, best) = logits.topk(k, 1, true, true);
            let hits = best.eq_tensor(&labels.unsqueeze(1));
            top1 += hits.narrow(1, 0, 1).sum(Kind::Int64).int64_value(&[]);
            top5 += hits.sum(Kind::Int64).int64_value(&[]);
        }
        Ok(())
    })?;
    let n = data.len() as f64;
    Ok(Accuracy {
        top1: 100.0 * top1 as f64 / n,
        top5: 100.0 * top5 as f64 / n,
        loss: loss / n,
    })
}
