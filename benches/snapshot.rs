//! `plan --snapshot` against its floor and against the kubectl+jq baseline (DESIGN §6).
//!
//! For each shape (`IPR_BENCH_SHAPES`, default kyma,lean: `kube-sim generate --shape`) and each
//! size (`IPR_BENCH_PODS`, default 1000,10000,20000,50000 pods) a snapshot is generated
//! with `kube-sim generate` into a temporary directory, then three processes read it, each
//! measured whole (wall time here, peak RSS from `/usr/bin/time`), best of `IPR_BENCH_REPS` (3):
//!
//! - the tool: `istio-proxy-reset plan --snapshot FILE --expected-version 1.24.1 --format json`;
//! - the floor: this bench re-run as `--floor FILE`, which reads the file into memory and parses
//!   it with `serde_json::from_slice::<IgnoredAny>`, the fastest way serde_json has to parse JSON
//!   into nothing (`from_reader` is much slower). It reports its parse time alone as well: the
//!   strictest floor, excluding process start and the file read;
//! - the baseline: `jq -r --arg expected 1.24.1 -f benches/restart-set.jq FILE`, best of
//!   `IPR_BENCH_JQ_REPS` (1: it is slow).
//!
//! It then checks that the tool's automatic actions (rollout-restart, evict) name the same set of
//! workloads as the jq program prints. Run: `cargo bench --bench snapshot`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Measured, best_of, env_list, env_number, machine, measure, secs, verdict};
use kube_sim::generate::Shape;
use serde::de::IgnoredAny;

const SEED: u64 = 7;

/// `--floor FILE`: read the file, parse it into nothing, print the parse time in nanoseconds.
fn floor(path: &Path) {
    let bytes = std::fs::read(path).expect("read the snapshot");
    let started = Instant::now();
    serde_json::from_slice::<IgnoredAny>(&bytes).expect("valid JSON");
    println!("{}", started.elapsed().as_nanos());
}

struct Row {
    shape: Shape,
    pods: usize,
    bytes: u64,
    parse: Duration,
    reader: Duration,
    floor: Measured,
    tool: Measured,
    jq: Option<Measured>,
    restarts: usize,
    same: Option<Result<(), String>>,
}

fn restart_set_of_report(path: &Path) -> BTreeSet<String> {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("report")).expect("report JSON");
    report["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .filter(|w| w["action"] == "rollout-restart" || w["action"] == "evict")
        .map(|w| {
            format!(
                "{} {}/{}",
                w["kind"].as_str().unwrap_or_default(),
                w["namespace"].as_str().unwrap_or_default(),
                w["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn compare_sets(tool: &BTreeSet<String>, jq: &BTreeSet<String>) -> Result<(), String> {
    if tool == jq {
        return Ok(());
    }
    let only_tool: Vec<_> = tool.difference(jq).take(5).collect();
    let only_jq: Vec<_> = jq.difference(tool).take(5).collect();
    Err(format!(
        "{} only in the tool's plan (e.g. {only_tool:?}), {} only in jq's (e.g. {only_jq:?})",
        tool.difference(jq).count(),
        jq.difference(tool).count()
    ))
}

/// `--read FILE`: the tool's own snapshot reader in this process (file to inventory, no plan,
/// no report), best of three; prints nanoseconds.
fn read(path: &Path) {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let inventory = istio_proxy_reset::inventory::snapshot::read_file(
            path,
            istio_proxy_reset::inventory::InventoryBuilder::new(),
        )
        .expect("the snapshot reads");
        best = best.min(started.elapsed());
        drop(inventory);
    }
    println!("{}", best.as_nanos());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--floor") {
        floor(Path::new(&args[i + 1]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--read") {
        read(Path::new(&args[i + 1]));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: nothing to measure then.
    if !args.iter().any(|a| a == "--bench") {
        println!("run with `cargo bench --bench snapshot`");
        return;
    }

    let sizes = env_list("IPR_BENCH_PODS", &[1_000, 10_000, 20_000, 50_000]);
    let shapes: Vec<Shape> = match std::env::var("IPR_BENCH_SHAPES") {
        Ok(text) => text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.parse().expect("IPR_BENCH_SHAPES: kyma, lean"))
            .collect(),
        Err(_) => Shape::ALL.to_vec(),
    };
    let reps = env_number("IPR_BENCH_REPS", 3usize);
    let jq_reps = env_number("IPR_BENCH_JQ_REPS", 1usize);
    let jq_program = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/restart-set.jq");
    let have_jq = std::process::Command::new("jq")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let this = std::env::current_exe().expect("own path");
    let tool = common::tool();
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = dir.path();

    println!("# plan --snapshot: the tool, the floor and the kubectl+jq baseline");
    println!("machine: {}", machine());
    println!("best of {reps} runs (jq: {jq_reps}); seed {SEED}\n");

    let mut rows = Vec::new();
    for (shape, pods) in shapes
        .iter()
        .flat_map(|&shape| sizes.iter().map(move |&pods| (shape, pods)))
    {
        let file = common::generate_shaped(scratch, pods, SEED, shape);
        let file_str = file.to_str().expect("utf-8 path");
        let bytes = std::fs::metadata(&file).expect("snapshot").len();

        let floor_out = scratch.join("floor.txt");
        let mut parse = Duration::MAX;
        let floor_run = best_of(reps, || {
            let m = measure(&this, &["--floor", file_str], Some(&floor_out), scratch);
            let nanos: u64 = std::fs::read_to_string(&floor_out)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(u64::MAX);
            parse = parse.min(Duration::from_nanos(nanos));
            m
        });

        let reader_out = scratch.join("reader.txt");
        let reader_run = measure(&this, &["--read", file_str], Some(&reader_out), scratch);
        assert!(
            reader_run.success,
            "the snapshot reader failed on {pods} {shape} pods"
        );
        let reader = Duration::from_nanos(
            std::fs::read_to_string(&reader_out)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(u64::MAX),
        );

        let report = scratch.join("report.json");
        let tool_run = best_of(reps, || {
            measure(
                &tool,
                &[
                    "plan",
                    "--snapshot",
                    file_str,
                    "--expected-version",
                    common::EXPECTED,
                    "--format",
                    "json",
                ],
                Some(&report),
                scratch,
            )
        });
        assert!(
            tool_run.success,
            "plan --snapshot failed on {pods} {shape} pods"
        );
        let tool_set = restart_set_of_report(&report);

        let (jq, same) = if have_jq {
            let jq_out = scratch.join("jq.txt");
            let jq_path = Path::new("jq");
            let program = jq_program.to_str().expect("utf-8 path");
            let m = best_of(jq_reps, || {
                measure(
                    jq_path,
                    &[
                        "-r",
                        "--arg",
                        "expected",
                        common::EXPECTED,
                        "-f",
                        program,
                        file_str,
                    ],
                    Some(&jq_out),
                    scratch,
                )
            });
            let jq_set: BTreeSet<String> = std::fs::read_to_string(&jq_out)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            (Some(m), Some(compare_sets(&tool_set, &jq_set)))
        } else {
            (None, None)
        };
        std::fs::remove_file(&file).ok();

        let row = Row {
            shape,
            pods,
            bytes,
            parse,
            reader,
            floor: floor_run,
            tool: tool_run,
            jq,
            restarts: tool_set.len(),
            same,
        };
        print_row(&row);
        rows.push(row);
    }

    println!();
    print_table(&rows);
    print_targets(&rows);
}

fn print_row(r: &Row) {
    println!(
        "{} {} pods, {:.1} MB: floor parse {} s (process {} s, {:.1} MiB); reader {} s; plan {} s, {:.1} MiB; jq {}",
        r.shape,
        r.pods,
        r.bytes as f64 / 1e6,
        secs(r.parse),
        secs(r.floor.wall),
        r.floor.rss_mib(),
        secs(r.reader),
        secs(r.tool.wall),
        r.tool.rss_mib(),
        r.jq.map_or("not run".to_string(), |m| format!(
            "{} s, {:.1} MiB",
            secs(m.wall),
            m.rss_mib()
        )),
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn print_table(rows: &[Row]) {
    println!("Whole processes (wall time, peak RSS):\n");
    println!(
        "| shape | pods | JSON | floor: read + parse | plan --snapshot | plan ÷ floor | jq baseline | jq ÷ plan | workloads to restart | same set as jq |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let jq = r.jq.map_or("–".to_string(), |m| {
            format!("{} s, {:.0} MiB", secs(m.wall), m.rss_mib())
        });
        let jq_ratio = r.jq.map_or("–".to_string(), |m| {
            format!("{:.1}x", ratio(m.wall, r.tool.wall))
        });
        let same = match &r.same {
            None => "–".to_string(),
            Some(Ok(())) => "yes".to_string(),
            Some(Err(e)) => format!("NO: {e}"),
        };
        println!(
            "| {} | {} | {:.0} MB | {} s, {:.0} MiB | {} s, {:.1} MiB | {:.2}x | {jq} | {jq_ratio} | {} | {same} |",
            r.shape,
            r.pods,
            r.bytes as f64 / 1e6,
            secs(r.floor.wall),
            r.floor.rss_mib(),
            secs(r.tool.wall),
            r.tool.rss_mib(),
            ratio(r.tool.wall, r.floor.wall),
            r.restarts,
        );
    }
    println!("\nIn process (the file in the page cache; best of 3):\n");
    println!(
        "| shape | pods | floor: parse only, bytes in memory | snapshot reader: file to inventory | reader ÷ parse | plan process ÷ parse |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} s | {} s | {:.2}x | {:.2}x |",
            r.shape,
            r.pods,
            secs(r.parse),
            secs(r.reader),
            ratio(r.reader, r.parse),
            ratio(r.tool.wall, r.parse),
        );
    }
}

fn print_targets(all: &[Row]) {
    let mut shapes: Vec<Shape> = all.iter().map(|r| r.shape).collect();
    shapes.dedup();
    for shape in shapes {
        let rows: Vec<&Row> = all.iter().filter(|r| r.shape == shape).collect();
        print_shape_targets(shape, &rows);
    }
}

fn print_shape_targets(shape: Shape, rows: &[&Row]) {
    println!();
    println!("{shape}:");
    if let Some(r) = rows.iter().find(|r| r.pods == 20_000) {
        let whole = ratio(r.tool.wall, r.floor.wall);
        println!(
            "target: 20k pods within 2x the floor (whole processes, read + parse): {whole:.2}x {}",
            verdict(whole <= 2.0)
        );
        let strict = ratio(r.tool.wall, r.parse);
        println!(
            "        against the parse alone (bytes already in memory): {strict:.2}x {}; the reader alone {:.2}x {}",
            verdict(strict <= 2.0),
            ratio(r.reader, r.parse),
            verdict(ratio(r.reader, r.parse) <= 2.0)
        );
        println!(
            "target: 20k pods within 64 MB: {:.1} MiB {}",
            r.tool.rss_mib(),
            verdict(r.tool.rss_kib <= 64 * 1024)
        );
        if let Some(jq) = r.jq {
            let speedup = ratio(jq.wall, r.tool.wall);
            println!(
                "target: 20k pods at least 15x faster than jq: {speedup:.1}x {}",
                verdict(speedup >= 15.0)
            );
        }
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.pods > first.pods
    {
        let added = (last.tool.rss_kib as f64 - first.tool.rss_kib as f64) * 1024.0;
        println!(
            "memory from {} to {} pods: {:.1} → {:.1} MiB, {:.0} bytes per added pod, {:.0} per added \
             workload to restart ({:.3} bytes per added byte of JSON)",
            first.pods,
            last.pods,
            first.tool.rss_mib(),
            last.tool.rss_mib(),
            added / (last.pods - first.pods) as f64,
            added / (last.restarts.saturating_sub(first.restarts)).max(1) as f64,
            added / (last.bytes as f64 - first.bytes as f64),
        );
    }
    for r in rows {
        if let Some(Err(e)) = &r.same {
            println!("{shape} {} pods: the tool and jq disagree: {e}", r.pods);
        }
    }
}
