//! Measuring a model's clip table on real Fashion-MNIST images, and quantizing the model
//! with it.

use haq_core::arch::{Arch, ArchConfig};
use haq_core::data::{DatasetName, DatasetSpec, Split};
use haq_core::models::Model;
use haq_core::quant::clip::max_abs;
use haq_core::quant::{measure_clips, LinearQuantizer, Policy};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn model_and_images() -> (Model, Tensor) {
    tch::set_num_threads(1);
    let config = ArchConfig {
        in_channels: 1,
        width: 0.25,
        ..ArchConfig::new(Arch::MobileNetV2, 28, 10)
    };
    let model = Model::new(&config, Device::Cpu, 5).unwrap();
    let test = DatasetSpec::new(DatasetName::FashionMnist)
        .load(Split::Test)
        .unwrap();
    let images = test.eval_batches(64).next().unwrap().unwrap().images;
    (model, images)
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1).to_kind(Kind::Float)).unwrap()
}

#[test]
fn clip_table_covers_every_layer_from_its_own_weights_and_inputs() {
    let _torch = crate::torch_lock();
    let (model, images) = model_and_images();
    let table = measure_clips(&model, &images).unwrap();
    assert_eq!(table.layers.len(), model.layers().len());
    for (clips, info) in table.layers.iter().zip(model.layers()) {
        assert_eq!(
            clips.signed_input, info.signed_input,
            "layer {}",
            info.index
        );
        let w_max = max_abs(&values(&model.layer_weight(info.index)));
        assert_eq!(
            clips.weight_clip(8),
            w_max,
            "layer {}: 8-bit weight clip",
            info.index
        );
        for bits in 1..=8 {
            assert!(clips.weight_clip(bits) > 0.0 && clips.weight_clip(bits) <= w_max);
            assert!(clips.input_clip(bits) > 0.0 && clips.input_clip(bits) <= clips.input_clip(8));
        }
    }
    // Layer 0's input is the image batch itself.
    assert_eq!(table.layers[0].input_clip(8), max_abs(&values(&images)));
}

#[test]
fn fewer_bits_perturb_the_logits_more() {
    let _torch = crate::torch_lock();
    let (model, images) = model_and_images();
    let table = measure_clips(&model, &images).unwrap();
    let float =
        tch::no_grad(|| model.forward_quantized(&images, false, &haq_core::models::FullPrecision));
    let n = model.layers().len();
    let errors: Vec<f64> = [8u8, 4, 2]
        .iter()
        .map(|&k| {
            let vs = VarStore::new(Device::Cpu);
            let quant = LinearQuantizer::new(&vs.root(), &Policy::uniform(n, k), &table).unwrap();
            let logits = tch::no_grad(|| model.forward_quantized(&images, false, &quant));
            let err = (&logits - &float).norm().double_value(&[]) / float.norm().double_value(&[]);
            println!("uniform:{k}: relative logit error {err:.4}");
            err
        })
        .collect();
    // A randomly initialised network is fragile (nothing is trained to be robust); 8 bits
    // still stays within 10% while 2 bits destroys the output. The trained-model bound is
    // tests/calibrate_w8a8.rs's.
    assert!(
        errors[0] < 0.1,
        "8 bits: relative logit error {}",
        errors[0]
    );
    assert!(errors[0] < errors[1] && errors[1] < errors[2], "{errors:?}");
}
