//! Weights as safetensors bytes: exact round trips, the format itself, and loading into a
//! `VarStore` by name.

use haq_core::train::{from_safetensors, load_var_store, to_safetensors, var_store_tensors};
use tch::nn::{self, VarStore};
use tch::{Device, Kind, Tensor};

#[test]
fn round_trips_bitwise_in_every_kind() {
    let tensors = vec![
        (
            "b.float".to_string(),
            Tensor::randn([3, 4], (Kind::Float, Device::Cpu)),
        ),
        (
            "a.double".to_string(),
            Tensor::randn([2], (Kind::Double, Device::Cpu)),
        ),
        ("c.long".to_string(), Tensor::from_slice(&[i64::MIN, -1, 7])),
        ("d.byte".to_string(), Tensor::from_slice(&[0u8, 255])),
        ("e.scalar".to_string(), Tensor::from(3.5f32)),
        // A non-contiguous view is stored as its values.
        (
            "f.transposed".to_string(),
            Tensor::randn([2, 3], (Kind::Float, Device::Cpu)).tr(),
        ),
    ];
    let bytes = to_safetensors(&tensors).unwrap();
    let back = from_safetensors(&bytes).unwrap();
    let names: Vec<&str> = back.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "a.double",
            "b.float",
            "c.long",
            "d.byte",
            "e.scalar",
            "f.transposed"
        ]
    );
    for (name, t) in &tensors {
        let (_, u) = back.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(t.kind(), u.kind(), "{name}");
        assert!(t.equal(u), "{name}");
    }
}

#[test]
fn writes_the_safetensors_layout() {
    let bytes = to_safetensors(&[("w".to_string(), Tensor::from_slice(&[1.0f32, -2.0]))]).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(header["w"]["dtype"], "F32");
    assert_eq!(header["w"]["shape"], serde_json::json!([2]));
    assert_eq!(header["w"]["data_offsets"], serde_json::json!([0, 8]));
    let data = &bytes[8 + header_len..];
    assert_eq!(
        data,
        [1.0f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
    );
}

#[test]
fn garbage_and_duplicate_names_are_rejected() {
    assert!(from_safetensors(b"not safetensors")
        .unwrap_err()
        .to_string()
        .contains("not safetensors data"));
    let t = Tensor::from_slice(&[1.0f32]);
    let dup = [("x".to_string(), t.shallow_clone()), ("x".to_string(), t)];
    assert!(to_safetensors(&dup).is_err());
}

#[test]
fn loads_a_var_store_by_name_strictly() {
    let make = || {
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "fc", 3, 2, Default::default());
        let _ = nn::batch_norm1d(vs.root() / "bn", 2, Default::default());
        vs
    };
    let source = make();
    let target = make();
    let mut saved = var_store_tensors(&source);
    assert_eq!(
        saved.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [
            "bn.bias",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
    // torchvision's batch-norm counters are accepted and ignored.
    saved.push(("bn.num_batches_tracked".into(), Tensor::from(0i64)));
    load_var_store(&target, &saved).unwrap();
    let loaded = var_store_tensors(&target);
    assert!(saved.iter().zip(&loaded).all(|((_, a), (_, b))| a.equal(b)));

    let mut extra = var_store_tensors(&source);
    extra.push((
        "fc2.weight".into(),
        Tensor::zeros([1], (Kind::Float, Device::Cpu)),
    ));
    assert!(load_var_store(&target, &extra)
        .unwrap_err()
        .to_string()
        .contains("`fc2.weight` names no variable"));

    let missing: Vec<_> = var_store_tensors(&source)
        .into_iter()
        .filter(|(n, _)| n != "fc.bias")
        .collect();
    assert!(load_var_store(&target, &missing)
        .unwrap_err()
        .to_string()
        .contains("`fc.bias` is missing"));

    let mut wrong = var_store_tensors(&source);
    wrong[5].1 = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
    let before = var_store_tensors(&target)
        .into_iter()
        .map(|(_, t)| t.copy())
        .collect::<Vec<_>>();
    let err = load_var_store(&target, &wrong).unwrap_err();
    assert!(
        err.to_string()
            .contains("`fc.weight` has shape [3, 2], the model's [2, 3]"),
        "{err}"
    );
    // Nothing was copied.
    assert!(var_store_tensors(&target)
        .iter()
        .zip(&before)
        .all(|((_, a), b)| a.equal(b)));
}
