//! What the search benches share: env-var settings and the pretrained weights and
//! calibration read from a store where the default workflow's pretrain and calibrate ran.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use haq_core::arch::LayerInfo;
use haq_core::config::{Settings, Splits};
use haq_core::hw::CostTable;
use haq_core::quant::ClipTable;
use haq_core::train::from_safetensors;
use haq_store::Store;

/// The env var `key` parsed, else `default`.
pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The latest completed pretrain and calibrate runs' outputs, and their data.
pub struct Calibrated {
    pub weights: Vec<(String, tch::Tensor)>,
    pub layers: Vec<LayerInfo>,
    pub clips: ClipTable,
    pub tables: BTreeMap<String, CostTable>,
    pub settings: Settings,
    pub device: tch::Device,
    pub splits: Splits,
}

pub fn load(path: &Path) -> anyhow::Result<Calibrated> {
    let store = Store::open(path).with_context(|| format!("opening {}", path.display()))?;
    let latest = |stage: &str| {
        store.latest_done(stage)?.with_context(|| {
            format!(
                "no completed `{stage}` run in {}; run `haq run calibrate` first",
                path.display()
            )
        })
    };
    let (pretrain, calibrate) = (latest("pretrain")?, latest("calibrate")?);
    let output = |run: &haq_store::Run, name: &str| -> anyhow::Result<Vec<u8>> {
        let outputs = store.outputs(run.id)?;
        let digest = outputs
            .get(name)
            .with_context(|| format!("run {} has no output {name}", run.id))?;
        Ok(store.get_bytes(digest)?)
    };
    let (settings, _): (Settings, serde_json::Value) = Settings::split_params(&pretrain.params)?;
    Ok(Calibrated {
        weights: from_safetensors(&output(&pretrain, "weights")?)?,
        layers: serde_json::from_slice(&output(&calibrate, "layers")?)?,
        clips: serde_json::from_slice(&output(&calibrate, "clips")?)?,
        tables: serde_json::from_slice(&output(&calibrate, "cost_tables")?)?,
        device: settings.device()?,
        splits: settings.dataset.load(settings.seed)?,
        settings,
    })
}
