//! The command line: parses arguments, runs the library's commands and is
//! the only place that prints. One file per command.

mod adapt;
mod bench;
mod demo;
mod devices;
mod eval;
mod generate;
mod info;
mod predict;
mod progress;
mod torch_io;
mod train;

use crate::checkpoint::Checkpoint;
use crate::engine::open::{self, Device, EngineChoice, Opened};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::gpu::{self, engine::PathChoice};
use crate::model::ModelConfig;
use crate::optim::AdamConfig;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "wavelstm",
    version,
    about = "Learn raw music waveforms with an LSTM engine written from scratch",
    long_about = "Learn raw music waveforms with an LSTM engine written from scratch.\n\n\
    With no command, runs the demo: trains a small model on the bundled piano clip for about a \
    minute, then writes the model, the predicted and a generated song, plots and a summary into \
    ./wavelstm-out/."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model on one or more songs (WAV, MP3, FLAC, Ogg Vorbis).
    Train(Box<train::TrainArgs>),
    /// Teacher-forced one-step prediction of a whole song, written as a WAV.
    Predict(predict::PredictArgs),
    /// Let the model continue a song on its own: prime it on the song's start,
    /// then feed every output back as the next input.
    Generate(generate::GenerateArgs),
    /// GPU adapters wgpu can use, with the limits the engine checks.
    Devices,
    /// Score a model on songs next to classic predictors (next = current,
    /// linear extrapolation, LPC-32) on the same samples.
    Eval(eval::EvalArgs),
    /// Codec, rate, channels, length and levels of audio files.
    Info {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Training and inference throughput on the synthetic workloads of the
    /// speed benchmarks (the PyTorch and Keras peers run the same ones).
    Bench(bench::BenchArgs),
    /// Make a checkpoint from a PyTorch state dict (safetensors of any float
    /// dtype), for predict, eval and generate.
    Import(torch_io::ImportArgs),
    /// Write a checkpoint's weights as a PyTorch state dict (see examples/torch_model.py).
    Export(torch_io::ExportArgs),
    /// The demo (what running with no command does).
    Demo {
        /// Where to write the model, the WAVs, the plots and the summary.
        #[arg(long, default_value = crate::demo::OUT_DIR)]
        out_dir: PathBuf,
        /// Training steps (`--preset hybrid`, its schedule fitted to them;
        /// the default takes about a minute on 2 cores).
        #[arg(long, default_value_t = crate::demo::STEPS)]
        steps: u64,
        /// Seconds of audio to generate after a 2-s prime on the clip.
        #[arg(long, default_value_t = crate::demo::SECONDS)]
        seconds: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum GpuPath {
    /// Time both on the first step of each shape and keep the faster.
    Auto,
    /// A recurrent product and a gate kernel per timestep.
    Step,
    /// One workgroup per sequence walks all timesteps (hidden <= 512).
    Sequence,
}

#[derive(Args, Debug, Clone)]
struct CommonArgs {
    /// Compute device. `auto` takes a hardware GPU when there is one (not a
    /// software rasterizer, which is slower than the CPU engine) and says which.
    #[arg(long, value_enum, default_value = "auto")]
    device: Device,
    /// GPU adapter whose name contains this (case-insensitive; also WAVELSTM_ADAPTER); see `wavelstm devices`.
    #[arg(long)]
    adapter: Option<String>,
    /// How the GPU runs the recurrence.
    #[arg(long, value_enum, default_value = "auto")]
    gpu_path: GpuPath,
    /// GPU: read the loss back every N training steps (each read waits for the device).
    #[arg(long, default_value_t = open::DEFAULT_READBACK_EVERY)]
    readback_every: usize,
    /// Worker threads of the CPU engine (default: one per core). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

impl Default for CommonArgs {
    /// What the flags default to.
    fn default() -> Self {
        let e = EngineChoice::default();
        CommonArgs {
            device: e.device,
            adapter: e.adapter,
            gpu_path: GpuPath::Auto,
            readback_every: e.readback_every,
            threads: None,
        }
    }
}

impl CommonArgs {
    fn engine_choice(&self) -> EngineChoice {
        EngineChoice {
            device: self.device,
            adapter: self.adapter.clone(),
            gpu_path: match self.gpu_path {
                GpuPath::Auto => PathChoice::Auto,
                GpuPath::Step => PathChoice::Fixed(gpu::program::Path::Step),
                GpuPath::Sequence => PathChoice::Fixed(gpu::program::Path::Sequence),
            },
            readback_every: self.readback_every,
        }
    }
}

/// Run the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    crate::cpu::isa::requested().map_err(Error::config)?;
    match cli.command {
        None => demo::run(
            Path::new(crate::demo::OUT_DIR),
            crate::demo::STEPS,
            crate::demo::SECONDS,
        ),
        Some(Command::Demo {
            out_dir,
            steps,
            seconds,
        }) => demo::run(&out_dir, steps, seconds),
        Some(Command::Info { files }) => info::run(&files),
        Some(Command::Devices) => devices::run(),
        Some(Command::Train(a)) => with_threads(&a.common, || train::run_args(&a).map(|_| ())),
        Some(Command::Predict(a)) => with_threads(&a.common, || predict::run(&a).map(|_| ())),
        Some(Command::Generate(a)) => with_threads(&a.common, || generate::run(&a).map(|_| ())),
        Some(Command::Eval(a)) => with_threads(&a.common, || eval::run(&a)),
        Some(Command::Bench(a)) => with_threads(&a.common, || bench::run(&a)),
        Some(Command::Import(a)) => torch_io::import(&a),
        Some(Command::Export(a)) => torch_io::export(&a),
    }
}

/// The engine `choice` asks for, its notes printed.
fn open_engine(
    choice: &EngineChoice,
    model: &ModelConfig,
    adam: AdamConfig,
    params: Vec<f32>,
) -> Result<Opened> {
    open::open_engine(choice, model, adam, params, &mut |m| eprintln!("{m}"))
}

/// [`open_engine`], behind the trait.
fn make_engine(
    choice: &EngineChoice,
    model: &ModelConfig,
    adam: AdamConfig,
    params: Vec<f32>,
) -> Result<Box<dyn Engine>> {
    Ok(open_engine(choice, model, adam, params)?.into_engine())
}

/// An engine holding a loaded checkpoint's weights, on the device `common` asks for.
fn checkpoint_engine(common: &CommonArgs, ck: &Checkpoint) -> Result<Box<dyn Engine>> {
    make_engine(
        &common.engine_choice(),
        &ck.config.model,
        ck.config.adam,
        ck.state.params.clone(),
    )
}

fn with_threads<T>(common: &CommonArgs, f: impl FnOnce() -> Result<T> + Send) -> Result<T>
where
    T: Send,
{
    match common.threads {
        None => f(),
        Some(0) => Err(Error::config("--threads must be at least 1")),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Other(format!("cannot start {n} threads: {e}")))?
            .install(f),
    }
}
