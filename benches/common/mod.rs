//! What the benches share: the tool's binary, whole-process measurements with `/usr/bin/time`,
//! generated snapshots, and a description of the machine.
#![allow(dead_code)] // each bench uses its own subset

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The release binary `cargo bench` built.
pub fn tool() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_istio-proxy-reset"))
}

/// The version every proxy must run in the generated clusters.
pub const EXPECTED: &str = kube_sim::generate::CURRENT_VERSION;

/// One finished process: its wall time, its peak resident memory and whether it succeeded.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub wall: Duration,
    pub rss_kib: u64,
    pub success: bool,
}

impl Measured {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
}

/// Runs `program args` under `/usr/bin/time` (for the peak RSS), stdout to `stdout` (or
/// `/dev/null`), and measures its wall time from here.
pub fn measure(program: &Path, args: &[&str], stdout: Option<&Path>, scratch: &Path) -> Measured {
    let rss_file = scratch.join("rss.txt");
    let out = match stdout {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("stdout file")),
        None => Stdio::null(),
    };
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(program)
        .args(args)
        .env("ISTIO_PROXY_RESET_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .status()
        .expect("/usr/bin/time runs (GNU time is needed for peak memory)");
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&rss_file).unwrap_or_default();
    let rss_kib = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or(0);
    Measured {
        wall,
        rss_kib,
        success: status.success(),
    }
}

/// The best of `reps` runs (the least disturbed by the rest of the machine); the peak memory
/// is the highest seen.
pub fn best_of(reps: usize, mut run: impl FnMut() -> Measured) -> Measured {
    let mut best: Option<Measured> = None;
    for _ in 0..reps.max(1) {
        let m = run();
        best = Some(match best {
            None => m,
            Some(b) => Measured {
                wall: b.wall.min(m.wall),
                rss_kib: b.rss_kib.max(m.rss_kib),
                success: b.success && m.success,
            },
        });
    }
    best.expect("at least one run")
}

/// Writes `kube-sim generate --pods N --seed S` to `dir/snapshot-N.json`.
pub fn generate(dir: &Path, pods: usize, seed: u64) -> PathBuf {
    generate_shaped(dir, pods, seed, kube_sim::generate::Shape::Kyma)
}

/// Writes `kube-sim generate --pods N --seed S --shape SHAPE` to `dir/snapshot-SHAPE-N.json`.
pub fn generate_shaped(
    dir: &Path,
    pods: usize,
    seed: u64,
    shape: kube_sim::generate::Shape,
) -> PathBuf {
    let path = dir.join(format!("snapshot-{shape}-{pods}.json"));
    let file = std::fs::File::create(&path).expect("snapshot file");
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    kube_sim::generate::generate_to_shaped(&mut writer, pods, seed, shape).expect("generate");
    std::io::Write::flush(&mut writer).expect("flush");
    path
}

/// A number from the environment, or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list of numbers from the environment, or `default`.
pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(text) => text
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// `2 CPUs (…model…), 23.4 GiB; load 1.2`: where the figures came from.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let mut out = String::new();
    let _ = write!(
        out,
        "{cpus} CPUs ({model}), {:.1} GiB memory, load average {load} at the start",
        mem_kib as f64 / (1024.0 * 1024.0)
    );
    out
}

pub fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// `ok` or `MISSED`: how a figure compares with its target.
pub fn verdict(met: bool) -> &'static str {
    if met { "ok" } else { "MISSED" }
}
