//! Training a small network on real Fashion-MNIST with the shared epoch loop: it learns,
//! the same seed gives bitwise-identical weights, and resuming from a checkpoint between
//! epochs continues exactly as an uninterrupted run.

use haq_core::data::{Augment, Dataset, DatasetName, DatasetSpec, Split};
use haq_core::train::{
    evaluate, from_safetensors, load_var_store, to_safetensors, train_epoch, var_store_tensors,
    CosineSchedule, EpochSpec, Sgd, SgdConfig,
};
use tch::nn::{self, VarStore};
use tch::{Device, Tensor};

/// A small conv net with batch norm and dropout (so libtorch's generator is involved).
fn small_net(vs: &VarStore) -> nn::SequentialT {
    let p = vs.root();
    let conv = nn::ConvConfig {
        stride: 2,
        padding: 1,
        bias: false,
        ..Default::default()
    };
    nn::seq_t()
        .add(nn::conv2d(&p / "c1", 1, 16, 3, conv))
        .add(nn::batch_norm2d(&p / "bn1", 16, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::conv2d(&p / "c2", 16, 32, 3, conv))
        .add(nn::batch_norm2d(&p / "bn2", 32, Default::default()))
        .add_fn(|x| x.relu().adaptive_avg_pool2d([2, 2]).flatten(1, -1))
        .add_fn_t(|x, train| x.dropout(0.1, train))
        .add(nn::linear(&p / "fc", 128, 10, Default::default()))
}

struct Run {
    vs: VarStore,
    net: nn::SequentialT,
    opt: Sgd,
}

fn new_run(init_seed: i64) -> Run {
    tch::manual_seed(init_seed);
    let vs = VarStore::new(Device::Cpu);
    let net = small_net(&vs);
    let opt = Sgd::new(
        &vs,
        SgdConfig {
            lr: 0.0,
            momentum: 0.9,
            weight_decay: 5e-4,
            nesterov: false,
        },
    );
    Run { vs, net, opt }
}

const STEPS_PER_EPOCH: usize = 150;
const BATCH: usize = 64;

fn epoch(run: &mut Run, data: &Dataset, e: usize) {
    let schedule = CosineSchedule {
        base_lr: 0.2,
        final_lr: 0.0,
        warmup_steps: 20,
        total_steps: 2 * STEPS_PER_EPOCH,
    };
    let spec = EpochSpec {
        epoch: e,
        seed: 11,
        batch_size: BATCH,
        augment: Augment::default(),
    };
    let mut steps = 0;
    let stats = train_epoch(
        &run.net,
        &mut run.opt,
        data,
        &spec,
        Device::Cpu,
        |i| schedule.lr(e * STEPS_PER_EPOCH + i),
        |s| {
            assert_eq!((s.step, s.steps), (steps, STEPS_PER_EPOCH));
            assert!(s.loss.is_finite());
            steps += 1;
        },
    )
    .unwrap();
    assert_eq!(stats.images, STEPS_PER_EPOCH * BATCH);
}

fn weights(vs: &VarStore) -> Vec<(String, Tensor)> {
    var_store_tensors(vs)
        .into_iter()
        .map(|(n, t)| (n, t.copy()))
        .collect()
}

fn identical(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((na, ta), (nb, tb))| na == nb && ta.equal(tb))
}

#[test]
fn learns_reproducibly_and_resumes_exactly() {
    let _torch = crate::torch_lock();
    tch::set_num_threads(1);
    let spec = DatasetSpec::new(DatasetName::FashionMnist);
    let train = spec
        .load(Split::Train)
        .unwrap()
        .subset(STEPS_PER_EPOCH * BATCH, 5)
        .unwrap();
    let test = spec.load(Split::Test).unwrap().subset(2000, 5).unwrap();

    // Two epochs uninterrupted.
    let mut a = new_run(1);
    epoch(&mut a, &train, 0);
    let checkpoint = (
        to_safetensors(&var_store_tensors(&a.vs)).unwrap(),
        to_safetensors(&a.opt.state()).unwrap(),
    );
    epoch(&mut a, &train, 1);
    let acc = evaluate(&a.net, &test, 500, Device::Cpu).unwrap();
    println!("after 300 steps: {acc:?}");
    assert!(
        acc.top1 > 70.0,
        "top-1 {:.1}% is not clearly above chance (10%)",
        acc.top1
    );
    assert!(acc.top5 > 95.0 && acc.top5 >= acc.top1, "{acc:?}");

    // The same again: bitwise-identical weights.
    let mut b = new_run(1);
    epoch(&mut b, &train, 0);
    epoch(&mut b, &train, 1);
    assert!(
        identical(&weights(&a.vs), &weights(&b.vs)),
        "same seed, different weights"
    );

    // A fresh process (other initial weights) restoring the epoch-0 checkpoint.
    let mut c = new_run(99);
    load_var_store(&c.vs, &from_safetensors(&checkpoint.0).unwrap()).unwrap();
    c.opt
        .load_state(&from_safetensors(&checkpoint.1).unwrap())
        .unwrap();
    epoch(&mut c, &train, 1);
    assert!(
        identical(&weights(&a.vs), &weights(&c.vs)),
        "resumed run diverged"
    );
}
