//! Each subcommand's `--help` shows only the options it uses (DESIGN §3), and `--drift` takes
//! exactly the drift reasons of DESIGN §2.3a.

use std::collections::BTreeSet;
use std::process::Output;

#[path = "support/binary.rs"]
mod binary;
use binary::binary;

const EXAMPLE: &str = "examples/kyma-upgrade.json";

const REASONS: [&str; 7] = [
    "version",
    "revision",
    "resources",
    "cni",
    "native-sidecar",
    "missing-proxy",
    "unwanted-proxy",
];

/// What `plan` and `run` both take.
const SHARED: [&str; 12] = [
    "--kubeconfig",
    "--context",
    "--istio-namespace",
    "--namespace",
    "--api-retry-timeout",
    "--expected-version",
    "--expected-image",
    "--exclude-namespace",
    "--format",
    "--report-file",
    "--fail-on-manual",
    "--drift",
];

fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

/// `SUBCOMMAND --help`, which must succeed; its text.
fn help(subcommand: &str) -> String {
    let output = run(&[subcommand, "--help"]);
    assert_eq!(output.status.code(), Some(0), "{subcommand} --help");
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The `--long` options an option line of the help names (`-h, --help`, `--format <FORMAT>`),
/// `--help` and `--version` left out.
fn long_options(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .flat_map(|line| {
            line.split_whitespace()
                .map(|word| word.trim_end_matches(','))
                .take_while(|word| word.starts_with('-'))
                .filter(|word| word.starts_with("--"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|option| option != "--help" && option != "--version")
        .collect()
}

fn set(options: &[&str]) -> BTreeSet<String> {
    options.iter().map(|o| o.to_string()).collect()
}

#[test]
fn plan_help_lists_what_plan_uses() {
    let mut expected = set(&SHARED);
    expected.insert("--snapshot".into());
    assert_eq!(long_options(&help("plan")), expected);
}

#[test]
fn run_help_lists_what_run_uses() {
    let mut expected = set(&SHARED);
    expected.extend(set(&[
        "--report-configmap",
        "--concurrency",
        "--rollout-timeout",
        "--no-wait",
    ]));
    assert_eq!(long_options(&help("run")), expected);
}

#[test]
fn snapshot_help_lists_the_cluster_options() {
    let expected = set(&[
        "--kubeconfig",
        "--context",
        "--istio-namespace",
        "--namespace",
        "--api-retry-timeout",
    ]);
    assert_eq!(long_options(&help("snapshot")), expected);
}

#[test]
fn report_help_lists_its_file_and_format() {
    let text = help("report");
    assert_eq!(long_options(&text), set(&["--format"]));
    assert!(text.contains("<FILE>"), "{text}");
}

#[test]
fn drift_help_names_every_reason() {
    let text = help("plan");
    for reason in REASONS {
        assert!(text.contains(reason), "--drift help names {reason}: {text}");
    }
    assert!(text.contains("ISTIO_PROXY_RESET_DRIFT"), "{text}");
}

/// A refused `--drift`: usage errors exit 1 (never the gate's 2) and name the valid reasons.
fn assert_refused(output: &Output, named: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(named), "names {named}: {stderr}");
    for reason in REASONS {
        assert!(stderr.contains(reason), "lists {reason}: {stderr}");
    }
}

#[test]
fn an_unknown_drift_reason_is_a_usage_error() {
    assert_refused(&run(&["plan", "--drift", "bogus"]), "bogus");
    assert_refused(&run(&["run", "--drift", "version,Bogus"]), "Bogus");
    let from_env = binary()
        .args(["plan", "--snapshot", EXAMPLE])
        .env("ISTIO_PROXY_RESET_DRIFT", "cni,sidecar")
        .output()
        .expect("the binary runs");
    assert_refused(&from_env, "sidecar");
}

#[test]
fn an_empty_drift_item_is_a_usage_error() {
    assert_refused(&run(&["plan", "--drift", "version,,cni"]), "empty");
}

#[test]
fn known_drift_reasons_parse() {
    let all = REASONS.join(",");
    for drift in ["version,cni", " version , cni ", all.as_str()] {
        let output = run(&[
            "plan",
            "--snapshot",
            EXAMPLE,
            "--drift",
            drift,
            "--format",
            "json",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "--drift {drift:?}: {stderr}");
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
        assert_eq!(report["mode"], "plan");
    }
}

#[test]
fn run_only_options_are_refused_by_plan() {
    for (option, value) in [
        ("--report-configmap", Some("kyma-system/x")),
        ("--concurrency", Some("2")),
        ("--rollout-timeout", Some("1m")),
        ("--no-wait", None),
    ] {
        let mut args = vec!["plan", "--snapshot", EXAMPLE, option];
        args.extend(value);
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "plan {option}: {stderr}");
        assert!(stderr.contains(option), "{stderr}");
    }
}
