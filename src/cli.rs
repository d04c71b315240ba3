//! The command line: parses arguments, resolves presets, drives train /
//! predict / eval / info, and is the only place that prints.

use crate::audio::{self, ChannelMode, SampleFormat};
use crate::bench;
use crate::checkpoint::{self, Cursor};
use crate::cpu::adam::AdamConfig;
use crate::cpu::engine::CpuEngine;
use crate::dataset::{DataConfig, Dataset};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::eval::{self, Scope, SongReport};
use crate::generate::{self, GenerateConfig, TakeReport};
use crate::gpu::{self, context, engine::GpuEngine, engine::PathChoice};
use crate::metrics::{score, Score};
use crate::model::{init_params, Activation, CellActivation, GateActivation, ModelConfig, Output};
use crate::plot::{self, EpochLoss};
use crate::residual::Residual;
use crate::rng::SplitMix64;
use crate::train::{self, EpochReport, Event, LrSchedule, RunConfig};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    Train(Box<TrainArgs>),
    /// Teacher-forced one-step prediction of a whole song, written as a WAV.
    Predict(PredictArgs),
    /// Let the model continue a song on its own: prime it on the song's start,
    /// then feed every output back as the next input.
    Generate(GenerateArgs),
    /// GPU adapters wgpu can use, with the limits the engine checks.
    Devices,
    /// Score a model on songs next to classic predictors (next = current,
    /// linear extrapolation, LPC-32) on the same samples.
    Eval(EvalArgs),
    /// Codec, rate, channels, length and levels of audio files.
    Info {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Training and inference throughput on the synthetic workloads of the
    /// speed benchmarks (the PyTorch and Keras peers run the same ones).
    Bench(BenchArgs),
    /// The demo (what running with no command does).
    Demo {
        /// Where to write the model, the WAVs, the plots and the summary.
        #[arg(long, default_value = "wavelstm-out")]
        out_dir: PathBuf,
        /// Training steps (the default takes about a minute on 2 cores).
        #[arg(long, default_value_t = DEMO_STEPS)]
        steps: u64,
        /// Seconds of audio to generate after a 2-s prime on the clip.
        #[arg(long, default_value_t = DEMO_SECONDS)]
        seconds: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Device {
    /// A hardware GPU adapter if there is one, else the CPU.
    Auto,
    /// A GPU adapter (software ones such as Mesa's lavapipe included).
    Gpu,
    Cpu,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Channels {
    /// Mix all channels down to one.
    Mono,
    /// Two channels as two features of one model, in and out.
    Stereo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputHead {
    /// The next sample, trained by mean squared error.
    Mse,
    /// 256 logits per channel over the μ-law quantized next sample (μ = 255),
    /// trained by softmax cross-entropy, as in WaveNet and SampleRNN.
    Mulaw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ResidualArg {
    /// The model predicts the next sample itself.
    None,
    /// The model learns the residual of the causal LPC-32 predictor (the
    /// LPCNet idea); the prediction is LPC's plus the model's output.
    Lpc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// The original Keras notebook's model, without its bugs: frame 3, seq-len 1,
    /// LSTM(100) with linear cell activation and hard-sigmoid gates, LeakyReLU(0.3)
    /// after the LSTM and after every dense layer 50-25-12-1, batch 100, 20 epochs,
    /// Adam lr 1e-3, the first 160,000 frames of each song.
    Seed,
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
    #[arg(long, default_value_t = 10)]
    readback_every: usize,
    /// Worker threads of the CPU engine (default: one per core). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Truncated backpropagation through time: a training sequence is --seq-len \
timesteps and gradients never flow between sequences. Without --stateful every sequence starts \
from a zero state (h = c = 0) and sequences are shuffled each epoch (from --seed). With \
--stateful the training data is dealt into --batch lanes of consecutive sequences; each lane \
carries h and c over from one step to the next (no gradient crosses), and restarts from zero \
where it enters a new song. The last --valid-fraction of every song is never trained on."
)]
struct TrainArgs {
    /// Songs to learn (WAV, MP3, FLAC, Ogg Vorbis).
    #[arg(required_unless_present = "resume")]
    songs: Vec<PathBuf>,
    /// Checkpoint to write (safetensors), after every epoch.
    #[arg(long, short, default_value = "model.safetensors")]
    out: PathBuf,
    /// Continue a run exactly where its checkpoint stopped (songs, model and data
    /// options come from the checkpoint; --epochs and --max-steps may extend it).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start from the weights of this safetensors file (same names and shapes).
    #[arg(long)]
    init: Option<PathBuf>,
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Epochs to train [default: 1].
    #[arg(long)]
    epochs: Option<u64>,
    /// Stop after this many training steps in all.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Seed of initialisation and shuffling [default: 0].
    #[arg(long)]
    seed: Option<u64>,

    /// Mono mixdown or stereo [default: mono].
    #[arg(long, value_enum)]
    channels: Option<Channels>,
    /// Resample every song to this rate [default: the first song's rate].
    #[arg(long)]
    sample_rate: Option<u32>,
    /// Use only the first N frames of each song.
    #[arg(long)]
    max_frames: Option<usize>,
    /// Fraction at the end of each song kept for validation [default: 0.1].
    #[arg(long)]
    valid_fraction: Option<f64>,
    /// Samples per channel each timestep sees (the notebook's look_back) [default: 1].
    #[arg(long)]
    frame: Option<usize>,
    /// Timesteps per training sequence [default: 256].
    #[arg(long)]
    seq_len: Option<usize>,
    /// Sequences per step [default: 32].
    #[arg(long)]
    batch: Option<usize>,
    /// Carry h and c across consecutive sequences (see below).
    #[arg(long)]
    stateful: bool,
    /// Take sequences in order instead of shuffled.
    #[arg(long)]
    no_shuffle: bool,

    /// LSTM layers [default: 1].
    #[arg(long)]
    layers: Option<usize>,
    /// LSTM hidden units [default: 64].
    #[arg(long)]
    hidden: Option<usize>,
    /// Hidden widths of the dense head, e.g. 50,25,12 ("" for a linear head) [default: ""].
    #[arg(long)]
    head: Option<String>,
    /// Activation of the cell candidate and the cell state [default: tanh].
    #[arg(long, value_enum)]
    cell_activation: Option<CellActivation>,
    /// Activation of the gates [default: sigmoid].
    #[arg(long, value_enum)]
    gate_activation: Option<GateActivation>,
    /// Activation after the LSTM, before the head [default: linear].
    #[arg(long, value_enum)]
    lstm_activation: Option<Activation>,
    /// Activation of the head's output [default: linear].
    #[arg(long, value_enum)]
    output_activation: Option<Activation>,
    /// Negative slope of LeakyReLU [default: 0.3].
    #[arg(long)]
    leaky_slope: Option<f64>,
    /// What the head predicts [default: mse].
    #[arg(long, value_enum)]
    output: Option<OutputHead>,
    /// Learn the residual of a causal LPC-32 (refitted every 1024 samples on
    /// the preceding second) instead of the sample itself [default: none].
    #[arg(long, value_enum)]
    residual: Option<ResidualArg>,

    /// Adam learning rate [default: 1e-3].
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    beta1: Option<f64>,
    #[arg(long)]
    beta2: Option<f64>,
    #[arg(long)]
    adam_eps: Option<f64>,
    /// Decoupled weight decay (AdamW) [default: 0].
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Learning-rate schedule over the planned run (--epochs, or --max-steps
    /// when that ends it sooner) [default: cosine; seed preset: constant].
    #[arg(long, value_enum)]
    lr_schedule: Option<LrSchedule>,
    /// Clip the global gradient norm to this (0: off) [default: 1].
    #[arg(long)]
    clip: Option<f64>,

    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// A checkpoint written by `wavelstm train`.
    #[arg(long, short)]
    model: PathBuf,
    /// The song to predict.
    song: PathBuf,
    /// The predicted WAV to write.
    #[arg(long, short, default_value = "pred.wav")]
    out: PathBuf,
    /// Write 32-bit float instead of 16-bit PCM.
    #[arg(long)]
    float: bool,
    /// Also plot original and predicted waveform, and their difference, to this PNG
    /// (the model's view: its rate, mono mixdown or first channel).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Start of the plotted window, in seconds [default: the middle of the song].
    #[arg(long, requires = "plot")]
    from: Option<f64>,
    /// End of the plotted window, in seconds [default: --from + 0.05].
    #[arg(long, requires = "plot")]
    to: Option<f64>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The model reads the first --prime-seconds of the song teacher-forced, then runs free: \
each output sample becomes the newest sample of the next input window. Outputs are clipped to full \
scale (±1 in audio units) before they are fed back. A model with the mse head is deterministic, so \
its variations are identical; a mulaw head samples at --temperature (0: the most likely value). The \
takes are written in the song's level at the model's sample rate, without the prime."
)]
struct GenerateArgs {
    /// A checkpoint written by `wavelstm train`.
    #[arg(long, short)]
    model: PathBuf,
    /// The song whose start primes the model.
    #[arg(long)]
    prime: PathBuf,
    /// Seconds to generate per take.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// The WAV to write; with --variations K > 1, NAME_1.wav ... NAME_K.wav.
    #[arg(long, short, default_value = "gen.wav")]
    out: PathBuf,
    /// Seconds of the song read before the model runs free.
    #[arg(long, default_value_t = 2.0)]
    prime_seconds: f64,
    /// Takes generated together, as one batch.
    #[arg(long, default_value_t = 1)]
    variations: usize,
    /// Seed of the sampling (mulaw head); the same seed gives the same takes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Softmax temperature of the mulaw head (0: most likely value; no effect on mse).
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Write 32-bit float instead of 16-bit PCM.
    #[arg(long)]
    float: bool,
    /// Also write spectrograms of the original (prime and how the song goes on)
    /// and of the prime followed by the first take, side by side, to this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Scored part: a checkpoint records its training songs by path only, so a song cannot be recognised by its content. By default the last --valid-fraction of every song is scored (for a training song that is exactly the part it was never trained on); --all scores the whole song. Songs listed as training songs are marked with *. All four predictors are scored on the same samples, at the model's rate and channel layout."
)]
struct EvalArgs {
    /// A checkpoint written by `wavelstm train`.
    #[arg(long, short)]
    model: PathBuf,
    /// Songs to score (WAV, MP3, FLAC, Ogg Vorbis).
    #[arg(required = true)]
    songs: Vec<PathBuf>,
    /// Score the whole of every song.
    #[arg(long, conflicts_with = "valid_fraction")]
    all: bool,
    /// Score the last F of every song [default: the model's own --valid-fraction].
    #[arg(long)]
    valid_fraction: Option<f64>,
    /// Print the results as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Write spectrograms of the original and the predicted scored part: into
    /// this directory (one PNG per song), or to this .png file (one song).
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Workloads: seed (the --preset seed model, one epoch of 320,000 windows at batch 100), \
seq (hidden 256, 2 layers, seq-len 256, batch 32), wide (hidden 512, 1 layer, seq-len 128, batch 64), \
small (hidden 32, 1 layer, seq-len 64, batch 8), seq-infer and wide-infer (forward only), \
generate (free-running generation, hidden 256, 1 layer, one take) and generate-8 (8 takes as \
one batch). Each timed training step waits for the device to finish it. GFLOP/s count the \
LSTM's matrix products only: 3 × Σ over layers of 2·4H(I+H)·B·T per training step; for \
generation, Σ over layers of 2·4H(I+H)·B plus the head's products per free step. Generation is \
timed one second of audio (44,100 free steps) per take at a time, after a 10-ms prime; rtf is \
seconds of audio per wall-clock second, every take counted (and per take)."
)]
struct BenchArgs {
    /// Workloads, comma-separated: seed, seq, wide, small, seq-infer,
    /// wide-infer, generate, generate-8.
    #[arg(long, value_delimiter = ',', required = true)]
    workload: Vec<String>,
    /// Timed steps after the warm-up (at least 20 for a fair median);
    /// generation: timed seconds of audio per take [default: 20; generate: 5].
    #[arg(long)]
    steps: Option<usize>,
    /// Untimed steps first [default: 3; seed: 300; generate: 1 second of audio].
    #[arg(long)]
    warmup: Option<usize>,
    /// Timed epochs of the seed workload.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// One JSON object per workload on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// GPU: device time per kernel of a few extra steps, the dispatches per
    /// step and the recurrence path.
    #[arg(long)]
    profile: bool,
    #[command(flatten)]
    common: CommonArgs,
}

/// Steps of the demo: about a minute on 2 cores.
const DEMO_STEPS: u64 = 1000;
/// Seconds the demo generates.
const DEMO_SECONDS: f64 = 3.0;

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
    crate::cpu::tile::requested().map_err(Error::config)?;
    match cli.command {
        None => demo(Path::new("wavelstm-out"), DEMO_STEPS, DEMO_SECONDS),
        Some(Command::Demo {
            out_dir,
            steps,
            seconds,
        }) => demo(&out_dir, steps, seconds),
        Some(Command::Info { files }) => info(&files),
        Some(Command::Devices) => devices(),
        Some(Command::Train(a)) => with_threads(&a.common, || train_cmd(&a).map(|_| ())),
        Some(Command::Predict(a)) => with_threads(&a.common, || predict_cmd(&a).map(|_| ())),
        Some(Command::Generate(a)) => with_threads(&a.common, || generate_cmd(&a).map(|_| ())),
        Some(Command::Eval(a)) => with_threads(&a.common, || eval_cmd(&a)),
        Some(Command::Bench(a)) => with_threads(&a.common, || bench_cmd(&a)),
    }
}

/// The engine `--device` asks for.
fn make_engine(
    common: &CommonArgs,
    model: &ModelConfig,
    adam: AdamConfig,
    params: Vec<f32>,
) -> Result<Box<dyn Engine>> {
    Ok(match open_engine(common, model, adam, params)? {
        Opened::Cpu(e) => e,
        Opened::Gpu(e) => e,
    })
}

/// An engine by its type: `bench --profile` asks the GPU one for its kernel times.
enum Opened {
    Cpu(Box<CpuEngine>),
    Gpu(Box<GpuEngine>),
}

fn open_engine(
    common: &CommonArgs,
    model: &ModelConfig,
    adam: AdamConfig,
    params: Vec<f32>,
) -> Result<Opened> {
    let adapter = match common.device {
        Device::Cpu => None,
        Device::Gpu => Some(
            context::choose(common.adapter.as_deref(), false)?.ok_or_else(|| {
                Error::config("--device gpu: no GPU adapter found (Vulkan, Metal or DX12); `wavelstm devices` lists what wgpu sees")
            })?,
        ),
        Device::Auto => {
            let a = context::choose(common.adapter.as_deref(), common.adapter.is_none())?;
            if a.is_none() {
                eprintln!("--device auto: no hardware GPU adapter, using the CPU");
            }
            a
        }
    };
    match adapter {
        None => Ok(Opened::Cpu(Box::new(CpuEngine::new(
            model.clone(),
            adam,
            params,
        )?))),
        Some(adapter) => {
            let path = match common.gpu_path {
                GpuPath::Auto => PathChoice::Auto,
                GpuPath::Step => PathChoice::Fixed(gpu::program::Path::Step),
                GpuPath::Sequence => PathChoice::Fixed(gpu::program::Path::Sequence),
            };
            let gpu = context::Gpu::open(adapter)?;
            Ok(Opened::Gpu(Box::new(GpuEngine::new(
                gpu,
                model.clone(),
                adam,
                params,
                path,
                common.readback_every,
            )?)))
        }
    }
}

/// `wavelstm devices`: every adapter wgpu sees, and what the engine uses of it.
fn devices() -> Result<()> {
    let all = context::adapters();
    if all.is_empty() {
        println!("no GPU adapters (Vulkan, Metal, DX12) found; --device auto uses the CPU");
        return Ok(());
    }
    for a in all {
        let info = a.get_info();
        let l = a.limits();
        println!("{}", context::describe(&info));
        println!(
            "  auto picks it: {}; timestamp queries: {}",
            if context::is_hardware(&info) {
                "yes"
            } else {
                "no (software)"
            },
            if a.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
                "yes"
            } else {
                "no"
            }
        );
        println!(
            "  max_storage_buffer_binding_size {} MiB, max_buffer_size {} MiB, storage buffers per stage {}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_storage_buffers_per_shader_stage
        );
        println!(
            "  workgroup: {} invocations, {} B shared memory, {} workgroups per dimension",
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_storage_size,
            l.max_compute_workgroups_per_dimension
        );
    }
    Ok(())
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

fn info(files: &[PathBuf]) -> Result<()> {
    let mut failed = 0;
    for f in files {
        match audio::info(f) {
            Ok(i) => {
                let levels = |v: &[f64]| {
                    v.iter()
                        .map(|x| format!("{x:.2}"))
                        .collect::<Vec<_>>()
                        .join(" / ")
                };
                println!(
                    "{}: {}, {} Hz, {} ch, {} frames, {:.3} s, peak {} dBFS, RMS {} dBFS",
                    f.display(),
                    i.codec,
                    i.sample_rate,
                    i.channels,
                    i.frames,
                    i.duration_secs,
                    levels(&i.peak_dbfs),
                    levels(&i.rms_dbfs)
                );
            }
            Err(e) => {
                // Report every bad file, then fail once for all of them.
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "{failed} of {} files could not be read",
            files.len()
        )))
    }
}

fn parse_head(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<usize>().map_err(|_| {
                Error::config(format!(
                    "--head: `{x}` is not a width (expected e.g. 50,25,12)"
                ))
            })
        })
        .collect()
}

/// The run configuration from the arguments: explicit flags, then the preset, then defaults.
fn resolve(a: &TrainArgs, sample_rate: u32, channels: usize) -> Result<(RunConfig, Option<usize>)> {
    let seed_preset = a.preset == Some(Preset::Seed);
    let p = |seed: usize, default: usize| if seed_preset { seed } else { default };
    let head = match &a.head {
        Some(h) => parse_head(h)?,
        None if seed_preset => vec![50, 25, 12],
        None => vec![],
    };
    let model = ModelConfig {
        channels,
        frame: a.frame.unwrap_or(p(3, 1)),
        hidden: a.hidden.unwrap_or(p(100, 64)),
        layers: a.layers.unwrap_or(1),
        head,
        cell_activation: a.cell_activation.unwrap_or(if seed_preset {
            CellActivation::Linear
        } else {
            CellActivation::Tanh
        }),
        gate_activation: a.gate_activation.unwrap_or(if seed_preset {
            GateActivation::HardSigmoid
        } else {
            GateActivation::Sigmoid
        }),
        lstm_output_activation: a.lstm_activation.unwrap_or(if seed_preset {
            Activation::LeakyRelu
        } else {
            Activation::Linear
        }),
        output_activation: a.output_activation.unwrap_or(if seed_preset {
            Activation::LeakyRelu
        } else {
            Activation::Linear
        }),
        leaky_slope: a.leaky_slope.unwrap_or(0.3),
        // The μ-law head's scale is the dataset's, known once the songs are read.
        output: match a.output.unwrap_or(OutputHead::Mse) {
            OutputHead::Mse => Output::Mse,
            OutputHead::Mulaw => Output::Mulaw { scale: 1.0 },
        },
    };
    model.validate()?;
    let residual = a.residual == Some(ResidualArg::Lpc);
    if residual && matches!(model.output, Output::Mulaw { .. }) {
        // μ-law classes are spaced for full-scale audio: a residual 30 to 50 dB
        // below it would fall into a handful of classes around zero.
        return Err(Error::config(
            "--residual lpc needs --output mse (a μ-law head is too coarse for a residual)",
        ));
    }
    let data = DataConfig {
        frame: model.frame,
        seq_len: a.seq_len.unwrap_or(p(1, 256)),
        batch: a.batch.unwrap_or(p(100, 32)),
        valid_fraction: a.valid_fraction.unwrap_or(0.1),
        stateful: a.stateful,
        shuffle: !a.no_shuffle,
    };
    if data.seq_len == 0 || data.batch == 0 {
        return Err(Error::config("--seq-len and --batch must be at least 1"));
    }
    let d = AdamConfig::default();
    let adam = AdamConfig {
        lr: a.lr.unwrap_or(d.lr),
        beta1: a.beta1.unwrap_or(d.beta1),
        beta2: a.beta2.unwrap_or(d.beta2),
        eps: a.adam_eps.unwrap_or(d.eps),
        weight_decay: a.weight_decay.unwrap_or(d.weight_decay),
        clip: a.clip.unwrap_or(if seed_preset { 0.0 } else { 1.0 }),
    };
    let finite_pos = |v: f64| v.is_finite() && v > 0.0;
    if !finite_pos(adam.lr)
        || !(0.0..1.0).contains(&adam.beta1)
        || !(0.0..1.0).contains(&adam.beta2)
        || !finite_pos(adam.eps)
        || adam.weight_decay.is_nan()
        || adam.weight_decay < 0.0
        || adam.clip.is_nan()
        || adam.clip < 0.0
    {
        return Err(Error::config("invalid optimizer settings: need lr > 0, 0 ≤ beta < 1, eps > 0, weight decay ≥ 0, clip ≥ 0"));
    }
    let max_frames = a
        .max_frames
        .or(if seed_preset { Some(160_000) } else { None });
    Ok((
        RunConfig {
            model,
            data,
            adam,
            seed: a.seed.unwrap_or(0),
            epochs: a.epochs.unwrap_or(p(20, 1) as u64),
            sample_rate,
            channel_mode: match a.channels.unwrap_or(Channels::Mono) {
                Channels::Mono => "mono".into(),
                Channels::Stereo => "stereo".into(),
            },
            scale: 0.0,
            songs: a.songs.iter().map(|s| s.display().to_string()).collect(),
            lr_schedule: a.lr_schedule.unwrap_or(if seed_preset {
                LrSchedule::Constant
            } else {
                LrSchedule::Cosine
            }),
            schedule_steps: 0,
            // The residual's scale is the dataset's, known once the songs are read.
            residual: if residual {
                Residual::Lpc { scale: 1.0 }
            } else {
                Residual::None
            },
        },
        max_frames,
    ))
}

fn channel_mode(name: &str) -> ChannelMode {
    if name == "stereo" {
        ChannelMode::Stereo
    } else {
        ChannelMode::Mono
    }
}

/// Decode every song at one rate and channel layout; `max_frames` cuts each.
fn load_songs(
    paths: &[PathBuf],
    mode: ChannelMode,
    rate: Option<u32>,
    max_frames: Option<usize>,
) -> Result<Vec<(PathBuf, audio::Audio)>> {
    let mut out = Vec::new();
    let mut rate = rate;
    for p in paths {
        let mut a = audio::load(p, mode, rate)?;
        rate.get_or_insert(a.sample_rate);
        if let Some(n) = max_frames {
            a.samples.truncate(n * a.channels);
        }
        out.push((p.clone(), a));
    }
    Ok(out)
}

struct Progress {
    bar: ProgressBar,
    steps_per_epoch: u64,
    loss: Option<LossPlot>,
}

/// `loss.png` beside the checkpoint, redrawn after every epoch.
struct LossPlot {
    path: PathBuf,
    history: Vec<EpochLoss>,
    /// The classic predictors' validation MSE: the levels the model must get below.
    baselines: Vec<(&'static str, f64)>,
    /// A plot that cannot be written is reported once and never stops training.
    failed: bool,
    output: Output,
}

impl LossPlot {
    fn new(checkpoint: &Path, history: &[EpochReport], dataset: &Dataset, output: Output) -> Self {
        LossPlot {
            path: checkpoint.with_file_name("loss.png"),
            history: history.iter().map(|r| epoch_loss(r, output)).collect(),
            baselines: eval::validation_baselines(dataset),
            failed: false,
            output,
        }
    }

    fn add(&mut self, r: &EpochReport) -> Result<()> {
        self.history.push(epoch_loss(r, self.output));
        plot::loss_plot(&self.path, &self.history, &self.baselines)
    }
}

fn epoch_loss(r: &EpochReport, output: Output) -> EpochLoss {
    EpochLoss {
        epoch: r.epoch,
        // A μ-law run's training loss is a cross-entropy, not an MSE: not on this axis.
        train_mse: match output {
            Output::Mse => r.train_mse,
            Output::Mulaw { .. } => f64::NAN,
        },
        valid_mse: r.valid.mse,
    }
}

impl Progress {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        Progress {
            bar,
            steps_per_epoch: 1,
            loss: None,
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Start {
                steps_per_epoch,
                total_steps,
                done_steps,
            } => {
                self.steps_per_epoch = steps_per_epoch.max(1);
                self.bar.set_length(total_steps);
                self.bar.set_position(done_steps);
                self.bar.reset_eta();
            }
            Event::Step {
                epoch,
                step_in_epoch,
                global_step,
                loss,
                samples_per_sec,
            } => {
                self.bar.set_prefix(format!(
                    "epoch {epoch} step {step_in_epoch}/{}",
                    self.steps_per_epoch
                ));
                self.bar
                    .set_message(format!("loss {loss:.4} {samples_per_sec:.0} samples/s"));
                self.bar.set_position(global_step);
            }
            Event::Validating { epoch } => {
                self.bar.set_message(format!("validating epoch {epoch}..."))
            }
            Event::Epoch(r) => {
                let output = self.loss.as_ref().map_or(Output::Mse, |l| l.output);
                self.bar.suspend(|| print_epoch(r, output));
                if let Some(l) = &mut self.loss {
                    if let Err(e) = l.add(r) {
                        if !l.failed {
                            self.bar.suspend(|| eprintln!("warning: no loss plot: {e}"));
                        }
                        l.failed = true;
                    }
                }
            }
        }
    }
}

fn print_epoch(r: &EpochReport, output: Output) {
    let train = match output {
        Output::Mse => format!("train MSE {:.3e}", r.train_mse),
        Output::Mulaw { .. } => format!("train cross-entropy {:.4} nats", r.train_mse),
    };
    println!(
        "epoch {:>3}: {train} | valid MSE {:.3e}, gain {:.2} dB (next = current: {:.2} dB) | {:.0} samples/s",
        r.epoch, r.valid.mse, r.valid.gain_db, r.valid.baseline_gain_db, r.samples_per_sec
    );
    if r.songs.len() > 1 {
        for s in &r.songs {
            println!(
                "           {}: gain {:.2} dB (next = current: {:.2} dB)",
                s.song, s.score.gain_db, s.score.baseline_gain_db
            );
        }
    }
}

/// The steps a run is planned to take: its epochs, or fewer with --max-steps.
fn planned_steps(cfg: &RunConfig, dataset: &Dataset, max_steps: Option<u64>) -> u64 {
    let all = cfg
        .epochs
        .saturating_mul(dataset.steps_per_epoch(&cfg.data) as u64);
    all.min(max_steps.unwrap_or(u64::MAX))
}

/// Train as the arguments say; returns the run's history.
fn train_cmd(a: &TrainArgs) -> Result<Vec<EpochReport>> {
    let (cfg, dataset, state, cursor, history) = if let Some(resume) = &a.resume {
        let ck = checkpoint::load(resume)?;
        let mut cfg = ck.config;
        if let Some(e) = a.epochs {
            cfg.epochs = e;
        }
        let replan = a.epochs.is_some() || a.max_steps.is_some();
        let songs: Vec<PathBuf> = cfg.songs.iter().map(PathBuf::from).collect();
        let audio = load_songs(
            &songs,
            channel_mode(&cfg.channel_mode),
            Some(cfg.sample_rate),
            None,
        )?;
        let mut dataset = Dataset::new(audio, &cfg.data, Some(cfg.scale))?;
        if let Residual::Lpc { scale } = cfg.residual {
            dataset.learn_lpc_residual(Some(scale))?;
        }
        if replan {
            cfg.schedule_steps = planned_steps(&cfg, &dataset, a.max_steps);
        }
        (cfg, dataset, Some(ck.state), ck.cursor, ck.history)
    } else {
        let mode = match a.channels.unwrap_or(Channels::Mono) {
            Channels::Mono => ChannelMode::Mono,
            Channels::Stereo => ChannelMode::Stereo,
        };
        let (_, max_frames) = resolve(a, 0, 1)?;
        let audio = load_songs(&a.songs, mode, a.sample_rate, max_frames)?;
        let (rate, channels) = (audio[0].1.sample_rate, audio[0].1.channels);
        let (mut cfg, _) = resolve(a, rate, channels)?;
        let mut dataset = Dataset::new(audio, &cfg.data, None)?;
        cfg.scale = dataset.scale;
        if let Residual::Lpc { scale } = &mut cfg.residual {
            *scale = dataset.learn_lpc_residual(None)?;
        }
        if let Output::Mulaw { scale } = &mut cfg.model.output {
            *scale = dataset.scale;
        }
        cfg.schedule_steps = planned_steps(&cfg, &dataset, a.max_steps);
        (cfg, dataset, None, Cursor::default(), Vec::new())
    };
    // Refuse a batch the data cannot fill before any work starts.
    dataset.epoch_batches(&cfg.data, cfg.seed, cursor.epoch)?;
    let params = match (&state, &a.init) {
        (Some(s), _) => s.params.clone(),
        (None, Some(init)) => checkpoint::load_weights(init, &cfg.model)?,
        (None, None) => init_params(&cfg.model, &mut SplitMix64::new(cfg.seed)),
    };
    let mut engine = make_engine(&a.common, &cfg.model, cfg.adam, params)?;
    if let Some(s) = &state {
        engine.set_state(s)?;
    }
    eprintln!(
        "training on {} ({} song(s), {} Hz, {} ch, {} parameters); checkpoint: {}",
        engine.describe(),
        dataset.songs.len(),
        dataset.sample_rate,
        dataset.channels,
        cfg.model.layout().total,
        a.out.display()
    );
    if let Residual::Lpc { scale } = cfg.residual {
        eprintln!(
            "learning the residual of causal LPC-32: RMS {:.1} dBFS over the training parts (the signal's {:.1} dBFS)",
            20.0 * f64::from(scale).log10(),
            20.0 * f64::from(cfg.scale).log10()
        );
    }
    let mut progress = Progress::new();
    progress.loss = Some(LossPlot::new(&a.out, &history, &dataset, cfg.model.output));
    let history = train::train(
        engine.as_mut(),
        &dataset,
        &cfg,
        cursor,
        history,
        a.max_steps,
        &a.out,
        &mut |e| progress.event(e),
    )?;
    progress.bar.finish_and_clear();
    Ok(history)
}

/// A whole song, teacher-forced.
struct SongPrediction {
    score: Score,
    /// The song and its prediction as the model hears them (its rate and
    /// channel layout; the first `frame` frames have no prediction and are copied).
    input: audio::Audio,
    predicted: audio::Audio,
    /// The prediction at the song's own rate and channel count.
    out: audio::Audio,
}

/// Predict a whole song.
fn predict_song(engine: &mut dyn Engine, cfg: &RunConfig, song: &Path) -> Result<SongPrediction> {
    let raw = audio::decode(song)?.audio;
    let (rate, channels) = (raw.sample_rate, raw.channels);
    let input = eval::load_song(song, cfg)?;
    let frame = cfg.model.frame;
    let positions = eval::positions(input.frames(), frame, Scope::Whole);
    let forced = eval::teacher_force(engine, cfg, input, positions)?;
    let c = forced.input.channels;
    let s = score(
        &forced.pred,
        &forced.signal,
        c,
        forced.positions.clone(),
        cfg.scale,
    );
    let mut samples = forced.input.samples[..frame * c].to_vec();
    samples.extend(forced.pred.iter().map(|v| v * cfg.scale));
    let predicted = audio::Audio {
        sample_rate: cfg.sample_rate,
        channels: c,
        samples,
    };
    // Back to the song's own rate and channel count.
    let mut out = predicted.clone();
    if out.channels != channels {
        out = spread_channels(&out, channels);
    }
    if out.sample_rate != rate {
        out = audio::resample(&out, rate)?;
    }
    Ok(SongPrediction {
        score: s,
        input: forced.input,
        predicted,
        out,
    })
}

/// Copy a mono prediction into every channel, or mix stereo down to the song's layout.
fn spread_channels(a: &audio::Audio, channels: usize) -> audio::Audio {
    let frames = a.frames();
    let mut samples = Vec::with_capacity(frames * channels);
    for f in 0..frames {
        let frame = &a.samples[f * a.channels..(f + 1) * a.channels];
        let mean = frame.iter().sum::<f32>() / a.channels as f32;
        for ch in 0..channels {
            samples.push(if a.channels == 1 {
                frame[0]
            } else if ch < a.channels && channels >= a.channels {
                frame[ch]
            } else {
                mean
            });
        }
    }
    audio::Audio {
        sample_rate: a.sample_rate,
        channels,
        samples,
    }
}

fn predict_cmd(a: &PredictArgs) -> Result<Score> {
    let ck = checkpoint::load(&a.model)?;
    let mut engine = make_engine(
        &a.common,
        &ck.config.model,
        ck.config.adam,
        ck.state.params.clone(),
    )?;
    eprintln!("predicting on {}", engine.describe());
    if let (Some(from), Some(to)) = (a.from, a.to) {
        if !(from >= 0.0 && to > from) {
            return Err(Error::config("--from and --to: need 0 ≤ from < to"));
        }
    }
    let p = predict_song(engine.as_mut(), &ck.config, &a.song)?;
    audio::write_wav(
        &a.out,
        &p.out,
        if a.float {
            SampleFormat::Float32
        } else {
            SampleFormat::Int16
        },
    )?;
    let s = p.score;
    println!(
        "{}: MSE {:.3e}, prediction gain {:.2} dB (next = current: {:.2} dB) -> {}",
        a.song.display(),
        s.mse,
        s.gain_db,
        s.baseline_gain_db,
        a.out.display()
    );
    if let Some(path) = &a.plot {
        let mono = |x: &audio::Audio| audio::convert_channels(x, ChannelMode::Mono);
        let (x, y) = (mono(&p.input)?, mono(&p.predicted)?);
        let from = a.from.unwrap_or(x.duration_secs() / 2.0);
        let to = a.to.unwrap_or(from + DEFAULT_PLOT_WINDOW);
        plot::prediction_plot(path, &x.samples, &y.samples, x.sample_rate, from, to).map_err(
            |e| match e {
                Error::Config(m) => Error::config(format!("--from / --to: {m}")),
                e => e,
            },
        )?;
        println!("waveform plot -> {}", path.display());
    }
    Ok(s)
}

/// The file of take `k` (from 1) of `takes`: `out` itself for one take,
/// else `out` with `_k` before its extension.
fn take_path(out: &Path, k: usize, takes: usize) -> PathBuf {
    if takes == 1 {
        return out.to_path_buf();
    }
    let stem = out
        .file_stem()
        .map_or("gen".into(), |s| s.to_string_lossy().into_owned());
    let name = match out.extension() {
        Some(e) => format!("{stem}_{k}.{}", e.to_string_lossy()),
        None => format!("{stem}_{k}"),
    };
    out.with_file_name(name)
}

/// Generate as the arguments say; returns each take's levels.
fn generate_cmd(a: &GenerateArgs) -> Result<Vec<TakeReport>> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(a.seconds) {
        return Err(Error::config("--seconds must be a positive number"));
    }
    if !positive(a.prime_seconds) {
        return Err(Error::config("--prime-seconds must be a positive number"));
    }
    if a.variations == 0 {
        return Err(Error::config("--variations must be at least 1"));
    }
    if !(a.temperature.is_finite() && a.temperature >= 0.0) {
        return Err(Error::config("--temperature must be a number ≥ 0"));
    }
    let ck = checkpoint::load(&a.model)?;
    let cfg = &ck.config;
    let song = eval::load_song(&a.prime, cfg)?;
    let rate = cfg.sample_rate;
    let c = song.channels;
    let prime_frames = ((a.prime_seconds * rate as f64).round() as usize).min(song.frames());
    let frames = ((a.seconds * rate as f64).round() as usize).max(1);
    let prime: Vec<f32> = song.samples[..prime_frames * c]
        .iter()
        .map(|v| v / cfg.scale)
        .collect();
    let mut engine = make_engine(&a.common, &cfg.model, cfg.adam, ck.state.params.clone())?;
    let format = if a.float {
        SampleFormat::Float32
    } else {
        SampleFormat::Int16
    };
    let paths: Vec<PathBuf> = (1..=a.variations)
        .map(|k| take_path(&a.out, k, a.variations))
        .collect();
    let mut streams = paths
        .iter()
        .map(|p| crate::wavstream::WavStream::create(p, c, rate, format))
        .collect::<Result<Vec<_>>>()?;
    eprintln!(
        "generating {} take(s) of {:.2} s on {} after {:.2} s of {}",
        a.variations,
        frames as f64 / rate as f64,
        engine.describe(),
        prime_frames as f64 / rate as f64,
        a.prime.display()
    );
    let bar = ProgressBar::new(frames as u64);
    bar.set_style(
        ProgressStyle::with_template("generating [{bar:30}] {pos}/{len} frames {msg} ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let g = GenerateConfig {
        frames,
        takes: a.variations,
        seed: a.seed,
        temperature: a.temperature,
    };
    let reports = generate::generate(
        engine.as_mut(),
        cfg,
        &prime,
        &g,
        &mut |frame| {
            for (s, f) in streams.iter_mut().zip(frame.chunks_exact(c)) {
                s.write_frame(f)?;
            }
            Ok(())
        },
        &mut |done| {
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(done as u64);
            bar.set_message(format!(
                "{:.2}x real time",
                done as f64 / rate as f64 / secs
            ));
        },
    )?;
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    for s in streams {
        s.finish()?;
    }
    let audio_secs = frames as f64 / rate as f64;
    println!(
        "{} take(s) of {:.2} s in {:.1} s on {}: {:.2}x real time ({:.2}x counting every take)",
        a.variations,
        audio_secs,
        wall,
        engine.describe(),
        audio_secs / wall.max(1e-9),
        audio_secs * a.variations as f64 / wall.max(1e-9)
    );
    for (p, r) in paths.iter().zip(&reports) {
        println!("{}", take_summary(p, r));
    }
    if matches!(cfg.model.output, Output::Mse) && a.variations > 1 {
        println!("note: the mse head is deterministic, so the takes are identical; train with --output mulaw to sample");
    }
    if let Some(plot_path) = &a.plot {
        let mono = |x: &audio::Audio| audio::convert_channels(x, ChannelMode::Mono);
        let end = (prime_frames + frames).min(song.frames());
        let original = mono(&audio::Audio {
            sample_rate: rate,
            channels: c,
            samples: song.samples[..end * c].to_vec(),
        })?;
        let take = audio::load(&paths[0], ChannelMode::Mono, None)?;
        let mut generated = mono(&audio::Audio {
            sample_rate: rate,
            channels: c,
            samples: song.samples[..prime_frames * c].to_vec(),
        })?
        .samples;
        generated.extend_from_slice(&take.samples);
        let name = a
            .prime
            .file_name()
            .map_or("song".into(), |n| n.to_string_lossy().into_owned());
        plot::spectrogram_plot(
            plot_path,
            &original.samples,
            &generated,
            rate,
            [
                &format!("{name}: original"),
                &format!(
                    "{:.1} s prime, then generated",
                    prime_frames as f64 / rate as f64
                ),
            ],
        )?;
        println!("spectrograms -> {}", plot_path.display());
    }
    Ok(reports)
}

fn take_summary(path: &Path, r: &TakeReport) -> String {
    let mut verdict = String::new();
    if r.collapsed() {
        verdict.push_str(&format!(
            ", COLLAPSED to silence (last second below {} dBFS)",
            generate::SILENCE_DBFS
        ));
    }
    if r.exploded() {
        verdict.push_str(&format!(
            ", EXPLODED (more than {}% of samples clipped)",
            generate::EXPLODED_FRACTION * 100.0
        ));
    }
    format!(
        "{}: RMS {:.1} dBFS (last second {:.1} dBFS), peak {:.3}, clipped {:.2}%{}",
        path.display(),
        r.rms_dbfs,
        r.last_second_rms_dbfs,
        r.peak,
        100.0 * r.clipped as f64 / r.samples.max(1) as f64,
        verdict
    )
}

/// Seconds of waveform `predict --plot` shows by default: a few cycles of a
/// low note, each cycle still many samples wide.
const DEFAULT_PLOT_WINDOW: f64 = 0.05;

fn eval_cmd(a: &EvalArgs) -> Result<()> {
    let ck = checkpoint::load(&a.model)?;
    let cfg = &ck.config;
    let scope = if a.all {
        Scope::Whole
    } else {
        match a.valid_fraction.unwrap_or(cfg.data.valid_fraction) {
            f if !(0.0..1.0).contains(&f) => {
                return Err(Error::config("--valid-fraction must be in [0, 1)"))
            }
            // A model trained without a validation part: nothing is held out.
            0.0 => Scope::Whole,
            f => Scope::Last(f),
        }
    };
    let plots = plot_paths(a.plot.as_deref(), &a.songs)?;
    let mut engine = make_engine(&a.common, &cfg.model, cfg.adam, ck.state.params.clone())?;
    eprintln!("evaluating on {}", engine.describe());
    let mut reports = Vec::new();
    for (song, plot_path) in a.songs.iter().zip(plots) {
        let (r, forced) = eval::evaluate(engine.as_mut(), cfg, song, scope)?;
        if let Some(path) = plot_path {
            let (x, y) = forced.scored_mono(cfg.scale);
            let name = song
                .file_name()
                .map_or(r.song.clone(), |n| n.to_string_lossy().into());
            plot::spectrogram_plot(
                &path,
                &x,
                &y,
                cfg.sample_rate,
                [
                    &format!("{name}, {}: original", r.part),
                    &format!("predicted ({:.1} dB gain)", r.model.gain_db),
                ],
            )?;
            if !a.json {
                println!("spectrograms -> {}", path.display());
            }
        }
        reports.push(r);
    }
    if a.json {
        let doc = serde_json::json!({
            "model": a.model.display().to_string(),
            "sample_rate": cfg.sample_rate,
            "channel_mode": cfg.channel_mode,
            "songs": reports,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Other(e.to_string()))?;
        println!("{text}");
    } else {
        print_eval_table(&a.model, cfg, &reports);
    }
    Ok(())
}

/// Where `eval --plot` writes each song's spectrograms: one `.png` file for
/// one song, or `DIR/<song name>.png` (created if need be) for any number.
fn plot_paths(plot: Option<&Path>, songs: &[PathBuf]) -> Result<Vec<Option<PathBuf>>> {
    let Some(target) = plot else {
        return Ok(vec![None; songs.len()]);
    };
    let is_png = target
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png && !target.is_dir() {
        if songs.len() != 1 {
            return Err(Error::config(
                "--plot FILE.png takes one song; give a directory for several",
            ));
        }
        return Ok(vec![Some(target.to_path_buf())]);
    }
    std::fs::create_dir_all(target)
        .map_err(|e| Error::file(target, format!("cannot create: {e}")))?;
    let mut used = std::collections::HashSet::new();
    Ok(songs
        .iter()
        .map(|s| {
            let stem = s
                .file_stem()
                .map_or("song".into(), |n| n.to_string_lossy().into_owned());
            // Two songs of the same name in different folders get -2, -3, ...
            let mut name = stem.clone();
            let mut k = 1;
            while !used.insert(name.clone()) {
                k += 1;
                name = format!("{stem}-{k}");
            }
            Some(target.join(format!("{name}.png")))
        })
        .collect())
}

fn print_eval_table(model: &Path, cfg: &RunConfig, reports: &[SongReport]) {
    println!(
        "model {} ({} Hz, {}); MSE in sample units (full scale = 1), prediction gain in dB",
        model.display(),
        cfg.sample_rate,
        cfg.channel_mode
    );
    let names: Vec<String> = reports
        .iter()
        .map(|r| format!("{}{}", r.song, if r.training_song { " *" } else { "" }))
        .collect();
    let w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<w$}  {:<9} {:>9}  {:>19}  {:>19}  {:>19}  {:>19}",
        "song", "part", "samples", "model", "next = current", "linear", "LPC-32"
    );
    for (r, name) in reports.iter().zip(&names) {
        let cell = |f: &eval::Figure| format!("{:.3e} {:>6.2} dB", f.mse, f.gain_db);
        println!(
            "{:<w$}  {:<9} {:>9}  {:>19}  {:>19}  {:>19}  {:>19}",
            name,
            r.part,
            r.samples,
            cell(&r.model),
            cell(&r.next_equals_current),
            cell(&r.linear),
            cell(&r.lpc)
        );
    }
    if reports.iter().any(|r| r.training_song) {
        println!("* a training song of this model (by path): only its last part was held out");
    }
}

/// Steps of a GPU profile (each runs one pass per kernel and waits, so it is
/// timed apart from the measurement).
const PROFILE_STEPS: usize = 3;

fn bench_cmd(a: &BenchArgs) -> Result<()> {
    let workloads = a
        .workload
        .iter()
        .map(|n| bench::Workload::by_name(n.trim()))
        .collect::<Result<Vec<_>>>()?;
    if a.profile && !a.json && a.common.device == Device::Cpu {
        eprintln!(
            "--profile: the CPU engine has no kernel profile (see `cargo bench --bench cpu_ops`)"
        );
    }
    for w in &workloads {
        let mut opened = open_engine(&a.common, &w.model, w.adam(), w.params())?;
        let engine: &mut dyn Engine = match &mut opened {
            Opened::Cpu(e) => e.as_mut(),
            Opened::Gpu(e) => e.as_mut(),
        };
        let device = engine.describe();
        eprintln!("bench {} on {device}...", w.name);
        bench::prepare(engine, w)?;
        let plan = match w.kind {
            bench::Kind::Epoch => bench::Plan {
                warmup: a.warmup.unwrap_or(300),
                repeats: a.epochs,
            },
            bench::Kind::Train | bench::Kind::Infer => bench::Plan {
                warmup: a.warmup.unwrap_or(3),
                repeats: a.steps.unwrap_or(20),
            },
            // Seconds of audio: a few make a steady median and keep the
            // workload to seconds (generate-8 runs 8 takes per second).
            bench::Kind::Generate => bench::Plan {
                warmup: a.warmup.unwrap_or(1),
                repeats: a.steps.unwrap_or(5),
            },
        };
        let m = bench::measure(engine, w, plan)?;
        let profile = match &mut opened {
            Opened::Gpu(g) if a.profile => Some(gpu_profile(g, w)?),
            _ => None,
        };
        if a.json {
            let mut doc = serde_json::json!({ "engine": "wavelstm", "device": device });
            let fields = serde_json::to_value(&m).map_err(|e| Error::Other(e.to_string()))?;
            doc.as_object_mut()
                .expect("an object")
                .extend(fields.as_object().expect("a struct").clone());
            if let Some(p) = &profile {
                doc["profile"] =
                    serde_json::to_value(p).map_err(|e| Error::Other(e.to_string()))?;
            }
            println!("{doc}");
        } else {
            print_measurement(&device, &m);
            if let Some(p) = &profile {
                print_profile(p);
            }
        }
    }
    Ok(())
}

/// Where a GPU step's device time goes.
#[derive(serde::Serialize)]
struct GpuProfile {
    /// What one profiled step is.
    step: &'static str,
    path: Option<String>,
    dispatches_per_step: Option<usize>,
    /// Per kernel: dispatches and milliseconds per step, largest first
    /// (empty when the adapter has no timestamp queries).
    kernels: Vec<(String, f64, f64)>,
    timestamps: bool,
}

fn gpu_profile(engine: &mut GpuEngine, w: &bench::Workload) -> Result<GpuProfile> {
    let training = matches!(w.kind, bench::Kind::Train | bench::Kind::Epoch);
    let timestamps = engine.set_profiling(true);
    bench::run_steps(engine, w, PROFILE_STEPS)?;
    let steps = PROFILE_STEPS as f64;
    let kernels = engine
        .profile()
        .into_iter()
        .map(|k| {
            (
                k.kernel,
                k.dispatches as f64 / steps,
                1e3 * k.seconds / steps,
            )
        })
        .collect();
    engine.set_profiling(false);
    let (step, path) = match w.kind {
        bench::Kind::Train | bench::Kind::Epoch => {
            ("training step", engine.path(w.seq_len, w.batch))
        }
        bench::Kind::Infer => ("forward pass", engine.path(w.seq_len, w.batch)),
        // A free step is one timestep: it always runs the per-timestep dispatches.
        bench::Kind::Generate => ("free step of every take", Some(gpu::program::Path::Step)),
    };
    Ok(GpuProfile {
        step,
        path: path.map(|p| format!("{p:?}").to_lowercase()),
        dispatches_per_step: training.then(|| engine.dispatches_per_step(w.seq_len, w.batch, true)),
        kernels,
        timestamps,
    })
}

fn print_measurement(device: &str, m: &bench::Measurement) {
    let unit = match m.kind {
        bench::Kind::Epoch => "epochs",
        bench::Kind::Train | bench::Kind::Infer => "steps",
        bench::Kind::Generate => "s of audio per take",
    };
    let rtf = match (m.rtf, m.rtf_per_take) {
        (Some(all), Some(one)) => format!(
            ", real-time factor {}x ({}x per take)",
            three_digits(all),
            three_digits(one)
        ),
        _ => String::new(),
    };
    println!(
        "{:<10} {device}: median {:.4} s (min {:.4}, max {:.4}; {} {unit}), {:.3} ms/step, {:.0} samples/s, {:.1} GFLOP/s{rtf}",
        m.workload, m.median_s, m.min_s, m.max_s, m.repeats, m.ms_per_step, m.samples_per_s, m.gflops
    );
}

/// `x` to three significant digits: a software GPU's real-time factor is
/// thousandths, a fast CPU's tens.
fn three_digits(x: f64) -> String {
    let decimals = if x.is_finite() && x > 0.0 {
        (2 - x.log10().floor() as i32).clamp(0, 9) as usize
    } else {
        2
    };
    format!("{x:.decimals$}")
}

fn print_profile(p: &GpuProfile) {
    let path = p.path.as_deref().unwrap_or("not chosen yet");
    println!("  a step below is one {}", p.step);
    match p.dispatches_per_step {
        Some(d) => println!("  recurrence path: {path}; {d} dispatches per training step"),
        None => println!("  recurrence path: {path}"),
    }
    if !p.timestamps {
        println!("  (this adapter has no timestamp queries: no kernel times)");
        return;
    }
    let total: f64 = p.kernels.iter().map(|k| k.2).sum();
    println!(
        "  {:<28} {:>12} {:>12} {:>7}",
        "kernel", "dispatches", "ms/step", "share"
    );
    for (name, n, ms) in &p.kernels {
        println!(
            "  {name:<28} {n:>12.1} {ms:>12.3} {:>6.1}%",
            100.0 * ms / total.max(1e-12)
        );
    }
    println!("  {:<28} {:>12} {total:>12.3}", "device total", "");
}

/// The bundled clip: the repository's copy, wherever the binary is run from.
fn demo_clip() -> PathBuf {
    let rel = Path::new("assets/audio/piano_sabatella_unclaimed_gift.wav");
    if rel.exists() {
        rel.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

/// What the demo wrote and measured.
struct DemoRun<'a> {
    clip: &'a Path,
    steps: u64,
    train_secs: f64,
    samples_per_sec: f64,
    model: &'a ModelConfig,
    valid: &'a SongReport,
    /// Seconds of prime and of generated audio, wall-clock seconds, the take.
    prime_secs: f64,
    gen_secs: f64,
    gen_wall: f64,
    take: &'a TakeReport,
    files: [(&'a str, PathBuf); 6],
}

fn demo_summary(d: &DemoRun) -> String {
    let m = d.model;
    let mut t = format!(
        "wavelstm demo summary\n\
         song:      {}\n\
         model:     {} x {} LSTM, linear head ({} parameters)\n\
         training:  {} steps in {:.1} s ({:.0} samples/s)\n\n\
         one-step prediction of the last 10% of the clip (never trained on),\n\
         all predictors on the same {} samples:\n\
         \x20 {:<22} {:>10} {:>9}\n",
        d.clip.display(),
        m.layers,
        m.hidden,
        m.layout().total,
        d.steps,
        d.train_secs,
        d.samples_per_sec,
        d.valid.samples,
        "predictor",
        "MSE",
        "gain"
    );
    let v = d.valid;
    for (name, f) in [
        ("model", &v.model),
        ("next = current", &v.next_equals_current),
        ("linear extrapolation", &v.linear),
        ("LPC-32", &v.lpc),
    ] {
        t.push_str(&format!(
            "  {name:<22} {:>10.3e} {:>6.2} dB\n",
            f.mse, f.gain_db
        ));
    }
    t.push_str(&format!(
        "\ngeneration: {:.1} s after a {:.1} s prime, in {:.1} s: {:.2}x real time\n\
         \x20 the take: RMS {:.1} dBFS, last second {:.1} dBFS, peak {:.3}{}\n\nfiles:\n",
        d.gen_secs,
        d.prime_secs,
        d.gen_wall,
        d.gen_secs / d.gen_wall.max(1e-9),
        d.take.rms_dbfs,
        d.take.last_second_rms_dbfs,
        d.take.peak,
        if d.take.collapsed() {
            " (collapsed to silence)"
        } else if d.take.exploded() {
            " (exploded)"
        } else {
            ""
        }
    ));
    for (what, path) in &d.files {
        t.push_str(&format!("  {what:<22} {}\n", path.display()));
    }
    t
}

/// Seconds of the clip the demo primes generation on.
const DEMO_PRIME_SECONDS: f64 = 2.0;

fn demo(out_dir: &Path, steps: u64, gen_seconds: f64) -> Result<()> {
    let clip = demo_clip();
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Error::file(out_dir, format!("cannot create: {e}")))?;
    let file = |name: &str| out_dir.join(name);
    let model = file("model.safetensors");
    println!(
        "wavelstm demo: learning {} ({} steps)",
        clip.display(),
        steps
    );
    let started = Instant::now();
    let args = TrainArgs::parse_from_demo(&clip, &model, steps);
    let history = train_cmd(&args)?;
    let train_secs = started.elapsed().as_secs_f64();
    let last = history
        .last()
        .ok_or_else(|| Error::Other("the demo trained no epoch".into()))?;
    predict_cmd(&PredictArgs {
        model: model.clone(),
        song: clip.clone(),
        out: file("pred.wav"),
        float: false,
        plot: Some(file("pred.png")),
        from: None,
        to: None,
        common: args.common.clone(),
    })?;
    let ck = checkpoint::load(&model)?;
    let cfg = &ck.config;
    let mut engine = make_engine(&args.common, &cfg.model, cfg.adam, ck.state.params.clone())?;
    let (valid, _) = eval::evaluate(
        engine.as_mut(),
        cfg,
        &clip,
        Scope::Last(cfg.data.valid_fraction),
    )?;
    let started = Instant::now();
    let takes = generate_cmd(&GenerateArgs {
        model: model.clone(),
        prime: clip.clone(),
        seconds: gen_seconds,
        out: file("gen.wav"),
        prime_seconds: DEMO_PRIME_SECONDS,
        variations: 1,
        seed: 0,
        temperature: 1.0,
        float: false,
        plot: None,
        common: args.common.clone(),
    })?;
    let gen_wall = started.elapsed().as_secs_f64();
    let summary_path = file("summary.txt");
    let summary = demo_summary(&DemoRun {
        clip: &clip,
        steps: history.iter().map(|r| r.steps).sum(),
        train_secs,
        samples_per_sec: last.samples_per_sec,
        model: &cfg.model,
        valid: &valid,
        prime_secs: DEMO_PRIME_SECONDS,
        gen_secs: gen_seconds,
        gen_wall,
        take: &takes[0],
        files: [
            ("model", model.clone()),
            ("loss per epoch", file("loss.png")),
            ("predicted clip", file("pred.wav")),
            ("prediction plot", file("pred.png")),
            ("generated", file("gen.wav")),
            ("this summary", summary_path.clone()),
        ],
    });
    crate::atomic::write_atomic(&summary_path, |w| {
        use std::io::Write;
        w.write_all(summary.as_bytes())
            .map_err(|e| Error::file(&summary_path, format!("cannot write: {e}")))
    })?;
    println!("\n{summary}");
    Ok(())
}

impl TrainArgs {
    /// The demo's training run.
    fn parse_from_demo(clip: &Path, out: &Path, steps: u64) -> TrainArgs {
        let mut args = vec![
            "train".to_string(),
            clip.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        args.extend(["--epochs", "1000", "--max-steps"].map(String::from));
        args.push(steps.to_string());
        match Cli::parse_from(std::iter::once("wavelstm".to_string()).chain(args)).command {
            Some(Command::Train(t)) => *t,
            _ => unreachable!("the demo's arguments parse as a train command"),
        }
    }
}
