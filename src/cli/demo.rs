//! The demo (what running with no command does): `crate::demo::run` on the
//! `train`, `predict` and `generate` commands of this command line, then the
//! summary printed.

use super::generate::GenerateArgs;
use super::predict::PredictArgs;
use super::CommonArgs;
use crate::demo::{self, Commands, Take};
use crate::engine::Engine;
use crate::epoch_report::EpochReport;
use crate::error::Result;
use crate::generate::TakeReport;
use crate::run_config::RunConfig;
use crate::train_setup::TrainOptions;
use std::path::Path;

/// The commands with their flags' defaults.
struct Cli {
    common: CommonArgs,
}

impl Commands for Cli {
    fn started(&mut self, clip: &Path, steps: u64) {
        println!(
            "wavelstm demo: learning {} (--preset hybrid, {steps} steps)",
            clip.display()
        );
    }

    fn train(&mut self, o: &TrainOptions) -> Result<Vec<EpochReport>> {
        super::train::run(o, &self.common.engine_choice())
    }

    fn predict(&mut self, model: &Path, song: &Path, out: &Path, plot: &Path) -> Result<()> {
        super::predict::run(&PredictArgs {
            model: model.to_path_buf(),
            song: song.to_path_buf(),
            out: out.to_path_buf(),
            float: false,
            raw: None,
            plot: Some(plot.to_path_buf()),
            from: None,
            to: None,
            adapt: Default::default(),
            common: self.common.clone(),
        })
        .map(|_| ())
    }

    fn engine(&mut self, cfg: &RunConfig, params: Vec<f32>) -> Result<Box<dyn Engine>> {
        super::make_engine(&self.common.engine_choice(), &cfg.model, cfg.adam, params)
    }

    fn generate(&mut self, take: &Take) -> Result<Vec<TakeReport>> {
        super::generate::run(&GenerateArgs {
            model: take.model.to_path_buf(),
            prime: take.prime.to_path_buf(),
            seconds: take.seconds,
            out: take.out.to_path_buf(),
            prime_seconds: take.prime_seconds,
            variations: 1,
            seed: 0,
            temperature: 1.0,
            float: false,
            plot: None,
            spectrogram: None,
            common: self.common.clone(),
        })
    }
}

pub(super) fn run(out_dir: &Path, steps: u64, gen_seconds: f64) -> Result<()> {
    let mut cli = Cli {
        common: CommonArgs::default(),
    };
    let summary = demo::run(out_dir, steps, gen_seconds, &mut cli)?;
    println!("\n{summary}");
    Ok(())
}
