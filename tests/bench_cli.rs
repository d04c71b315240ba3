//! `wavelstm bench` as a script reads it: one JSON object per workload with
//! the figures the comparison table needs. No timing is asserted, only that
//! the figures exist and are consistent with each other.

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wavelstm"))
        .arg("bench")
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `bench` of one timed step without warm-up on the CPU (the smallest run),
/// with `args` after.
fn bench_once(args: &[&str]) -> std::process::Output {
    let mut all = vec!["--device", "cpu", "--steps", "1", "--warmup", "0"];
    all.extend_from_slice(args);
    bench(&all)
}

#[test]
fn json_lines_one_per_workload() {
    let out = bench(&[
        "--workload",
        "small,small",
        "--device",
        "cpu",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for v in &lines {
        assert_eq!(v["workload"], "small");
        assert_eq!(v["kind"], "train");
        assert_eq!(v["repeats"], 2);
        let (min, med, max) = (
            v["min_s"].as_f64().unwrap(),
            v["median_s"].as_f64().unwrap(),
            v["max_s"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= med && med <= max, "{v}");
        assert!(v["gflops"].as_f64().unwrap() > 0.0);
        assert!(v["samples_per_s"].as_f64().unwrap() > 0.0);
    }
    // Same engine start, same batches: the same losses.
    assert!(lines[0]["loss"].as_f64().unwrap().is_finite());
    assert_eq!(lines[0]["loss"], lines[1]["loss"]);
}

#[test]
fn unknown_workload_is_named() {
    let out = bench(&["--workload", "huge", "--device", "cpu"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("huge") && err.contains("seq"), "{err}");
}

/// Parse one JSON object per stdout line of a run that must succeed.
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn generation_reports_its_real_time_factor() {
    // One timed second of audio per take, no warm-up: the smallest run.
    let out = bench_once(&["--workload", "generate,generate-8", "--json"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for (v, (name, takes)) in lines.iter().zip([("generate", 1.0), ("generate-8", 8.0)]) {
        assert_eq!(v["workload"], name);
        assert_eq!(v["kind"], "generate");
        assert_eq!(v["repeats"], 1);
        let med = v["median_s"].as_f64().unwrap();
        assert!(med > 0.0, "{v}");
        assert_eq!(v["min_s"], v["median_s"], "one unit: {v}");
        assert_eq!(v["max_s"], v["median_s"], "one unit: {v}");
        let (rtf, per_take) = (
            v["rtf"].as_f64().unwrap(),
            v["rtf_per_take"].as_f64().unwrap(),
        );
        // A unit is one second of audio per take: the figures agree with
        // each other whatever the speed.
        assert!(close(per_take, 1.0 / med), "{v}");
        assert!(close(rtf, takes * per_take), "{v}");
        assert!(
            close(v["samples_per_s"].as_f64().unwrap(), 44_100.0 * rtf),
            "{v}"
        );
        assert!(
            close(v["ms_per_step"].as_f64().unwrap(), 1e3 * med / 44_100.0),
            "{v}"
        );
        assert!(v["gflops"].as_f64().unwrap() > 0.0, "{v}");
        // Nothing is learnt while generating.
        assert!(v["loss"].is_null(), "{v}");
    }
}

#[test]
fn generation_line_for_people_names_the_real_time_factor() {
    let out = bench_once(&["--workload", "generate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("generate "), "{text}");
    assert!(text.contains("s of audio per take"), "{text}");
    assert!(text.contains("real-time factor"), "{text}");
    assert!(text.contains("per take"), "{text}");
}

#[test]
fn training_lines_have_no_real_time_factor() {
    let out = bench_once(&["--workload", "small", "--json"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].get("rtf").is_none(), "{}", lines[0]);
    assert!(lines[0].get("rtf_per_take").is_none(), "{}", lines[0]);
}

#[test]
fn generation_needs_a_timed_second() {
    let out = bench(&["--workload", "generate", "--device", "cpu", "--steps", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least one timed step"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
