//! PNG plots of a run and of its predictions: the loss curves, a waveform
//! window with its error, two spectrograms side by side, long-term spectra.
//!
//! Signals are mono, `f32` in sample units (full scale = 1), indexed by
//! frame at `rate` Hz. A picture is drawn by plotters into an RGB buffer
//! (`[HEIGHT, WIDTH, 3]`), encoded as PNG and written atomically (see
//! `atomic`), so a viewer never reads half a file. Text is set in DejaVu
//! Sans, compiled into the binary (`assets/fonts/`, Bitstream Vera licence),
//! so plots need no font installed on the machine.

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;
use std::path::Path;
use std::sync::Once;

pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 700;

/// STFT frame length (samples) and the range of the colour scale (dB below the loudest cell).
const STFT_LEN: usize = 1024;
const DB_RANGE: f64 = 100.0;
/// Dynamic range of [`spectrum_plot`]'s level axis (dB).
pub const SPECTRUM_RANGE: f64 = 140.0;

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// One epoch of a run's history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochLoss {
    pub epoch: u64,
    /// MSE in sample units (full scale = 1).
    pub train_mse: f64,
    pub valid_mse: f64,
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Render with `draw` into a fresh white picture and write it to `path` as PNG.
fn render(path: &Path, draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        // Only fails on a corrupt font file, which the tests would catch.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| drawing(path, e))?;
        draw(&root)?;
        root.present().map_err(|e| drawing(path, e))?;
    }
    write_atomic(path, |w| {
        let mut enc = png::Encoder::new(w, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let fail = |e: png::EncodingError| Error::file(path, format!("cannot write PNG: {e}"));
        let mut writer = enc.write_header().map_err(fail)?;
        writer.write_image_data(&rgb).map_err(fail)?;
        writer.finish().map_err(fail)
    })
}

fn drawing(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::file(path, format!("cannot draw: {e}"))
}

/// A series' sample in the legend: a short line in its colour.
fn legend_line(c: RGBColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 25, y)], c.stroke_width(width))
}

/// Draw `mesh` with the axis text of the waveform and spectrum plots.
fn draw_mesh<X, Y>(mesh: &mut MeshStyle<'_, '_, X, Y, BitMapBackend<'_>>, path: &Path) -> Result<()>
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    mesh.axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| drawing(path, e))
}

/// The legend of `chart`'s labelled series, boxed in the upper right corner.
fn draw_legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    path: &Path,
) -> Result<()> {
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| drawing(path, e))
}

/// Training and validation MSE per epoch (log scale), with `baselines`
/// (`(name, MSE)`: what the classic predictors reach on the validation
/// parts) as horizontal lines.
pub fn loss_plot(path: &Path, history: &[EpochLoss], baselines: &[(&str, f64)]) -> Result<()> {
    if history.is_empty() {
        return Err(Error::file(path, "no epoch to plot"));
    }
    let values = history
        .iter()
        .flat_map(|e| [e.train_mse, e.valid_mse])
        .chain(baselines.iter().map(|b| b.1));
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return Err(Error::file(path, "no positive finite loss to plot"));
    }
    // Whole decades, so a log axis always has labelled ticks.
    let (lo, hi) = (
        10f64.powf(lo.log10().floor()),
        10f64
            .powf(hi.log10().ceil())
            .max(10f64.powf(lo.log10().floor() + 1.0)),
    );
    let last = history.iter().map(|e| e.epoch).max().unwrap_or(1) as f64;
    let first = history.iter().map(|e| e.epoch).min().unwrap_or(1) as f64;
    render(path, |root| {
        let e = |err| drawing(path, err);
        let mut chart = ChartBuilder::on(root)
            .caption("Loss per epoch", ("sans-serif", 30))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(100)
            .build_cartesian_2d((first - 0.5)..(last + 0.5), (lo..hi).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("MSE (full scale = 1)")
            .x_labels(((last - first) as usize + 2).min(12))
            .x_label_formatter(&|x| {
                // Epochs are whole numbers: no label between them.
                if (x - x.round()).abs() < 1e-6 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.0e}"))
            .axis_desc_style(("sans-serif", 20))
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(e)?;
        let level_colors = [
            RGBColor(110, 110, 110),
            RGBColor(200, 0, 200),
            RGBColor(0, 150, 60),
            RGBColor(230, 140, 0),
        ];
        for (i, &(name, mse)) in baselines.iter().enumerate() {
            let c = level_colors[i % level_colors.len()];
            chart
                .draw_series(DashedLineSeries::new(
                    [(first - 0.5, mse), (last + 0.5, mse)],
                    10,
                    6,
                    c.stroke_width(2),
                ))
                .map_err(e)?
                .label(format!("{name} (validation)"))
                .legend(legend_line(c, 2));
        }
        type Pick = fn(&EpochLoss) -> f64;
        let curves: [(&str, RGBColor, Pick); 2] = [
            ("train", BLUE, |e| e.train_mse),
            ("validation", RED, |e| e.valid_mse),
        ];
        for (name, c, get) in curves {
            // A run without a validation part has no validation loss (MSE 0).
            let pts: Vec<(f64, f64)> = history
                .iter()
                .map(|h| (h.epoch as f64, get(h)))
                .filter(|p| p.1.is_finite() && p.1 > 0.0)
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))
                .map_err(e)?
                .label(format!("model, {name}"))
                .legend(legend_line(c, 3));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))
                .map_err(e)?;
        }
        draw_legend(&mut chart, path)
    })
}

/// `original` and `predicted` (same rate and length) between `from` and
/// `to` seconds, overlaid, with the error `predicted − original` below.
pub fn prediction_plot(
    path: &Path,
    original: &[f32],
    predicted: &[f32],
    rate: u32,
    from: f64,
    to: f64,
) -> Result<()> {
    let n = original.len().min(predicted.len());
    let secs = n as f64 / rate as f64;
    if !(from >= 0.0 && from < to && from < secs) {
        return Err(Error::config(format!(
            "cannot plot {from} s to {to} s of a signal {secs:.3} s long"
        )));
    }
    let (i0, i1) = (
        (from * rate as f64).floor() as usize,
        ((to * rate as f64).ceil() as usize).min(n),
    );
    let i1 = i1.max(i0 + 1).min(n);
    let t = |i: usize| i as f64 / rate as f64;
    let (t0, t1) = (t(i0), t((i1 - 1).max(i0 + 1)));
    let peak = |v: &[f32]| v.iter().fold(1e-6f32, |m, x| m.max(x.abs())) as f64 * 1.1;
    let amp = peak(&original[i0..i1]).max(peak(&predicted[i0..i1]));
    let err: Vec<f32> = (i0..i1).map(|i| predicted[i] - original[i]).collect();
    let emax = peak(&err);
    render(path, |root| {
        let e = |err| drawing(path, err);
        let (top, bottom) = root.split_vertically(HEIGHT * 62 / 100);
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!("Teacher-forced prediction, {from:.3} s to {to:.3} s"),
                ("sans-serif", 28),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(90)
            .build_cartesian_2d(t0..t1, -amp..amp)
            .map_err(e)?;
        draw_mesh(
            chart
                .configure_mesh()
                .x_desc("time (s)")
                .y_desc("amplitude (full scale = 1)")
                .x_label_formatter(&|x| format!("{x:.3}")),
            path,
        )?;
        for (name, v, c, w) in [
            ("original", original, BLUE, 3),
            ("predicted", predicted, RED, 2),
        ] {
            chart
                .draw_series(LineSeries::new(
                    (i0..i1).map(|i| (t(i), v[i] as f64)),
                    c.stroke_width(w),
                ))
                .map_err(e)?
                .label(name)
                .legend(legend_line(c, 3));
        }
        draw_legend(&mut chart, path)?;

        let mut chart = ChartBuilder::on(&bottom)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(90)
            .build_cartesian_2d(t0..t1, -emax..emax)
            .map_err(e)?;
        draw_mesh(
            chart
                .configure_mesh()
                .x_desc("time (s)")
                .y_desc("error (full scale = 1)")
                .x_label_formatter(&|x| format!("{x:.3}"))
                .y_label_formatter(&|y| {
                    // The middle tick is zero up to rounding: say so.
                    if y.abs() < emax * 1e-9 {
                        "0".into()
                    } else {
                        format!("{y:.1e}")
                    }
                }),
            path,
        )?;
        let c = RGBColor(0, 130, 0);
        chart
            .draw_series(LineSeries::new(
                (i0..i1).map(|i| (t(i), err[i - i0] as f64)),
                c.stroke_width(2),
            ))
            .map_err(e)?
            .label("predicted − original")
            .legend(legend_line(c, 3));
        draw_legend(&mut chart, path)
    })
}

/// Magnitude STFT of `x`: Hann window of `STFT_LEN` (1024), hop `hop`, frame `k`
/// covering `x[k·hop .. k·hop + STFT_LEN)` (zeros past the end).
/// Returns `[frames, STFT_LEN/2 + 1]`, frame-major.
pub fn stft(x: &[f32], hop: usize) -> Vec<f32> {
    let n = STFT_LEN;
    let bins = n / 2 + 1;
    let frames = x.len().saturating_sub(n).div_ceil(hop) + 1;
    let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
    let window: Vec<f32> = (0..n)
        .map(|i| {
            let s = (std::f64::consts::PI * i as f64 / n as f64).sin();
            (s * s) as f32
        })
        .collect();
    let mut out = Vec::with_capacity(frames * bins);
    let mut buf = vec![Complex::new(0.0f32, 0.0); n];
    for k in 0..frames {
        for (i, b) in buf.iter_mut().enumerate() {
            let v = x.get(k * hop + i).copied().unwrap_or(0.0);
            *b = Complex::new(v * window[i], 0.0);
        }
        fft.process(&mut buf);
        out.extend(buf[..bins].iter().map(|c| c.norm()));
    }
    out
}

/// A dark-to-bright colour map (black, purple, red, orange, pale yellow) for `v` in [0, 1].
fn heat(v: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [0.0, 0.0, 4.0]),
        (0.3, [87.0, 16.0, 110.0]),
        (0.55, [188.0, 55.0, 84.0]),
        (0.8, [249.0, 142.0, 9.0]),
        (1.0, [252.0, 255.0, 164.0]),
    ];
    let v = v.clamp(0.0, 1.0);
    let k = STOPS.iter().rposition(|s| s.0 <= v).unwrap_or(0).min(3);
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let f = (v - a.0) / (b.0 - a.0);
    let ch = |i: usize| (a.1[i] + f * (b.1[i] - a.1[i])).round() as u8;
    RGBColor(ch(0), ch(1), ch(2))
}

/// Spectrograms of `a` and `b` (same rate) side by side, titled `titles`,
/// on one colour scale: dB below the loudest cell of either.
pub fn spectrogram_plot(
    path: &Path,
    a: &[f32],
    b: &[f32],
    rate: u32,
    titles: [&str; 2],
) -> Result<()> {
    if a.is_empty() || b.is_empty() || rate == 0 {
        return Err(Error::file(path, "nothing to plot: an empty signal"));
    }
    let bins = STFT_LEN / 2 + 1;
    // A quarter-frame hop, coarser on long songs so the STFT stays small.
    let hop = (STFT_LEN / 4).max(a.len().max(b.len()) / 4000);
    let specs = [stft(a, hop), stft(b, hop)];
    let loudest = specs
        .iter()
        .flat_map(|s| s.iter())
        .fold(1e-20f32, |m, &v| m.max(v)) as f64;
    let nyquist_khz = rate as f64 / 2000.0;
    render(path, |root| {
        let e = |err| drawing(path, err);
        let (panels, bar) = root.split_horizontally(WIDTH - 120);
        let halves = panels.split_evenly((1, 2));
        for ((area, spec), (title, x)) in halves.iter().zip(&specs).zip(titles.iter().zip([a, b])) {
            let secs = x.len() as f64 / rate as f64;
            // Long titles (song names) shrink to fit their panel.
            let width = area.dim_in_pixel().0 as f64;
            let size = 24.0f64.min(1.7 * width / title.chars().count().max(1) as f64);
            let mut chart = ChartBuilder::on(area)
                .caption(*title, ("sans-serif", size))
                .margin(12)
                .x_label_area_size(50)
                .y_label_area_size(70)
                .build_cartesian_2d(0.0..secs, 0.0..nyquist_khz)
                .map_err(e)?;
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            let frames = spec.len() / bins;
            for px in xr.clone() {
                let t = (px - xr.start) as f64 / (xr.len() as f64) * secs;
                // Frame k is centred at k·hop + STFT_LEN/2.
                let k = ((t * rate as f64 - STFT_LEN as f64 / 2.0) / hop as f64).round();
                let k = (k.max(0.0) as usize).min(frames - 1);
                for py in yr.clone() {
                    let f = (yr.end - 1 - py) as f64 / yr.len() as f64;
                    let bin = ((f * (bins - 1) as f64).round() as usize).min(bins - 1);
                    let db = 20.0 * (spec[k * bins + bin] as f64 / loudest + 1e-12).log10();
                    root.draw_pixel((px, py), &heat(1.0 + db / DB_RANGE))
                        .map_err(e)?;
                }
            }
            draw_mesh(
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_desc("time (s)")
                    .y_desc("frequency (kHz)"),
                path,
            )?;
        }
        // The colour scale.
        let mut chart = ChartBuilder::on(&bar)
            .margin_top(50)
            .margin_bottom(62)
            .margin_right(10)
            .y_label_area_size(75)
            .build_cartesian_2d(0.0..1.0, -DB_RANGE..0.0)
            .map_err(e)?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        for py in yr.clone() {
            let v = (yr.end - 1 - py) as f64 / (yr.len() - 1).max(1) as f64;
            for px in xr.clone() {
                root.draw_pixel((px, py), &heat(v)).map_err(e)?;
            }
        }
        draw_mesh(
            chart
                .configure_mesh()
                .disable_mesh()
                .disable_x_axis()
                .y_desc("level (dB)"),
            path,
        )
    })
}

/// Long-term spectra (`spectrum::long_term`, all at `rate`) as level in dB
/// against frequency on a log axis, one curve per `(name, spectrum)`, the
/// first (the song) drawn thickest. Bin 0 (0 Hz) has no place on a log axis
/// and is left out; levels more than [`SPECTRUM_RANGE`] dB under the loudest
/// bin sit on the bottom edge.
pub fn spectrum_plot(path: &Path, rate: u32, curves: &[(String, Vec<f64>)]) -> Result<()> {
    use crate::spectrum::{bin_hz, db};
    if rate == 0 || curves.is_empty() || curves.iter().any(|c| c.1.len() < 3) {
        return Err(Error::file(path, "nothing to plot: no spectrum"));
    }
    let top = curves
        .iter()
        .flat_map(|c| c.1[1..].iter().map(|&p| db(p)))
        .fold(f64::MIN, f64::max);
    let top = (top / 10.0).ceil() * 10.0;
    let bottom = top - SPECTRUM_RANGE;
    let bins = curves[0].1.len();
    let (lo, hi) = (bin_hz(1, rate), bin_hz(bins - 1, rate));
    let colors = [
        RGBColor(0, 0, 0),
        RGBColor(220, 30, 30),
        RGBColor(30, 90, 220),
        RGBColor(0, 150, 60),
        RGBColor(230, 140, 0),
        RGBColor(160, 0, 160),
    ];
    render(path, |root| {
        let e = |err| drawing(path, err);
        let mut chart = ChartBuilder::on(root)
            .caption("Long-term spectra (Welch, 2048 points)", ("sans-serif", 28))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(90)
            .build_cartesian_2d((lo..hi).log_scale(), bottom..top)
            .map_err(e)?;
        draw_mesh(
            chart
                .configure_mesh()
                .x_desc("frequency (Hz)")
                .y_desc("power per bin (dB, full scale = 0)")
                .x_label_formatter(&|f| format!("{f:.0}")),
            path,
        )?;
        for (i, (name, s)) in curves.iter().enumerate() {
            let c = colors[i % colors.len()];
            let w = if i == 0 { 3 } else { 2 };
            chart
                .draw_series(LineSeries::new(
                    (1..s.len()).map(|k| (bin_hz(k, rate), db(s[k]).max(bottom))),
                    c.stroke_width(w),
                ))
                .map_err(e)?
                .label(name.as_str())
                .legend(legend_line(c, 3));
        }
        draw_legend(&mut chart, path)
    })
}
