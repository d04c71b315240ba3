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
