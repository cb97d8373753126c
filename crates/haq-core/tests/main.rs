//! The integration tests of haq-core, one binary so that libtorch is linked once.
//! libtorch's random generator and thread count are global to the process and tests run
//! on parallel threads: every test that seeds it, sets threads or trains holds
//! [`torch_lock`], so each still sees only its own settings.

mod calibrate_w8a8;
mod config;
mod data_batches;
mod data_cifar;
mod data_fashion_mnist;
mod data_folder;
mod data_idx;
mod models_layers;
mod models_torchvision;
mod quant_calibrate;
mod quant_clip;
mod quant_export;
mod quant_extremes;
mod quant_kmeans;
mod quant_linear;
mod search_agent_time;
mod search_budget;
mod search_episode_accuracy;
mod search_exploration;
mod search_finalists;
mod search_hawq;
mod search_hessian;
mod search_ilp;
mod search_learning;
mod search_methods;
mod search_resume;
mod tiny;
mod train_fashion_mnist;
mod train_schedule;
mod train_sgd;
mod train_steps;
mod train_weights;

/// Serialises the tests that use libtorch's global state (see the module doc). A test
/// that failed while holding it leaves it poisoned; the next one takes it anyway.
pub fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    static TORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TORCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
