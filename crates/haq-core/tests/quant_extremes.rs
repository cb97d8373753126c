//! A network under any policy the search may choose gives finite logits, loss and
//! gradients: every layer at 2 bits, 1-bit weights, clips far too small (down to
//! denormals, which some CPUs flush to zero), and channels that are dead (all-zero
//! weights, so batch norm sees zero variance).

use haq_core::arch::{Arch, ArchConfig};
use haq_core::data::{DatasetName, DatasetSpec, Split};
use haq_core::models::{LayerQuantizer, Model};
use haq_core::quant::{measure_clips, ClipTable, LinearQuantizer, Policy};
use haq_core::train::{Network, Sgd, SgdConfig};
use tch::{Device, Tensor};

const SEED: u64 = 5;

fn model() -> (Model, Tensor, Tensor) {
    let train = DatasetSpec::new(DatasetName::FashionMnist)
        .load(Split::Train)
        .unwrap();
    let batch = train.subset(64, SEED).unwrap();
    let batch = batch.eval_batches(64).next().unwrap().unwrap();
    let config = ArchConfig {
        width: 0.25,
        in_channels: 1,
        ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
    };
    let model = Model::new(&config, Device::Cpu, SEED).unwrap();
    (model, batch.images, batch.labels)
}

/// Logits (training and evaluation mode) and loss are finite numbers; so are the
/// gradients when `gradients` says they must be; and an optimiser step leaves every
/// weight finite.
fn step(
    model: &Model,
    quantizer: &dyn LayerQuantizer,
    images: &Tensor,
    labels: &Tensor,
    gradients: bool,
) {
    let finite = |t: &Tensor| t.isfinite().all().int64_value(&[]) == 1;
    let eval = tch::no_grad(|| model.quantized(quantizer).logits(images, false));
    assert!(finite(&eval), "non-finite logits in evaluation mode");
    let logits = model.quantized(quantizer).logits(images, true);
    assert!(finite(&logits), "non-finite logits");
    let loss = logits.cross_entropy_for_logits(labels);
    assert!(finite(&loss), "loss {loss}");
    let vs = model.var_store();
    let before: Vec<Tensor> = vs.trainable_variables().iter().map(Tensor::copy).collect();
    let mut opt = Sgd::new(vs, SgdConfig::default());
    let stepped = opt.backward_step(&loss);
    let bad: Vec<String> = vs
        .variables()
        .into_iter()
        .filter(|(_, v)| v.grad().defined() && !finite(&v.grad()))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        stepped,
        bad.is_empty(),
        "a step is taken iff the gradients are finite"
    );
    if gradients {
        assert!(bad.is_empty(), "non-finite gradients of {bad:?}");
    }
    for v in vs.trainable_variables() {
        assert!(finite(&v), "a weight became non-finite");
    }
    // Undo the step, so that every case starts from the same weights.
    tch::no_grad(|| {
        for (mut v, b) in vs.trainable_variables().into_iter().zip(&before) {
            v.copy_(b);
        }
    });
}

fn with_clips(clips: &ClipTable, value: f64) -> ClipTable {
    let mut clips = clips.clone();
    for layer in &mut clips.layers {
        layer.weight = [value; 8];
        layer.input = [value; 8];
    }
    clips
}

#[test]
fn extreme_policies_give_finite_outputs_and_gradients() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let (model, images, labels) = model();
    let n = model.layers().len();
    let clips = measure_clips(&model, &images).unwrap();
    let root = model.var_store().root() / "quant";
    let policies = [
        ("w2a2", Policy::uniform(n, 2)),
        ("w1a2", Policy::uniform_wa(n, 1, 2)),
        ("w2a1", Policy::uniform_wa(n, 2, 1)),
        ("w8a2", Policy::uniform_wa(n, 8, 2)),
    ];
    let tables = [
        ("measured clips", clips.clone()),
        ("tiny clips", with_clips(&clips, 1e-20)),
        ("denormal clips", with_clips(&clips, 1e-40)),
        ("zero clips", with_clips(&clips, 0.0)),
    ];
    for (name, policy) in &policies {
        for (clip_name, table) in &tables {
            let quantizer = LinearQuantizer::new(&root, policy, table).unwrap();
            println!("{name}, {clip_name}");
            step(&model, &quantizer, &images, &labels, true);
        }
    }

    // Dead channels: half of every layer's output channels have all-zero weights. Their
    // batch norms see zero variance and multiply gradients by 1/sqrt(eps); a chain of
    // them through low-bit activations overflows float32 (measured: w8a2 here), so
    // gradients need not be finite, but the step is then skipped and the weights stay
    // finite.
    tch::no_grad(|| {
        for i in 0..n {
            let w = model.layer_weight(i);
            let dead = w.size()[0] / 2;
            let _ = w.narrow(0, 0, dead.max(1)).zero_();
        }
    });
    for (name, policy) in &policies {
        let quantizer = LinearQuantizer::new(&root, policy, &clips).unwrap();
        println!("{name}, dead channels");
        step(&model, &quantizer, &images, &labels, false);
    }
}
